"""Field, enum and message names from a QuickFIX data dictionary, to show FIX messages to people.

``FixNames.from_xml(data)`` reads the dictionary's bytes (the gateway's assembled
``FIX44-fixbridge.xml``, so our custom fields are named too); :meth:`FixNames.describe` turns a
message's ``(tag, value)`` pairs into rows with the field's name and the value's enum name.
Pure: the caller reads the file.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

__all__ = ["FieldRow", "FixNames"]


@dataclass(frozen=True, slots=True)
class FieldRow:
    tag: str
    name: str | None  # None: a tag the dictionary does not know
    value: str
    enum_name: str | None  # the value's name, for enumerated fields (and MsgType)

    def to_json(self) -> dict[str, str | None]:
        return {
            "tag": self.tag,
            "name": self.name,
            "value": self.value,
            "enum_name": self.enum_name,
        }


@dataclass(frozen=True, slots=True)
class FixNames:
    fields: dict[str, str] = field(default_factory=dict)  # tag -> name
    enums: dict[str, dict[str, str]] = field(default_factory=dict)  # tag -> value -> name
    messages: dict[str, str] = field(default_factory=dict)  # MsgType -> message name

    @classmethod
    def from_xml(cls, data: bytes) -> FixNames:
        root = ET.fromstring(data)
        fields: dict[str, str] = {}
        enums: dict[str, dict[str, str]] = {}
        for f in root.iterfind("./fields/field"):
            tag, name = f.get("number"), f.get("name")
            if not tag or not name:
                continue
            fields[tag] = name
            values = {v.get("enum", ""): v.get("description", "") for v in f.iterfind("value")}
            if values:
                enums[tag] = values
        messages = {
            m.get("msgtype", ""): m.get("name", "") for m in root.iterfind("./messages/message")
        }
        return cls(fields, enums, messages)

    def message_name(self, msg_type: str) -> str | None:
        return self.messages.get(msg_type)

    def describe(self, pairs: list[tuple[str, str]]) -> list[FieldRow]:
        rows = []
        for tag, value in pairs:
            if tag == "35":
                enum_name = self.messages.get(value)
            else:
                enum_name = self.enums.get(tag, {}).get(value)
            rows.append(FieldRow(tag, self.fields.get(tag), value, enum_name))
        return rows
