"""The assembled FIX 4.4 dictionary: stock QuickFIX fields plus ours, loadable by the engine."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import quickfix as fix

from fixspec.dictionary import CUSTOM_FIELDS, CUSTOM_TAGS, DictionaryError
from gateway.fix.dictionary import assemble, stock_dictionary_path, write_dictionary

SOH = "\x01"


@pytest.fixture(scope="module")
def stock() -> Path:
    return stock_dictionary_path()


@pytest.fixture(scope="module")
def assembled(tmp_path_factory, stock: Path) -> Path:
    path = tmp_path_factory.mktemp("dict") / "FIX44-fixbridge.xml"
    path.write_bytes(assemble(stock))
    return path


def _fields(path: Path) -> dict[int, tuple[str, str]]:
    root = ET.parse(path).getroot()
    return {int(f.get("number")): (f.get("name"), f.get("type")) for f in root.find("fields")}


def _message(path: Path, msg_type: str) -> ET.Element:
    root = ET.parse(path).getroot()
    return next(msg for msg in root.find("messages") if msg.get("msgtype") == msg_type)


def _wire(body: list[str]) -> str:
    text = SOH.join(body) + SOH
    head = f"8=FIX.4.4{SOH}9={len(text)}{SOH}{text}"
    return f"{head}10={sum(head.encode()) % 256:03d}{SOH}"


def _new_order(*extra: str) -> list[str]:
    return [
        "35=D", "49=CLIENT1", "56=FIXBRIDGE", "34=2", "52=20260102-03:04:05.000",
        "11=C1", "55=BTC-PERP", "54=1", "60=20260102-03:04:05", "38=1", "40=2", "44=100",
        *extra,
    ]  # fmt: skip


def test_stock_dictionary_is_the_installed_fix44(stock: Path) -> None:
    assert stock.name == "FIX44.xml"
    root = ET.parse(stock).getroot()
    assert (root.get("major"), root.get("minor")) == ("4", "4")


def test_assembled_dictionary_keeps_every_stock_field_and_adds_ours(
    stock: Path, assembled: Path
) -> None:
    before, after = _fields(stock), _fields(assembled)
    assert {tag: after[tag] for tag in before} == before
    added = {tag: after[tag] for tag in set(after) - set(before)}
    assert added == {cf.tag: (cf.name, cf.type) for cf in CUSTOM_FIELDS}
    assert CUSTOM_TAGS == {
        "QuoteSignature": 5001,
        "QuoteHash": 5002,
        "QuoteSignerKeyID": 5003,
        "ClientDisclosed": 5004,
    }


def test_custom_fields_are_optional_members_of_their_messages(assembled: Path) -> None:
    for cf in CUSTOM_FIELDS:
        for msg_type in cf.messages:
            members = {
                f.get("name"): f.get("required")
                for f in _message(assembled, msg_type)
                if f.tag == "field"
            }
            assert members.get(cf.name) == "N", (cf.name, msg_type)


def test_stock_messages_are_unchanged_apart_from_our_fields(stock: Path, assembled: Path) -> None:
    ours = {cf.name for cf in CUSTOM_FIELDS}
    for msg_type in ("D", "8", "S", "AJ", "AE", "R"):
        stock_members = [ET.tostring(e) for e in _message(stock, msg_type)]
        assembled_members = [
            ET.tostring(e) for e in _message(assembled, msg_type) if e.get("name") not in ours
        ]
        assert assembled_members == stock_members, msg_type


def test_quickfix_loads_the_assembled_dictionary(assembled: Path) -> None:
    dd = fix.DataDictionary(str(assembled))
    assert dd.getVersion() == "FIX.4.4"
    for cf in CUSTOM_FIELDS:
        assert dd.isField(cf.tag)
        for msg_type in cf.messages:
            assert dd.isMsgField(msg_type, cf.tag)
    assert not dd.isMsgField("D", CUSTOM_TAGS["QuoteSignerKeyID"])
    assert dd.isMsgField("D", 44) and dd.isMsgType("AB")


def test_quickfix_validates_a_message_carrying_our_field_only_with_our_dictionary(
    stock: Path, assembled: Path
) -> None:
    wire = _wire(_new_order("5002=" + "ab" * 32))
    ours = fix.DataDictionary(str(assembled))
    ours.validate(fix.Message(wire, ours, True))  # raises if invalid
    plain = fix.DataDictionary(str(stock))
    with pytest.raises(fix.InvalidTagNumber):
        plain.validate(fix.Message(wire, plain, True))
    misplaced = _wire(_new_order("5003=key-1"))  # QuoteSignerKeyID belongs on quotes only
    with pytest.raises(fix.TagNotDefinedForMessage):
        ours.validate(fix.Message(misplaced, ours, True))


def test_duplicate_tag_in_the_stock_dictionary_is_a_dictionary_error(
    stock: Path, tmp_path: Path
) -> None:
    tree = ET.parse(stock)
    ET.SubElement(tree.getroot().find("fields"), "field", number="5002", name="Clash", type="INT")
    copy = tmp_path / "FIX44.xml"
    tree.write(copy)
    with pytest.raises(DictionaryError, match="5002"):
        assemble(copy)


def test_missing_or_broken_stock_file_is_a_dictionary_error(tmp_path: Path) -> None:
    with pytest.raises(DictionaryError, match="nope.xml"):
        assemble(tmp_path / "nope.xml")
    broken = tmp_path / "broken.xml"
    broken.write_text("<fix><fields>")
    with pytest.raises(DictionaryError, match="broken.xml"):
        assemble(broken)
    empty = tmp_path / "empty.xml"
    empty.write_text("<fix major='4' minor='4'/>")
    with pytest.raises(DictionaryError, match="no <fields>"):
        assemble(empty)
    unnumbered = tmp_path / "unnumbered.xml"
    unnumbered.write_text("<fix><fields><field name='X' type='INT'/></fields><messages/></fix>")
    with pytest.raises(DictionaryError, match="unnumbered.xml: a <field> without a number"):
        assemble(unnumbered)


def test_write_dictionary_writes_the_assembled_file_atomically(tmp_path: Path) -> None:
    target = write_dictionary(tmp_path / "data")
    assert target == tmp_path / "data" / "FIX44-fixbridge.xml"
    assert target.read_bytes() == assemble()
    assert sorted(p.name for p in target.parent.iterdir()) == ["FIX44-fixbridge.xml"]
    assert write_dictionary(tmp_path / "data") == target  # rewriting is fine
