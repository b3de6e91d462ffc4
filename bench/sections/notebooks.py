"""Section 2, the whole story: every ``notebooks/*.ipynb`` executed with its HTML.

Each notebook runs with ``lastfm_rec.reports.execute_notebook`` into the scratch folder, one
subprocess each (``--notebook-repeats`` times), then the ``make run`` equivalent
(``python -m lastfm_rec.reports notebooks --out TMP``) as one subprocess, except with
``--quick``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from bench.report import table
from bench.runner import ROOT, Runner


def measure(runner: Runner, args: argparse.Namespace) -> dict:
    """Time and peak RSS of each notebook, their sum, and of the ``make run`` equivalent."""
    paths = sorted((ROOT / "notebooks").glob("*.ipynb"))
    out_dir = runner.workdir / "notebooks"
    notebooks = []
    for path in paths:
        print(f"  {path.name} ...", flush=True)
        result = runner.repeat("notebook", lambda _i, p=path: {"path": str(p),
                                                               "out": str(out_dir)},
                               args.notebook_repeats, f"notebook-{path.stem}")
        notebooks.append({"notebook": path.name, **result})
    out: dict[str, Any] = {"notebooks": notebooks,
                           "sum_seconds": sum(n["seconds"] for n in notebooks)}
    if not args.quick:
        print("  make run equivalent (python -m lastfm_rec.reports notebooks) ...", flush=True)
        make_run = runner.run([sys.executable, "-m", "lastfm_rec.reports", "notebooks",
                               "--out", str(runner.workdir / "make_run")], "make-run")
        out["make_run"] = make_run
    return out


def render(n: dict) -> str:
    """One row per notebook, their sum and the ``make run`` equivalent."""
    rows = [[nb["notebook"], nb["seconds"], nb["execute_seconds"], nb["peak_rss_mb"]]
            for nb in n["notebooks"]]
    rows.append(["sum of the above", n["sum_seconds"], None, None])
    if "make_run" in n:
        rows.append(["make run equivalent (one process)", n["make_run"]["wall_seconds"], None,
                     n["make_run"]["peak_rss_mb"]])
    repeats = n["notebooks"][0]["repeats"] if n["notebooks"] else 0
    return table(f"2. The whole story: notebooks executed with HTML (median of {repeats})",
                 ["notebook", "seconds", "of which cells", "peak RSS MB"], rows)


def memory(n: dict) -> list[list[Any]]:
    """Each notebook's process (with its kernel) and the ``make run`` equivalent."""
    rows = [[f"notebook {nb['notebook']} (with its kernel)", nb["peak_rss_mb"]]
            for nb in n["notebooks"]]
    if "make_run" in n:
        rows.append(["make run equivalent", n["make_run"]["peak_rss_mb"]])
    return rows
