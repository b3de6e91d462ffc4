"""Only command-line entry points print, checked from the source with ``ast``.

Library code reports through ``logging`` (or ``warnings`` for what a user must see); the
entry points below print their output and decide where the library's log records go.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "lastfm_rec"
#: Modules that are command lines as a whole (paths relative to the package).
ENTRY_MODULES = {"serving/cli.py", "spark/cli.py"}
#: Entry-point functions inside library modules: (module, function name).
ENTRY_FUNCTIONS = {("reports.py", "main")}


def print_calls(path: Path) -> list[tuple[int, str]]:
    """``(line, enclosing top-level function or "")`` of every ``print(...)`` call."""
    found = []
    for top in ast.parse(path.read_text(encoding="utf-8")).body:
        owner = top.name if isinstance(top, (ast.FunctionDef, ast.AsyncFunctionDef)) else ""
        for node in ast.walk(top):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id == "print"):
                found.append((node.lineno, owner))
    return found


def module_key(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


SOURCES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=module_key)
def test_library_code_does_not_print(path: Path) -> None:
    key = module_key(path)
    if key in ENTRY_MODULES:
        return
    stray = [line for line, owner in print_calls(path) if (key, owner) not in ENTRY_FUNCTIONS]
    assert not stray, (f"lastfm_rec/{key} calls print() on line(s) {stray}: log it "
                       "(logging.getLogger(__name__)) or warn; only command lines print")


def test_checker_sees_prints() -> None:
    """The entry points do print, and the parser finds it (a guard against a vacuous pass)."""
    for key in ENTRY_MODULES:
        assert print_calls(PACKAGE / key), key
    for key, function in ENTRY_FUNCTIONS:
        assert any(owner == function for _, owner in print_calls(PACKAGE / key)), key


def test_checker_flags_a_print_in_a_method(tmp_path: Path) -> None:
    source = tmp_path / "module.py"
    source.write_text("class A:\n    def f(self):\n        print('x')\n", encoding="utf-8")
    assert print_calls(source) == [(3, "")]
