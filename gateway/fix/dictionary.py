"""The dictionary file the engine loads: QuickFIX's installed FIX44.xml, read, extended with our
fields (:func:`fixspec.dictionary.add_custom_fields`) and written into the data directory."""

from __future__ import annotations

import sys
from pathlib import Path

from fixspec.dictionary import DictionaryError, add_custom_fields


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
    """The stock dictionary (by default the installed one) with our fields added, as XML bytes."""
    stock = stock or stock_dictionary_path()
    try:
        data = Path(stock).read_bytes()
    except OSError as exc:
        raise DictionaryError(f"{stock}: {exc}") from exc
    return add_custom_fields(data, str(stock))


def write_dictionary(data_dir: Path) -> Path:
    """Assemble the dictionary into ``data_dir`` (atomically) and return its path."""
    data_dir.mkdir(parents=True, exist_ok=True)
    target = data_dir / "FIX44-fixbridge.xml"
    tmp = target.with_suffix(".xml.tmp")
    tmp.write_bytes(assemble())
    tmp.replace(target)
    return target
