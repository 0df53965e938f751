"""The FIX 4.4 data dictionary: QuickFIX's stock FIX44.xml plus fixbridge's own fields.

We never copy the dictionary into the repository. At start-up the stock file that the quickfix
package installs is read, our custom fields are added in code, and the result is written into the
data directory where the engine loads it.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path


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
        5001, "QuoteSignature", "STRING", ("S", "AJ", "D"),
        "Base64 Ed25519 signature of the desk over the canonical quote",
    ),
    CustomField(
        5002, "QuoteHash", "STRING", ("S", "AJ", "D", "AE"),
        "Hex SHA-256 of the canonical quote; an acceptance names the quote it accepts by it",
    ),
    CustomField(
        5003, "QuoteSignerKeyID", "STRING", ("S",),
        "Identifier of the desk key that signed the quote",
    ),
)

CUSTOM_TAGS = {f.name: f.tag for f in CUSTOM_FIELDS}


class DictionaryError(RuntimeError):
    """The stock dictionary could not be found or read."""


def stock_dictionary_path() -> Path:
    """Where the quickfix package installed FIX44.xml."""
    candidates = [Path(sys.prefix) / "share" / "quickfix" / "FIX44.xml"]
    try:  # a user or system install puts it beside the module's prefix instead
        import quickfix  # noqa: F401  (only to find its prefix)

        module_prefix = Path(quickfix.__file__).resolve().parents[3]
        candidates.append(module_prefix / "share" / "quickfix" / "FIX44.xml")
    except ImportError:  # pragma: no cover - quickfix is a hard dependency
        pass
    for path in candidates:
        if path.is_file():
            return path
    raise DictionaryError(
        "stock FIX44.xml not found (looked in " + ", ".join(map(str, candidates)) + "); "
        "is the quickfix package installed in this environment?"
    )


def assemble(stock: Path | None = None) -> bytes:
    """The stock dictionary with our fields added, as XML bytes."""
    stock = stock or stock_dictionary_path()
    try:
        tree = ET.parse(stock)
    except (OSError, ET.ParseError) as exc:
        raise DictionaryError(f"{stock}: {exc}") from exc
    root = tree.getroot()
    fields = root.find("fields")
    messages = root.find("messages")
    if fields is None or messages is None:
        raise DictionaryError(f"{stock}: no <fields> or <messages> section")
    taken = {int(f.get("number")) for f in fields}
    by_type = {msg.get("msgtype"): msg for msg in messages}
    for cf in CUSTOM_FIELDS:
        if cf.tag in taken:
            raise DictionaryError(f"{stock}: tag {cf.tag} ({cf.name}) is already defined")
        ET.SubElement(fields, "field", number=str(cf.tag), name=cf.name, type=cf.type)
        for msg_type in cf.messages:
            ET.SubElement(by_type[msg_type], "field", name=cf.name, required="N")
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def write_dictionary(data_dir: Path) -> Path:
    """Assemble the dictionary into ``data_dir`` (atomically) and return its path."""
    data_dir.mkdir(parents=True, exist_ok=True)
    target = data_dir / "FIX44-fixbridge.xml"
    tmp = target.with_suffix(".xml.tmp")
    tmp.write_bytes(assemble())
    tmp.replace(target)
    return target
