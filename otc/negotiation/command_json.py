"""Negotiation commands as JSON values and back, exactly.

An edge that journals the engine's inputs (to rebuild the engine by replaying them) must get back
the very command it handled: a Decimal keeps its digits and exponent (``"1.50"`` stays ``1.50``:
a quote's hash covers its prices as written), a time keeps its offset and microseconds, an enum
its member. Decoding is driven by each dataclass's field types, so a stored value of the wrong
shape is refused (:class:`CommandJsonError`) instead of becoming a different command; encoding
checks the same types, so a command that could not come back the same is refused before it is
handled.

    {"type": "SubmitQuote", "fields": {"desk_id": "DESK_A", "rfq_id": "...", "terms": {...}}}
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any, TypeAlias, Union, cast

from otc.negotiation.commands import (
    AcceptQuote,
    AnswerCounter,
    CancelAllQuotes,
    CancelQuote,
    CancelRfq,
    ClientPass,
    Command,
    ConfirmLastLook,
    ConfirmTrade,
    CounterQuote,
    DeskPass,
    PullDeskQuotes,
    RejectLastLook,
    ReplaceQuote,
    ResetDeskProtection,
    SubmitQuote,
    SubmitQuotes,
    SubmitRfq,
)

JsonValue: TypeAlias = None | bool | int | str | list["JsonValue"] | dict[str, "JsonValue"]

COMMAND_TYPES: dict[str, type[Command]] = {
    cls.__name__: cls
    for cls in (
        SubmitRfq,
        CancelRfq,
        ClientPass,
        CounterQuote,
        AcceptQuote,
        SubmitQuote,
        ReplaceQuote,
        SubmitQuotes,
        CancelQuote,
        CancelAllQuotes,
        DeskPass,
        AnswerCounter,
        ConfirmLastLook,
        RejectLastLook,
        ConfirmTrade,
        PullDeskQuotes,
        ResetDeskProtection,
    )
}
"""Every command type by name: the ``type`` of an encoded command."""


class CommandJsonError(ValueError):
    """A command that cannot be encoded exactly, or a stored one that does not decode."""


_hints_cache: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    hints = _hints_cache.get(cls)
    if hints is None:
        hints = typing.get_type_hints(cls)
        _hints_cache[cls] = hints
    return hints


def command_to_json(command: Command) -> dict[str, JsonValue]:
    """``command`` as a JSON object; :class:`CommandJsonError` if a field holds a value its type
    does not allow (it would not come back as the same command)."""
    name = type(command).__name__
    if COMMAND_TYPES.get(name) is not type(command):
        raise CommandJsonError(f"not a negotiation command: {name}")
    return {"type": name, "fields": _encode_dataclass(command, name)}


def command_from_json(data: JsonValue) -> Command:
    """The command :func:`command_to_json` encoded; :class:`CommandJsonError` if ``data`` is not
    one."""
    if not isinstance(data, dict) or set(data) != {"type", "fields"}:
        raise CommandJsonError("an encoded command is {'type': ..., 'fields': {...}}")
    name = data["type"]
    cls = COMMAND_TYPES.get(name) if isinstance(name, str) else None
    if cls is None:
        raise CommandJsonError(f"unknown command type {name!r}")
    return cast(Command, _decode_dataclass(cls, data["fields"], cls.__name__))


# --- encoding ----------------------------------------------------------------------------------
# Each command type's encoder is built once from its field types (commands are encoded on the
# hot path, before every engine call the journal keeps).

Encoder = Callable[[Any], JsonValue]
_encoders: dict[type, Encoder] = {}


def _encode_dataclass(value: Any, path: str) -> dict[str, JsonValue]:
    encoder = _encoders.get(type(value))
    if encoder is None:
        encoder = _encoders[type(value)] = _compile(type(value), path)
    return cast(dict[str, JsonValue], encoder(value))


def _refuse(path: str, hint: Any, value: Any) -> CommandJsonError:
    return CommandJsonError(f"{path}: {value!r} is not a {_name(hint)}")


def _compile(hint: Any, path: str) -> Encoder:
    """An encoder for values of type ``hint`` that refuses any other value."""
    arm = _optional_arm(hint)
    if arm is not None:
        inner = _compile(arm, path)
        return lambda v: None if v is None else inner(v)
    if typing.get_origin(hint) is tuple:
        item = _compile(_tuple_item(hint, path), f"{path}[]")

        def encode_tuple(v: Any) -> JsonValue:
            if type(v) is not tuple:
                raise CommandJsonError(f"{path}: expected a tuple, got {type(v).__name__}")
            return [item(x) for x in v]

        return encode_tuple
    if not isinstance(hint, type):
        raise CommandJsonError(f"{path}: unsupported type {hint!r}")
    cls: type = hint
    if dataclasses.is_dataclass(cls):
        hints = _hints(cls)
        fields = [
            (f.name, _compile(hints[f.name], f"{path}.{f.name}")) for f in dataclasses.fields(cls)
        ]

        def encode_dataclass(v: Any) -> JsonValue:
            if type(v) is not cls:
                raise _refuse(path, cls, v)
            return {name: enc(getattr(v, name)) for name, enc in fields}

        return encode_dataclass
    if issubclass(cls, Enum):

        def encode_enum(v: Any) -> JsonValue:
            if not isinstance(v, cls):
                raise _refuse(path, cls, v)
            member: JsonValue = v.value
            return member

        return encode_enum
    if cls is Decimal:

        def encode_decimal(v: Any) -> JsonValue:
            if type(v) is not Decimal:
                raise _refuse(path, cls, v)
            return str(v)  # digits, exponent and sign as they are

        return encode_decimal
    if cls is datetime:

        def encode_time(v: Any) -> JsonValue:
            if type(v) is not datetime or v.fold:  # ISO 8601 has no fold
                raise _refuse(path, cls, v)
            return v.isoformat()  # microseconds and offset (or none) as they are

        return encode_time
    if cls in (str, int, bool):

        def encode_scalar(v: Any) -> JsonValue:
            if type(v) is not cls:
                raise _refuse(path, cls, v)
            scalar: JsonValue = v
            return scalar

        return encode_scalar
    raise CommandJsonError(f"{path}: unsupported type {hint!r}")


# --- decoding ----------------------------------------------------------------------------------


def _decode_dataclass(cls: type, data: JsonValue, path: str) -> object:
    if not isinstance(data, dict):
        raise CommandJsonError(f"{path}: expected an object")
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(data) - set(fields)
    if unknown:
        raise CommandJsonError(f"{path}: unknown fields {sorted(unknown)}")
    values = {}
    for name, f in fields.items():
        if name in data:
            values[name] = _decode(data[name], hints[name], f"{path}.{name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise CommandJsonError(f"{path}: missing field {name!r}")
    return cls(**values)


def _decode(data: JsonValue, hint: Any, path: str) -> object:
    arm = _optional_arm(hint)
    if arm is not None:
        return None if data is None else _decode(data, arm, path)
    if typing.get_origin(hint) is tuple:
        item_hint = _tuple_item(hint, path)
        if not isinstance(data, list):
            raise CommandJsonError(f"{path}: expected a list")
        return tuple(_decode(item, item_hint, f"{path}[{i}]") for i, item in enumerate(data))
    if isinstance(hint, type):
        if dataclasses.is_dataclass(hint):
            return _decode_dataclass(hint, data, path)
        if issubclass(hint, Enum):
            try:
                return hint(data)
            except ValueError:
                raise CommandJsonError(f"{path}: {data!r} is not a {hint.__name__}") from None
        if hint is Decimal and isinstance(data, str):
            try:
                return Decimal(data)
            except InvalidOperation:
                raise CommandJsonError(f"{path}: {data!r} is not a decimal") from None
        if hint is datetime and isinstance(data, str):
            try:
                return datetime.fromisoformat(data)
            except ValueError:
                raise CommandJsonError(f"{path}: {data!r} is not an ISO 8601 time") from None
        if hint in (str, int, bool) and type(data) is hint:
            return data
    raise CommandJsonError(f"{path}: {data!r} is not a {_name(hint)}")


# --- type hints --------------------------------------------------------------------------------


def _optional_arm(hint: Any) -> Any | None:
    """``X`` for ``X | None``; None for any other hint."""
    if typing.get_origin(hint) in (Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(hint)) == 2:
            return args[0]
        raise CommandJsonError(f"unsupported union {hint!r}")
    return None


def _tuple_item(hint: Any, path: str) -> Any:
    args = typing.get_args(hint)
    if len(args) != 2 or args[1] is not Ellipsis:
        raise CommandJsonError(f"{path}: unsupported tuple type {hint!r}")
    return args[0]


def _name(hint: Any) -> str:
    return getattr(hint, "__name__", repr(hint))
