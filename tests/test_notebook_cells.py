"""The notebooks narrate and plot; the logic lives in the library.

Every code cell is parsed with ``ast`` (nothing runs): a function or class defined in a cell
may take at most :data:`MAX_LINES` lines. A longer helper belongs in ``lastfm_rec`` with a
docstring and a test.
"""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
MAX_LINES = 5


def definitions(source: str) -> list[tuple[str, int]]:
    """``(name, lines)`` of every function and class defined in a cell's code."""
    tree = ast.parse(TransformerManager().transform_cell(source))  # %magics become calls
    return [(node.name, node.end_lineno - node.lineno + 1) for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)]


def test_definitions_are_measured_from_def_to_last_line() -> None:
    source = "%matplotlib inline\nx = 1\n\ndef f(a):\n    '''Doc.'''\n    return a\n"
    assert definitions(source) == [("f", 3)]
    assert definitions("class A:\n    def g(self):\n        pass\n") == [("A", 3), ("g", 2)]


def test_there_are_notebooks() -> None:
    assert len(NOTEBOOKS) >= 6


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_cells_define_no_long_functions(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    long = [f"cell {index}: {name} ({lines} lines)"
            for index, cell in enumerate(notebook.cells) if cell.cell_type == "code"
            for name, lines in definitions(cell.source) if lines > MAX_LINES]
    assert not long, (f"{path.name} defines helpers longer than {MAX_LINES} lines; move them "
                      f"into lastfm_rec (with a docstring and a test): {'; '.join(long)}")
