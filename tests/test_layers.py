"""The layers, read from the source: which package may import what.

``fixspec`` (the FIX dictionary, normalised messages, pure codecs) depends on nothing of ours;
``otc`` (the sans-IO cores) only on ``fixspec``; neither imports a module whose job is I/O, nor
calls ``open`` or ``print``. ``gateway`` (the edges) never reaches into ``load`` or ``tests``.
Every import counts, including those inside functions. A failure names the module, the line and
the import.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Modules that exist to do I/O or run things concurrently: sockets, servers and HTTP clients,
# databases, the FIX engine, web frameworks, threads, processes and signals, files, archives and
# the process's own streams, log output, and dynamic imports (which would dodge this check).
# Not listed, because they are used here on values only: ``io`` (StringIO for CSV text), ``json``,
# ``csv``, ``lxml`` (parsing and building bytes), ``cryptography``, ``random`` and ``time``.
IO_MODULES = frozenset(
    {
        "socket", "ssl", "select", "selectors", "asyncio", "http", "urllib", "httpx", "requests",
        "websockets", "sqlite3", "sqlalchemy", "sqlmodel", "psycopg", "quickfix", "fastapi",
        "starlette", "uvicorn", "threading", "_thread", "multiprocessing", "concurrent",
        "subprocess", "signal", "os", "sys", "pathlib", "shutil", "tempfile", "fcntl", "glob",
        "mmap", "tarfile", "zipfile", "logging", "importlib",
    }
)  # fmt: skip
IO_BUILTINS = frozenset({"open", "print", "input", "__import__"})

# (module, import) pairs that stay, each with the reason it does not break the rule.
ALLOWED_IO = {
    ("otc.clearing.outbox", "threading"): (
        "a Lock that makes InMemoryOutbox, the in-memory repository of tests and the demo, safe "
        "to share between the threads of several dispatchers; nothing in otc starts a thread"
    ),
}


def _modules(package: str) -> Iterator[tuple[str, Path]]:
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts), path


def _imports(module: str, path: Path) -> Iterator[tuple[int, str]]:
    """(line, imported module) for every import in the file; relative imports resolved."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield node.lineno, base


def _builtin_calls(path: Path) -> Iterator[tuple[int, str]]:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and (node.func.id in IO_BUILTINS)
        ):
            yield node.lineno, node.func.id


def _top(name: str) -> str:
    return name.split(".")[0]


def _report(found: list[str]) -> str:
    return "\n".join(["", *found])


def _forbidden_imports(packages: tuple[str, ...], forbidden: frozenset[str]) -> list[str]:
    return [
        f"{module} (line {line}) imports {name}"
        for package in packages
        for module, path in _modules(package)
        for line, name in _imports(module, path)
        if _top(name) in forbidden
    ]


def test_fixspec_imports_nothing_of_ours() -> None:
    found = _forbidden_imports(("fixspec",), frozenset({"otc", "gateway", "load", "tests"}))
    assert not found, _report(found)


def test_otc_imports_only_fixspec_of_ours() -> None:
    found = _forbidden_imports(("otc",), frozenset({"gateway", "load", "tests"}))
    assert not found, _report(found)


def test_gateway_never_imports_load_or_tests() -> None:
    found = _forbidden_imports(("gateway",), frozenset({"load", "tests"}))
    assert not found, _report(found)


def test_fixspec_and_otc_do_no_io() -> None:
    found = []
    for package in ("fixspec", "otc"):
        for module, path in _modules(package):
            for line, name in _imports(module, path):
                if _top(name) in IO_MODULES and (module, _top(name)) not in ALLOWED_IO:
                    found.append(f"{module} (line {line}) imports {name}")
            for line, name in _builtin_calls(path):
                found.append(f"{module} (line {line}) calls {name}()")
    assert not found, _report(found)


def test_every_allowed_exception_is_still_there() -> None:
    """An allowance nobody needs any more would only hide a future import."""
    used = {
        (module, _top(name))
        for package in ("fixspec", "otc")
        for module, path in _modules(package)
        for _, name in _imports(module, path)
    }
    assert set(ALLOWED_IO) <= used


def test_the_checker_sees_nested_relative_and_dotted_imports(tmp_path: Path) -> None:
    path = tmp_path / "mod.py"
    path.write_text(
        "import os.path\n"
        "from . import sibling\n"
        "from ..audit import log\n"
        "def f():\n"
        "    from gateway.fix import rfq_inbound\n"
        "    print(open('x'))\n"
    )
    assert list(_imports("otc.clearing.mod", path)) == [
        (1, "os.path"),
        (2, "otc.clearing"),
        (3, "otc.audit"),
        (5, "gateway.fix"),
    ]
    assert sorted(_builtin_calls(path)) == [(6, "open"), (6, "print")]
