"""The FIX 4.4 data dictionary: QuickFIX's stock FIX44.xml plus fixbridge's own fields.

We never copy the dictionary into the repository. At start-up the stock file that the quickfix
package installs is read, our custom fields are added in code (:func:`add_custom_fields`), and
the result is written into the data directory where the engine loads it; finding, reading and
writing the files is the QuickFIX adapter's part (``gateway.fix.dictionary``).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import cast


@dataclass(frozen=True, slots=True)
class CustomField:
    tag: int
    name: str
    type: str
    messages: tuple[str, ...]  # MsgTypes that may carry it (as an optional field)
    doc: str


# User-defined tags live in 5000-9999 (FIX reserves 10000+ for bilateral use too; we stay low).
CUSTOM_FIELDS: tuple[CustomField, ...] = (
    CustomField(
        5001,
        "QuoteSignature",
        "STRING",
        ("S", "AJ", "D"),
        "Base64 Ed25519 signature of the desk over the canonical quote",
    ),
    CustomField(
        5002,
        "QuoteHash",
        "STRING",
        ("S", "AJ", "D", "AE"),
        "Hex SHA-256 of the canonical quote; an acceptance names the quote it accepts by it",
    ),
    CustomField(
        5003,
        "QuoteSignerKeyID",
        "STRING",
        ("S",),
        "Identifier of the desk key that signed the quote",
    ),
    CustomField(
        5004,
        "ClientDisclosed",
        "BOOLEAN",
        ("R",),
        "Y: desks see the client's identity; N: only an alias for this RFQ; absent: the default",
    ),
)

CUSTOM_TAGS = {f.name: f.tag for f in CUSTOM_FIELDS}


@dataclass(frozen=True, slots=True)
class CustomValue:
    tag: int
    enum: str
    description: str


# Values later FIX versions define that our RFQs use (QuickFIX refuses an unlisted enum value).
CUSTOM_VALUES: tuple[CustomValue, ...] = (
    CustomValue(167, "IRS", "INTEREST_RATE_SWAP"),  # SecurityType, as in FIX 5.0 SP2
)


class DictionaryError(RuntimeError):
    """The stock dictionary could not be found or read."""


def add_custom_fields(stock: bytes, source: str) -> bytes:
    """The stock dictionary (the XML bytes of QuickFIX's FIX44.xml, read from ``source``) with
    our fields added, as XML bytes. A defect is a :class:`DictionaryError` naming ``source``."""
    try:
        root = ET.fromstring(stock)
    except ET.ParseError as exc:
        raise DictionaryError(f"{source}: {exc}") from exc
    fields = root.find("fields")
    messages = root.find("messages")
    if fields is None or messages is None:
        raise DictionaryError(f"{source}: no <fields> or <messages> section")
    taken = set()
    for f in fields:
        number = f.get("number")
        if number is None:
            raise DictionaryError(f"{source}: a <field> without a number")
        taken.add(int(number))
    by_type = {msg.get("msgtype"): msg for msg in messages}
    by_number = {f.get("number"): f for f in fields}
    for cv in CUSTOM_VALUES:
        field = by_number.get(str(cv.tag))
        if field is None:
            raise DictionaryError(f"{source}: no field {cv.tag} to add value {cv.enum!r} to")
        if all(v.get("enum") != cv.enum for v in field):
            ET.SubElement(field, "value", enum=cv.enum, description=cv.description)
    for cf in CUSTOM_FIELDS:
        if cf.tag in taken:
            raise DictionaryError(f"{source}: tag {cf.tag} ({cf.name}) is already defined")
        ET.SubElement(fields, "field", number=str(cf.tag), name=cf.name, type=cf.type)
        for msg_type in cf.messages:
            ET.SubElement(by_type[msg_type], "field", name=cf.name, required="N")
    # bytes: tostring returns str only for encoding="unicode"
    return cast(bytes, ET.tostring(root, encoding="utf-8", xml_declaration=True))
