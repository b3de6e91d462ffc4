"""Section 2, the whole story: every ``notebooks/*.ipynb`` executed with its HTML, and
where its seconds go.

Each notebook runs with ``lastfm_rec.reports.execute_notebook`` into the scratch folder, one
subprocess each (``--notebook-repeats`` times), then the ``make run`` equivalent
(``python -m lastfm_rec.reports notebooks --out TMP``) as one subprocess, except with
``--quick``. Each notebook's first run is profiled: the seconds of each code cell (from the
executed notebook), the rest (kernel start-up, HTML), and the library's heavy calls timed by
``lastfm_rec.ops.profiled`` (each fit, evaluation, tuning grid, literature split), which the
kernel writes to the file ``$LASTFM_REC_PROFILE`` names. The table is
``reports/bench.json["notebooks"]["profile"]``.
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
    if args.notebooks:
        paths = [p for p in paths if p.name.startswith(tuple(args.notebooks))]
    out_dir = runner.workdir / "notebooks"
    notebooks = []
    for path in paths:
        print(f"  {path.name} ...", flush=True)
        profile = runner.workdir / f"profile-{path.stem}.jsonl"
        result = runner.repeat("notebook", lambda _i, p=path, f=profile: {
            "path": str(p), "out": str(out_dir), "profile": str(f)},
            args.notebook_repeats, f"notebook-{path.stem}")
        notebooks.append({"notebook": path.name, **result})
    out: dict[str, Any] = {"notebooks": notebooks,
                           "sum_seconds": sum(n["seconds"] for n in notebooks),
                           "profile": [row for nb in notebooks for row in profile_table(nb)]}
    if not args.quick:
        print("  make run equivalent (python -m lastfm_rec.reports notebooks) ...", flush=True)
        only = ["--only", *args.notebooks] if args.notebooks else []
        make_run = runner.run([sys.executable, "-m", "lastfm_rec.reports", "notebooks",
                               "--out", str(runner.workdir / "make_run"), *only], "make-run")
        out["make_run"] = make_run
    return out


#: Cells shorter than this are summed into one row of the profile.
SHORT_CELL_SECONDS = 0.5


def profile_table(nb: dict) -> list[dict]:
    """The profile rows of one measured notebook: the whole run, its kernel start-up and
    HTML (the seconds outside the cells), each cell of at least :data:`SHORT_CELL_SECONDS`
    (the others in one row), then each profiled call path; ``share`` of the whole run."""
    total = nb["seconds"]
    cells = nb["cells"]
    short = [c for c in cells if c["seconds"] < SHORT_CELL_SECONDS]
    rows = [("whole notebook, with HTML", 1, total, None),
            ("kernel start-up, HTML, saving", 1, total - sum(c["seconds"] for c in cells),
             None)]
    rows += [(f"cell [{c['cell']}] {c['source']}", 1, c["seconds"], None)
             for c in cells if c["seconds"] >= SHORT_CELL_SECONDS]
    if short:
        rows.append((f"{len(short)} cells under {SHORT_CELL_SECONDS} s", len(short),
                     sum(c["seconds"] for c in short), None))
    rows += [("  " * (1 + p["path"].count(" / ")) + p["path"].rsplit(" / ", 1)[-1],
              p["calls"], p["seconds"], p["cpu_seconds"]) for p in nb["profile"]]
    return [{"notebook": nb["notebook"], "label": label, "calls": calls, "seconds": seconds,
             "cpu_seconds": cpu, "share": seconds / total if total else None}
            for label, calls, seconds, cpu in rows]


def render_profile(n: dict) -> str:
    """Where each notebook's seconds go: cells, then the library's timed calls (indented
    under the call they ran in)."""
    rows = [[f"{r['notebook'].split('_')[0]} {r['label']}", r["calls"], r["seconds"],
             r["cpu_seconds"], None if r["share"] is None else f"{100 * r['share']:.0f}%"]
            for r in n["profile"]]
    return table("2b. Where the seconds go (each notebook's first run; a timed call is "
                 "indented one step more than its caller and listed just above it, as calls "
                 "end; its seconds are part of the caller's)",
                 ["notebook: cell or call", "calls", "seconds", "CPU s", "share"], rows)


def render(n: dict) -> str:
    """One row per notebook, their sum and the ``make run`` equivalent, then the profile."""
    rows = [[nb["notebook"], nb["seconds"], nb["execute_seconds"], nb["peak_rss_mb"],
             nb.get("tree_peak_rss_mb")] for nb in n["notebooks"]]
    rows.append(["sum of the above", n["sum_seconds"], None, None, None])
    if "make_run" in n:
        rows.append(["make run equivalent (two notebooks at a time)",
                     n["make_run"]["wall_seconds"], None, n["make_run"]["peak_rss_mb"],
                     n["make_run"]["tree_peak_rss_mb"]])
    repeats = n["notebooks"][0]["repeats"] if n["notebooks"] else 0
    whole = table(f"2. The whole story: notebooks executed with HTML (median of {repeats})",
                  ["notebook", "seconds", "of which cells", "peak RSS MB",
                   "all processes MB"], [row + [None] * (5 - len(row)) for row in rows])
    return whole + "\n\n" + render_profile(n) if n.get("profile") else whole


def memory(n: dict) -> list[list[Any]]:
    """Each notebook's process (with its kernel) and the ``make run`` equivalent."""
    rows = [[f"notebook {nb['notebook']} (with its kernel)", nb["peak_rss_mb"]]
            for nb in n["notebooks"]]
    if "make_run" in n:
        rows.append(["make run equivalent: its largest process", n["make_run"]["peak_rss_mb"]])
        rows.append(["make run equivalent: all its processes at once",
                     n["make_run"]["tree_peak_rss_mb"]])
    return rows
