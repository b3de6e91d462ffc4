"""``make run``'s runner: one line per notebook, nothing a user would take for a problem."""

from __future__ import annotations

import os
import subprocess
import sys

import nbformat
import pytest

from lastfm_rec.reports import THREAD_VARIABLES, read_results

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("jobs", [1, 2])
def test_running_notebooks_prints_one_line_each(tmp_path, jobs: int) -> None:
    folder = tmp_path / "notebooks"
    folder.mkdir()
    for name in ("a.ipynb", "b.ipynb"):
        notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
            "import os\nfrom lastfm_rec.reports import record\n"
            "record(answer=6 * 7, threads=os.environ.get('OPENBLAS_NUM_THREADS'))")])
        nbformat.write(notebook, folder / name)
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    result = subprocess.run([sys.executable, "-m", "lastfm_rec.reports", str(folder), "--out",
                             str(tmp_path / "out"), "--jobs", str(jobs)], capture_output=True,
                            text=True, timeout=300, check=False, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # e.g. no "Kernel is running over TCP without encryption"
    lines = result.stdout.splitlines()
    if jobs > 1:
        assert lines.pop(0) == "running 2 notebooks, 2 at a time ..."
    assert len(lines) == 3, result.stdout
    done = sorted(lines[:2]) if jobs > 1 else lines[:2]  # in parallel: as they finish
    for line, name in zip(done, ("a", "b"), strict=True):
        assert line.startswith(f"{name}.ipynb ... ") and line.endswith(f"{name}.html")
    assert lines[2].startswith("2 notebooks in ")
    # two kernels at once on two cores get one BLAS thread each; alone, the default
    expected = str(max(1, (os.cpu_count() or 1) // 2)) if jobs > 1 else None
    assert read_results(tmp_path / "out" / "a.ipynb") == {"answer": 42, "threads": expected}


