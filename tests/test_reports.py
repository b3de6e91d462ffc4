"""``make run``'s runner: one line per notebook, nothing a user would take for a problem."""

from __future__ import annotations

import subprocess
import sys

import nbformat
import pytest

from lastfm_rec.reports import read_results

pytestmark = pytest.mark.slow


def test_running_notebooks_prints_one_line_each(tmp_path) -> None:
    folder = tmp_path / "notebooks"
    folder.mkdir()
    for name in ("a.ipynb", "b.ipynb"):
        notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
            "from lastfm_rec.reports import record\nrecord(answer=6 * 7)")])
        nbformat.write(notebook, folder / name)
    result = subprocess.run([sys.executable, "-m", "lastfm_rec.reports", str(folder), "--out",
                             str(tmp_path / "out")], capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # e.g. no "Kernel is running over TCP without encryption"
    lines = result.stdout.splitlines()
    assert len(lines) == 3, result.stdout
    for line, name in zip(lines, ("a", "b"), strict=False):
        assert line.startswith(f"{name}.ipynb ... ") and line.endswith(f"{name}.html")
    assert lines[2].startswith("2 notebooks in ")
    assert read_results(tmp_path / "out" / "a.ipynb") == {"answer": 42}
