"""quickfix.Message <-> fixspec RawMessage. The only place FIX wire objects change shape."""

from __future__ import annotations

import quickfix as fix

from fixspec.codec import SOH, OutField, RawMessage


def to_raw(message: fix.Message) -> RawMessage:
    return RawMessage.parse(message.toString())


def _fill(target: fix.FieldMap, fields: list[OutField]) -> None:
    for tag, value in fields:
        if isinstance(value, str):
            target.setField(tag, value)
        else:
            for entry in value:
                group = fix.Group(tag, entry[0][0])
                _fill(group, entry)
                target.addGroup(group)


def _flat_text(msg_type: str, fields: list[OutField]) -> str | None:
    """The message as FIX text if it is flat and plain (no groups, no empty or SOH-bearing
    values, no repeated tags), else None."""
    parts = [f"35={msg_type}{SOH}"]
    for tag, value in fields:
        if type(value) is not str or not value or SOH in value:
            return None
        parts.append(f"{tag}={value}{SOH}")
    if len({tag for tag, _ in fields}) != len(fields):
        return None
    return "".join(parts)


def from_fields(msg_type: str, fields: list[OutField]) -> fix.Message:
    text = _flat_text(msg_type, fields)
    if text is not None:  # one parse in C++ instead of a SWIG call per field (~3x faster)
        message = fix.Message()
        message.setString(text, False)
        return message
    message = fix.Message()
    message.getHeader().setField(35, msg_type)
    _fill(message, fields)
    return message
