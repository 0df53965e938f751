"""Compiled FIXML / FpML schemas, read from disk and cached per file, and file validation for
the CLI.

Compiling the FIXML set takes seconds, so each main XSD is compiled once per process and shared.
Where the schemas live is always passed in (a setting): nothing here knows about ``../shared``.
A schema directory handed to :class:`SchemaRegistry` may be the folder holding a main XSD or any
parent of it (e.g. a ``schemas/`` root holding ``fixml-5-0-sp2/`` and ``fpml-5-10/confirmation/``).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from otc.clearing.codec import parse_xml, safe_parser
from otc.clearing.fixml import FIXML_NS
from otc.clearing.fpml import FPML_NS

FIXML_MAIN = "fixml-main-5-0-SP2.xsd"
FPML_MAIN = "fpml-main-5-10.xsd"
_MAIN_BY_NS = {FIXML_NS: FIXML_MAIN, FPML_NS: FPML_MAIN}


class SchemaSetError(RuntimeError):
    """A schema directory that cannot be used: missing, incomplete or not compilable."""


@dataclass
class CompiledSchema:
    """One compiled XSD. ``validate`` is serialised: an lxml schema keeps one error log."""

    main: Path
    schema: etree.XMLSchema
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def errors(self, doc: etree._Element | etree._ElementTree) -> list[str]:
        """Validation errors as ``line N: message`` strings (empty when valid)."""
        with self._lock:
            if self.schema.validate(doc):
                return []
            return [f"line {e.line}: {e.message}" for e in self.schema.error_log]


_cache: dict[Path, CompiledSchema] = {}
_cache_lock = threading.Lock()


_XS = "{http://www.w3.org/2001/XMLSchema}"
_REFERENCES = (f"{_XS}include", f"{_XS}import", f"{_XS}redefine")


def _check_complete(main: Path) -> None:
    """Follow ``main``'s includes and imports and name every file that is missing, empty or
    unparseable; lxml would only say 'Document is empty' or fail later on an undefined type."""
    broken: list[str] = []
    seen = {main}
    pending = [(main, "")]
    while pending:
        xsd, referrer = pending.pop()
        where = f" (referenced by {referrer})" if referrer else ""
        try:
            if xsd.stat().st_size == 0:
                broken.append(f"{xsd.name} is empty (0 bytes){where}")
                continue
            tree = etree.parse(str(xsd), safe_parser())
        except FileNotFoundError:
            broken.append(f"{xsd.name} is missing{where}")
            continue
        except (OSError, etree.XMLSyntaxError) as exc:
            broken.append(f"{xsd.name}: {exc}")
            continue
        for ref in tree.getroot().iter(*_REFERENCES):
            location = ref.get("schemaLocation")
            if not location or "://" in location:
                continue  # a namespace import without a file, or a remote one we never fetch
            target = (xsd.parent / location).resolve()
            if target not in seen:
                seen.add(target)
                pending.append((target, xsd.name))
    if broken:
        problems = "; ".join(sorted(broken))
        raise SchemaSetError(f"schema set {main.parent} is incomplete: {problems}")


def compile_schema(main: Path) -> CompiledSchema:
    """Compile ``main`` (an XSD path) once per process; later calls return the cached schema."""
    main = main.resolve()
    with _cache_lock:
        cached = _cache.get(main)
        if cached is not None:
            return cached
        if not main.is_file():
            raise SchemaSetError(f"schema file not found: {main}")
        _check_complete(main)
        try:
            compiled = CompiledSchema(main, etree.XMLSchema(etree.parse(str(main))))
        except (etree.XMLSchemaParseError, etree.XMLSyntaxError) as exc:
            raise SchemaSetError(f"cannot compile {main}: {exc}") from exc
        _cache[main] = compiled
        return compiled


def find_main_xsd(schema_dir: Path, main_name: str) -> Path:
    """Locate ``main_name`` in ``schema_dir`` or below it (FpML: the confirmation view)."""
    direct = schema_dir / main_name
    if direct.is_file():
        return direct
    found = sorted(
        Path(dirpath) / main_name
        for dirpath, _, files in os.walk(schema_dir, followlinks=True)
        if main_name in files
    )
    if main_name == FPML_MAIN:
        found = [p for p in found if p.parent.name == "confirmation"] or found
    if not found:
        raise SchemaSetError(f"no {main_name} in {schema_dir}")
    return found[0]


class SchemaRegistry:
    """Schemas for the message formats we emit, resolved under one configured directory."""

    def __init__(self, schema_dir: Path | str) -> None:
        self.schema_dir = Path(schema_dir)
        if not self.schema_dir.is_dir():
            raise SchemaSetError(f"schema directory not found: {self.schema_dir}")

    def for_namespace(self, namespace: str) -> CompiledSchema:
        main_name = _MAIN_BY_NS.get(namespace)
        if main_name is None:
            raise SchemaSetError(f"no schema known for namespace {namespace!r}")
        return compile_schema(find_main_xsd(self.schema_dir, main_name))

    def preload(self) -> None:
        """Compile every known schema now; raises :class:`SchemaSetError` naming the defect."""
        for namespace in _MAIN_BY_NS:
            self.for_namespace(namespace)

    def errors(self, doc: etree._Element) -> list[str]:
        """Validate a parsed document against the schema of its root namespace."""
        namespace = etree.QName(doc).namespace or ""
        try:
            schema = self.for_namespace(namespace)
        except SchemaSetError as exc:
            return [str(exc)]
        return schema.errors(doc)

    def validate_bytes(self, data: bytes) -> list[str]:
        try:
            doc = parse_xml(data)
        except etree.XMLSyntaxError as exc:
            return [f"line {exc.lineno}: not well-formed XML: {exc.msg}"]
        return self.errors(doc)


def validate_file(path: Path | str, schema_dir: Path | str) -> list[str]:
    """Errors (with line numbers) for the FIXML or FpML message in ``path``; empty when valid.

    Backs ``fixbridge clearing validate FILE``. A bad message is reported, never raised; an
    unusable schema set (directory or file missing, a file empty) raises
    :class:`SchemaSetError` naming it, since then nothing can be said about the message.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return [f"cannot read {path}: {exc.strerror or exc}"]
    registry = SchemaRegistry(schema_dir)
    try:
        doc = parse_xml(data)
    except etree.XMLSyntaxError as exc:
        return [f"line {exc.lineno}: not well-formed XML: {exc.msg}"]
    namespace = etree.QName(doc).namespace or ""
    if namespace not in _MAIN_BY_NS:
        return [f"line {doc.sourceline}: not a FIXML or FpML message (namespace {namespace!r})"]
    return registry.for_namespace(namespace).errors(doc)
