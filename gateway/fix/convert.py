"""quickfix.Message <-> fixspec RawMessage. The only place FIX wire objects change shape."""

from __future__ import annotations

import quickfix as fix

from fixspec.codec import OutField, RawMessage


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


def from_fields(msg_type: str, fields: list[OutField]) -> fix.Message:
    message = fix.Message()
    message.getHeader().setField(35, msg_type)
    _fill(message, fields)
    return message
