"""Clearing message formats: XSD validity, golden files, readers (ours and LCH's), acks.

Golden files live in ``tests/golden/clearing/<product>.xml`` and are compared byte for byte.
After an intended format change, regenerate them with::

    FIXBRIDGE_REGEN_GOLDEN=1 .venv/bin/pytest tests/test_clearing_formats.py -k golden

Reference schemas and samples come from ``$FIXBRIDGE_SHARED`` or ``../shared``; with ``CI`` set
their absence fails the run. Every message is validated against the official FIXML 5.0 SP2 and
FpML 5.10 sets exactly as they are there: nothing is generated or patched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from lxml import etree

from gateway.clearinghouse.schemas import (
    FIXML_MAIN,
    FPML_MAIN,
    CompiledSchema,
    SchemaRegistry,
    SchemaSetError,
    compile_schema,
    validate_file,
)
from gateway.clearinghouse.simulator import ClearinghouseSimulator, SimulatorRules
from gateway.clearinghouse.transport import HttpSender
from otc.clearing import fixml, fpml
from otc.clearing.codec import compare_with_trade, parse_ack, read_submission, render
from otc.clearing.delivery import SendResult
from otc.clearing.model import (
    AckOutcome,
    ClearingFormat,
    ClearingFormatError,
    format_for,
    idempotency_key,
)
from otc.clearing.samples import all_samples, block_multileg_trade, irs_trade, option_trade
from otc.trades import DayCount, IrsTerms

GOLDEN = Path(__file__).parent / "golden" / "clearing"
XS = "http://www.w3.org/2001/XMLSchema"
FIXML_FIELDS_BASE = "fixml-fields-base-5-0-SP2.xsd"
ROOT = Path(__file__).resolve().parents[1]
SAMPLES = all_samples()


def _find_shared() -> Path | None:
    env = os.environ.get("FIXBRIDGE_SHARED")
    candidate = Path(env) if env else Path(__file__).resolve().parents[2] / "shared"
    return candidate if (candidate / "schemas").is_dir() else None


SHARED = _find_shared()


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if SHARED is None:
        msg = "reference material not found: set FIXBRIDGE_SHARED or provide ../shared"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return SHARED


@pytest.fixture(scope="session")
def fixml_schema_dir(shared_dir: Path) -> Path:
    return shared_dir / "schemas" / "fixml-5-0-sp2"


@pytest.fixture(scope="session")
def fixml_schema(fixml_schema_dir: Path) -> CompiledSchema:
    return compile_schema(fixml_schema_dir / FIXML_MAIN)


@pytest.fixture(scope="session")
def fpml_schema(shared_dir: Path) -> CompiledSchema:
    return compile_schema(shared_dir / "schemas" / "fpml-5-10" / "confirmation" / FPML_MAIN)


@pytest.fixture(scope="session")
def schema_root(shared_dir: Path) -> Path:
    """The schema root as deployments configure it: one folder per format."""
    return shared_dir / "schemas"


def _schema_for(fmt: ClearingFormat, fixml_schema, fpml_schema) -> CompiledSchema:
    return fixml_schema if fmt is ClearingFormat.FIXML_TRADE_CAPTURE else fpml_schema


# --- schema sets ----------------------------------------------------------------------------


def test_official_fixml_schema_set_compiles(fixml_schema_dir: Path) -> None:
    assert compile_schema(fixml_schema_dir / FIXML_MAIN).main.name == FIXML_MAIN


def test_incomplete_schema_set_names_the_empty_file(tmp_path: Path) -> None:
    (tmp_path / "main.xsd").write_text(
        f'<xs:schema xmlns:xs="{XS}"><xs:include schemaLocation="types.xsd"/></xs:schema>'
    )
    (tmp_path / "types.xsd").write_bytes(b"")
    with pytest.raises(SchemaSetError, match=r"types\.xsd is empty \(0 bytes\)"):
        compile_schema(tmp_path / "main.xsd")


def test_incomplete_schema_set_names_the_missing_file(tmp_path: Path) -> None:
    (tmp_path / "main.xsd").write_text(
        f'<xs:schema xmlns:xs="{XS}"><xs:include schemaLocation="types.xsd"/></xs:schema>'
    )
    with pytest.raises(SchemaSetError, match=r"types\.xsd is missing \(referenced by main\.xsd\)"):
        compile_schema(tmp_path / "main.xsd")


def _broken_fixml_set(fixml_schema_dir: Path, out: Path, *, empty: bool) -> Path:
    """A copy of the official set with fields-base removed or emptied, in a schema root."""
    target = out / "fixml-5-0-sp2"
    shutil.copytree(fixml_schema_dir, target)
    if empty:
        (target / FIXML_FIELDS_BASE).write_bytes(b"")
    else:
        (target / FIXML_FIELDS_BASE).unlink()
    return out


def _cli_validate(file: Path, schemas: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "clearing",
            "validate",
            str(file),
            "--schemas",
            str(schemas),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("empty", [False, True], ids=["missing", "empty"])
def test_cli_names_the_defective_schema_file(
    fixml_schema_dir: Path, tmp_path: Path, empty: bool
) -> None:
    message = tmp_path / "option.xml"
    message.write_bytes(render(option_trade()).body)
    root = _broken_fixml_set(fixml_schema_dir, tmp_path / "schemas", empty=empty)
    run = _cli_validate(message, root)
    problem = "is empty (0 bytes)" if empty else "is missing"
    assert run.returncode == 2, run
    assert f"{FIXML_FIELDS_BASE} {problem}" in run.stderr
    assert "referenced by fixml-fields-impl-5-0-SP2.xsd" in run.stderr
    assert "Traceback" not in run.stderr + run.stdout
    assert len(run.stderr.strip().splitlines()) == 1


def test_cli_validates_a_message_against_the_official_set(schema_root: Path, tmp_path: Path):
    message = tmp_path / "option.xml"
    message.write_bytes(render(option_trade()).body)
    ok = _cli_validate(message, schema_root)
    assert (ok.returncode, ok.stdout.strip()) == (0, f"{message}: valid"), ok.stderr
    message.write_bytes(render(option_trade()).body.replace(b'PutCall="1"', b'PutCall="7"'))
    bad = _cli_validate(message, schema_root)
    assert bad.returncode == 1 and bad.stderr.startswith(f"{message}: line 4: "), bad.stderr
    assert "PutCall" in bad.stderr and "Traceback" not in bad.stderr


def test_compiled_schema_is_cached_per_file(fpml_schema: CompiledSchema, shared_dir: Path) -> None:
    main = shared_dir / "schemas" / "fpml-5-10" / "confirmation" / FPML_MAIN
    assert compile_schema(main) is fpml_schema
    assert SchemaRegistry(shared_dir / "schemas").for_namespace(fpml.FPML_NS) is fpml_schema


# --- generated messages ---------------------------------------------------------------------


@pytest.mark.parametrize("product", sorted(SAMPLES))
def test_every_product_validates_against_its_schema(product, fixml_schema, fpml_schema) -> None:
    msg = render(SAMPLES[product])
    schema = _schema_for(msg.fmt, fixml_schema, fpml_schema)
    assert schema.errors(etree.fromstring(msg.body)) == []


@pytest.mark.parametrize("path", sorted(GOLDEN.glob("*.xml")), ids=lambda p: p.stem)
def test_golden_file_validates_against_the_official_schemas(path: Path, schema_root: Path):
    assert validate_file(path, schema_root) == []


@pytest.mark.parametrize("product", sorted(SAMPLES))
def test_golden_files(product: str) -> None:
    body = render(SAMPLES[product]).body
    path = GOLDEN / f"{product}.xml"
    if os.environ.get("FIXBRIDGE_REGEN_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
    assert path.is_file(), f"{path} missing: run with FIXBRIDGE_REGEN_GOLDEN=1"
    assert body == path.read_bytes()


def _line_of(body: bytes, needle: bytes) -> int:
    return next(i for i, line in enumerate(body.splitlines(), 1) if needle in line)


def _insert_after(body: bytes, needle: bytes, text: bytes) -> bytes:
    lines = body.splitlines(keepends=True)
    at = _line_of(body, needle)
    return b"".join([*lines[:at], text + b"\n", *lines[at:]])


NEGATIVE_CASES = {
    # format: (sample, wrong enumeration (old, new), reason, unknown element after line holding)
    "fixml": (option_trade, (b'PutCall="1"', b'PutCall="7"'), "PutCall", b"<Instrmt "),
    "fpml": (
        irs_trade,
        (b"<businessDayConvention>NONE<", b"<businessDayConvention>SOMETIMES<"),
        "businessDayConvention",
        b"<tradeDate>",
    ),
}


@pytest.mark.parametrize("fmt", sorted(NEGATIVE_CASES))
def test_schema_refuses_a_wrong_enumeration_value_with_line_and_reason(
    fmt: str, schema_root: Path
) -> None:
    sample, (old, new), reason, _ = NEGATIVE_CASES[fmt]
    body = render(sample()).body.replace(old, new, 1)
    errors = SchemaRegistry(schema_root).validate_bytes(body)
    assert errors, "a wrong enumeration value passed the schema"
    assert errors[0].startswith(f"line {_line_of(body, new)}: "), errors
    assert reason in errors[0] and "enumeration" in errors[0], errors


@pytest.mark.parametrize("fmt", sorted(NEGATIVE_CASES))
def test_schema_refuses_an_unknown_element_with_line_and_reason(
    fmt: str, schema_root: Path
) -> None:
    sample, _, _, after = NEGATIVE_CASES[fmt]
    body = _insert_after(render(sample()).body, after, b"<Bogus>1</Bogus>")
    errors = SchemaRegistry(schema_root).validate_bytes(body)
    assert errors, "an unknown element passed the schema"
    assert errors[0].startswith(f"line {_line_of(body, b'<Bogus>')}: "), errors
    assert "Bogus" in errors[0] and "not expected" in errors[0], errors


def test_schema_rejects_a_missing_required_element(fpml_schema: CompiledSchema) -> None:
    doc = etree.fromstring(render(irs_trade()).body)
    trade_date = doc.find(".//{*}tradeDate")
    trade_date.getparent().remove(trade_date)
    errors = fpml_schema.errors(doc)
    assert errors and errors[0].startswith("line ")


def test_formats_by_product() -> None:
    fmts = {name: format_for(t) for name, t in SAMPLES.items()}
    assert fmts == {
        "option": ClearingFormat.FIXML_TRADE_CAPTURE,
        "future": ClearingFormat.FIXML_TRADE_CAPTURE,
        "perpetual": ClearingFormat.FIXML_TRADE_CAPTURE,
        "block_multileg": ClearingFormat.FIXML_TRADE_CAPTURE,
        "irs": ClearingFormat.FPML_REQUEST_CLEARING,
        "fx_option": ClearingFormat.FPML_REQUEST_CLEARING,
    }


def test_idempotency_key_is_stable_and_distinguishes_format_and_version() -> None:
    fmt = ClearingFormat.FIXML_TRADE_CAPTURE
    key = idempotency_key("T-1", fmt)
    assert key == idempotency_key("T-1", fmt, 1)
    assert key.startswith("cb-") and len(key) == 43
    assert all(c in "0123456789abcdef" for c in key[3:])
    assert key != idempotency_key("T-1", fmt, 2)
    assert key != idempotency_key("T-1", ClearingFormat.FPML_REQUEST_CLEARING)
    assert key != idempotency_key("T-2", fmt)
    assert render(option_trade()).key == idempotency_key("T-OPT-0001", fmt)


def test_block_trade_report_carries_legs_and_all_party_roles() -> None:
    doc = etree.fromstring(render(block_multileg_trade()).body)
    rpt = doc.find("{*}TrdCaptRpt")
    assert (rpt.get("TrdTyp"), rpt.get("MLegRptTyp"), rpt.get("TransTyp"), rpt.get("RptTyp")) == (
        "1",
        "3",
        "0",
        "0",
    )
    legs = rpt.findall("{*}TrdLeg")
    assert [(leg.get("LegNo"), leg.find("{*}Leg").get("Side")) for leg in legs] == [
        ("1", "1"),
        ("2", "2"),
    ]
    roles = {p.get("R") for p in rpt.iter("{*}Pty")}
    assert roles == {"1", "4", "21", "24"}
    assert doc.get("v") == "FIX.5.0SP2"


def test_trades_that_cannot_be_cleared_are_refused_with_a_reason() -> None:
    no_ccp = replace(option_trade(), clearing_house=None)
    with pytest.raises(ClearingFormatError, match="no clearing house"):
        render(no_ccp)
    irs = irs_trade()
    bad_payer = replace(
        irs, legs=(replace(irs.legs[0], product=replace(irs.legs[0].product, payer_of_fixed="X")),)
    )
    with pytest.raises(ClearingFormatError, match="fixed payer 'X'"):
        render(bad_payer)
    mixed = replace(irs, legs=(*irs.legs, *option_trade().legs))
    with pytest.raises(ClearingFormatError, match="cannot clear 2 leg"):
        render(mixed)
    odd_ccy = replace(
        irs, legs=(replace(irs.legs[0], product=replace(irs.legs[0].product, currency="XAU")),)
    )
    with pytest.raises(ClearingFormatError, match="currency XAU"):
        render(odd_ccy)
    naive = replace(option_trade(), executed_at=datetime(2026, 3, 2, 14, 30))
    with pytest.raises(ClearingFormatError, match="naive datetime"):
        render(naive)
    float_qty = replace(option_trade(), quantity=25.0)
    with pytest.raises(ClearingFormatError, match="expected Decimal, got float"):
        render(float_qty)


# --- readers --------------------------------------------------------------------------------


@pytest.mark.parametrize("product", sorted(SAMPLES))
def test_reader_round_trips_our_messages(product: str) -> None:
    trade = SAMPLES[product]
    submission = read_submission(render(trade).body)
    assert compare_with_trade(trade, submission) == []
    if isinstance(submission, fpml.ClearingRequestView):
        assert submission.product == trade.legs[0].product
        assert submission.trade_id == trade.trade_id


def test_reader_reports_economic_differences() -> None:
    trade = irs_trade()
    other = replace(trade.legs[0].product, notional=Decimal("60000000"), payer_of_fixed="FXB-DESK")
    submission = read_submission(
        render(replace(trade, legs=(replace(trade.legs[0], product=other),))).body
    )
    breaks = compare_with_trade(trade, submission)
    assert breaks == [
        "buyer: ours ACME-FUND-01 != theirs FXB-DESK",
        "seller: ours FXB-DESK != theirs ACME-FUND-01",
        "quantity: ours 50000000 != theirs 60000000",
    ]


def test_lch_request_clearing_maps_onto_our_model(shared_dir: Path) -> None:
    data = (shared_dir / "samples/lch/ClearLink-requestClearingTESTTRADE001.xml").read_bytes()
    view = read_submission(data)
    assert isinstance(view, fpml.ClearingRequestView)
    assert view.trade_id == "TESTTRADE001"
    assert (view.message_id, view.correlation_id, view.sent_by, view.send_to) == (
        "783593",
        "26398",
        "SEF1",
        "LCHLGB2L",
    )
    assert view.product == IrsTerms(
        currency="AUD",
        notional=Decimal("40000000"),
        effective_date=date(2017, 3, 1),
        termination_date=date(2027, 3, 1),
        fixed_rate=Decimal("0.02008002"),
        floating_index="AUD-BBR-BBSW",
        fixed_day_count=DayCount.ACT_365_FIXED,
        floating_day_count=DayCount.ACT_365_FIXED,
        fixed_payment_frequency="6M",
        floating_payment_frequency="6M",
        payer_of_fixed="CS2SCM",
    )
    assert view.floating_spread == Decimal("0.0000125")
    assert view.counterparties == ("CS2SCM", "CS1SCM")
    assert view.uti == "USIPRE10001USI000000TRADE0001"
    assert view.clearing_brokers == {"CS2SCM": "CS2SCM", "CS1SCM": "CS1SCM"}
    econ = view.economics()
    assert (econ.quantity, econ.price, econ.buyer, econ.seller) == (
        Decimal("40000000"),
        Decimal("0.02008002"),
        "CS2SCM",
        "CS1SCM",
    )


def test_lch_clearing_confirmed_is_an_accepting_ack(shared_dir: Path) -> None:
    ack = parse_ack((shared_dir / "samples/lch/ClearLink-clearingConfirmedSample.xml").read_bytes())
    assert ack.outcome is AckOutcome.ACCEPTED
    assert (ack.reference, ack.message_id, ack.correlation_id) == (
        "585552",
        "LCH_186328705",
        "4511",
    )
    assert ack.submitted_trade_id == "STEL123"
    assert [(c.clearing_trade_id, c.counterparty, c.uti) for c in ack.cleared] == [
        ("LCH00057501717", "OCGCL1", "SW10000000LCH0005750171752945814"),
        ("LCH00057501760", "BDYMW1", "SW10000000LCH0005750176052945814"),
    ]


def test_fixml_ack_parser_reads_accept_and_reject(fixml_schema: CompiledSchema) -> None:
    report = read_submission(render(option_trade()).body)
    ok = fixml.build_trade_capture_report_ack(report, accepted=True, clearing_trade_id="C-1")
    ko = fixml.build_trade_capture_report_ack(
        report, accepted=False, reject_reason=fixml.REJECT_UNKNOWN_INSTRUMENT, reject_text="no"
    )
    for body in (ok, ko):
        assert fixml_schema.errors(etree.fromstring(body)) == []
    accepted, refused = parse_ack(ok), parse_ack(ko)
    assert (accepted.outcome, accepted.reference, accepted.cleared[0].clearing_trade_id) == (
        AckOutcome.ACCEPTED,
        report.report_id,
        "C-1",
    )
    assert (refused.outcome, refused.reason) == (AckOutcome.REJECTED, "RejRsn=2: no")


def test_fpml_answers_validate_and_parse(fpml_schema: CompiledSchema) -> None:
    view = read_submission(render(irs_trade()).body)
    at = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    confirmed = fpml.build_clearing_confirmed(
        view, "M-1", [("ACME-FUND-01", "C-1"), ("FXB-DESK", "C-2")], at
    )
    refused = fpml.build_clearing_refused(view, "M-2", "QuantityLimit", "too big", at)
    for body in (confirmed, refused):
        assert fpml_schema.errors(etree.fromstring(body)) == []
    ack = parse_ack(confirmed)
    assert (ack.outcome, ack.reference, ack.submitted_trade_id) == (
        AckOutcome.ACCEPTED,
        view.message_id,
        "T-IRS-0001",
    )
    assert [(c.counterparty, c.clearing_trade_id) for c in ack.cleared] == [
        ("ACME-FUND-01", "C-1"),
        ("FXB-DESK", "C-2"),
    ]
    with pytest.raises(ClearingFormatError, match="needs 2 cleared"):
        fpml.build_clearing_confirmed(view, "M-3", [("ACME-FUND-01", "C-1")], at)
    nack = parse_ack(refused)
    assert (nack.outcome, nack.reason) == (AckOutcome.REJECTED, "QuantityLimit: too big")


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"<FIXML", "line 1: not well-formed"),
        (b"<hello/>", "not a clearing answer"),
        (b'<FIXML xmlns="http://www.fixprotocol.org/FIXML-5-0-SP2"/>', "no TrdCaptRptAck"),
        (b'<!DOCTYPE x [<!ENTITY e "boom">]><x>&e;</x>', "not a clearing answer|not well"),
    ],
)
def test_ack_parser_rejects_bad_input_with_a_clear_error(data: bytes, match: str) -> None:
    with pytest.raises(ClearingFormatError, match=match):
        parse_ack(data)


# --- validate_file (CLI) --------------------------------------------------------------------


def test_validate_file_reports_errors_with_line_numbers(shared_dir: Path, tmp_path: Path) -> None:
    schemas = shared_dir / "schemas"
    good = tmp_path / "irs.xml"
    good.write_bytes(render(irs_trade()).body)
    assert validate_file(good, schemas) == []
    bad = tmp_path / "bad.xml"
    body = render(irs_trade()).body
    bad.write_bytes(body.replace(b"tradeDate>", b"tradeDay>"))
    errors = validate_file(bad, schemas)
    line = next(i for i, text in enumerate(bad.read_text().splitlines(), 1) if "tradeDay" in text)
    assert errors and errors[0].startswith(f"line {line}: ") and "tradeDay" in errors[0]
    broken = tmp_path / "broken.xml"
    broken.write_bytes(b"<a>\n<b>\n</a>")
    assert validate_file(broken, schemas)[0].startswith("line 3: not well-formed XML")
    assert "cannot read" in validate_file(tmp_path / "nope.xml", schemas)[0]
    assert "not a FIXML or FpML message" in validate_file(broken_ns(tmp_path), schemas)[0]
    with pytest.raises(SchemaSetError, match="schema directory not found"):
        validate_file(good, tmp_path / "none")


def broken_ns(tmp_path: Path) -> Path:
    path = tmp_path / "other.xml"
    path.write_bytes(b'<doc xmlns="urn:other"/>')
    return path


def test_validate_file_checks_fixml(schema_root: Path, tmp_path: Path) -> None:
    path = tmp_path / "option.xml"
    path.write_bytes(render(option_trade()).body)
    assert validate_file(path, schema_root) == []
    path.write_bytes(render(option_trade()).body.replace(b'TransTyp="0"', b'TransTyp="Z"'))
    assert any("TransTyp" in e for e in validate_file(path, schema_root))


# --- the simulator validates what it receives -------------------------------------------------


def test_simulator_validates_and_acks_every_product_over_http(schema_root: Path) -> None:
    with (
        ClearinghouseSimulator(schemas=SchemaRegistry(schema_root)) as sim,
        HttpSender(sim.url, timeout=5) as sender,
    ):
        for product, trade in sorted(SAMPLES.items()):
            msg = render(trade)
            outcome = sender.send(msg)
            assert outcome.result is SendResult.ANSWERED, (product, outcome.detail)
            assert outcome.ack is not None and outcome.ack.accepted, product
            status = httpx.get(f"{sim.url}/clearing/messages/{msg.key}")  # a status query
            assert status.status_code == 200
            assert sim.schemas.validate_bytes(status.content) == [], product
        good = render(irs_trade())
        body = good.body.replace(b"<sequenceNumber>1", b"<sequenceNumber>x")
        bad = replace(good, key="cb-broken", body=body)
        outcome = sender.send(bad)
        assert outcome.result is SendResult.INVALID
        assert "schema validation failed" in outcome.detail and "sequenceNumber" in outcome.detail
        assert httpx.get(f"{sim.url}/clearing/messages/cb-broken").status_code == 404
    assert sim.stats.processed == len(SAMPLES)
    assert sim.stats.invalid == 1


def test_simulator_rejections_validate_against_the_official_schemas(schema_root: Path) -> None:
    """Every answer the simulator gives, refusals included, is valid in its own format."""
    registry = SchemaRegistry(schema_root)
    rules = SimulatorRules(max_quantity=Decimal("0"))
    with (
        ClearinghouseSimulator(rules=rules, schemas=registry) as sim,
        HttpSender(sim.url, timeout=5) as sender,
    ):
        for product, trade in sorted(SAMPLES.items()):
            msg = render(trade)
            outcome = sender.send(msg)
            assert outcome.ack is not None and not outcome.ack.accepted, product
            assert "above limit" in (outcome.ack.reason or ""), outcome.ack
            answer = httpx.get(f"{sim.url}/clearing/messages/{msg.key}").content
            assert registry.validate_bytes(answer) == [], product
