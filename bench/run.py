"""The benchmark suite (``make bench``): speed and memory of the whole study, and how they grow.

Sections (:data:`bench.sections.SECTIONS`; each module's docstring says what it measures):

1. ``training``  the original per-step loop, the package's gradient path and the ALS solver
   on the real data (``bench/bench_training.py``).
2. ``notebooks`` every notebook executed with its HTML, then the ``make run`` equivalent; a
   profile of each notebook (its cells and the library's heavy calls).
3. ``serving``   the command-line tool's path: sessions, one new user's latency, batched
   ``recommend``, ``lastfm-rec --help`` and ``lastfm-rec recommend``.
4. Peak RSS: a column of every table above, and one table of every measured process.
5. ``growth``    each step of the study on seeded synthetic data at 1x, 10x (and 100x); the
   growth exponents and the plot ``reports/bench_growth.png``; the memory bound of each step.

Each measured process runs in its own subprocess, so that its peak resident memory can be
read from ``os.wait4`` (:mod:`bench.runner`). Everything runs one process at a time with one
BLAS/OpenMP thread (``--threads``), so the bench never competes with itself on the 2-core
machine and medians stay stable while others use it; the load average at start and end is
recorded. Measurements are medians of ``--repeats`` (3) runs, except that a run longer than
``LONG_RUN_SECONDS`` (20 s) is not repeated (the repeats actually made are in the tables);
each notebook runs once (``--notebook-repeats``). Results: a table on stdout and
``reports/bench.json`` (with machine information). ``--quick``: one repeat, 1x only, no
``make run`` equivalent (its total is then the sum of the notebooks).

Usage: ``python bench/run.py [--quick] [--with-100x] [--only SECTION ...] [--repeats N]
[--notebooks PREFIX ...]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.report import machine_info, machine_line, summary, write_json  # noqa: E402
from bench.runner import (  # noqa: E402
    CHILD_TIMEOUT,
    LONG_RUN_SECONDS,
    ChildFailed,
    Runner,
    child_env,
)
from bench.sections import SECTIONS  # noqa: E402
from bench.sections.growth import CF_SWEEPS, SAMPLE_USERS, SEED  # noqa: E402
from bench.sections.serving import LATENCY_CALLS  # noqa: E402
from bench.sections.training import TRAINING_STEPS  # noqa: E402
from bench.workers import BLOCK_BYTES  # noqa: E402


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line; ``--repeats`` defaults to 1 with ``--quick``, else 3."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: one repeat, 1x only, no make-run equivalent")
    parser.add_argument("--with-100x", action="store_true",
                        help="also the 100x synthetic size (~9.3 M rows; several minutes, "
                             "a few GB)")
    parser.add_argument("--only", nargs="+", choices=list(SECTIONS), default=None,
                        help="run only these sections")
    parser.add_argument("--repeats", type=int, default=None,
                        help="repeats of each measurement (default 3, --quick 1)")
    parser.add_argument("--notebooks", nargs="+", default=None, metavar="PREFIX",
                        help="only the notebooks whose names start with these (e.g. 04 05); "
                             "the make run equivalent then runs only them too")
    parser.add_argument("--notebook-repeats", type=int, default=1,
                        help="repeats of each notebook (default 1: a run takes minutes)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="the HetRec folder (default: $LASTFM_REC_DATA, then "
                             "data/hetrec2011-lastfm-2k)")
    parser.add_argument("--serving-model", default=None,
                        help="model of the serving section (default: the CLI's default)")
    parser.add_argument("--threads", type=int, default=1,
                        help="BLAS/OpenMP threads per measured process; 0 leaves the "
                             "libraries' defaults (default 1)")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "bench.json")
    parser.add_argument("--plot", type=Path, default=ROOT / "reports" / "bench_growth.png")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="scratch folder (default: a new temporary folder)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the scratch folder (logs, synthetic data, executed notebooks)")
    parser.add_argument("--timeout", type=int, default=CHILD_TIMEOUT,
                        help="seconds before a measured subprocess is killed")
    args = parser.parse_args(argv)
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    if args.repeats < 1 or args.notebook_repeats < 1:
        parser.error("repeats must be at least 1")
    return args


def settings_of(args: argparse.Namespace, sections: list[str]) -> dict[str, Any]:
    """The options and constants of this run, kept in the JSON."""
    return {"quick": args.quick, "with_100x": args.with_100x, "repeats": args.repeats,
            "notebook_repeats": args.notebook_repeats, "notebooks": args.notebooks,
            "threads": args.threads,
            "sections": sections, "data_dir": str(args.data_dir),
            "serving_model": args.serving_model, "long_run_seconds": LONG_RUN_SECONDS,
            "training_steps": TRAINING_STEPS, "cf_sweeps": CF_SWEEPS,
            "latency_calls": LATENCY_CALLS, "sample_users": SAMPLE_USERS,
            "block_bytes": BLOCK_BYTES, "seed": SEED}


def run_sections(runner: Runner, args: argparse.Namespace, sections: list[str],
                 report: dict[str, Any]) -> list[str]:
    """Run each section into ``report[name]``; a failed one keeps ``{"error": ...}``.
    Returns the names of the failed sections."""
    failed = []
    for name in sections:
        print(f"[{name}]", flush=True)
        start = time.perf_counter()
        try:
            report[name] = SECTIONS[name].measure(runner, args)
        except ChildFailed as error:
            print(f"  FAILED: {error}", flush=True)
            report[name] = {"error": str(error)}
            failed.append(name)
            continue
        report[name]["section_seconds"] = time.perf_counter() - start
        print(f"  done in {report[name]['section_seconds']:.0f} s\n", flush=True)
    return failed


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen sections, write the JSON, print the tables; 1 if a section failed,
    2 without the data."""
    args = parse_args(argv)
    from lastfm_rec.data.hetrec import DataError, find_data_dir

    try:
        found = find_data_dir(args.data_dir)
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if found is None:
        print("error: HetRec data not found: run `make data` or set LASTFM_REC_DATA",
              file=sys.stderr)
        return 2
    args.data_dir = found.resolve()
    if args.serving_model is None:
        from lastfm_rec.serving.cli import DEFAULT_MODEL

        args.serving_model = DEFAULT_MODEL
    sections = args.only or list(SECTIONS)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="lastfm-rec-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    runner = Runner(workdir, child_env(args.data_dir, workdir / "cache", args.threads),
                    args.timeout)
    settings = settings_of(args, sections)
    machine = machine_info()
    report: dict[str, Any] = {"started": dt.datetime.now().isoformat(timespec="seconds"),
                              "machine": machine, "settings": settings}
    print(machine_line(machine, settings))
    print(f"Scratch folder: {workdir} ({'kept' if args.keep else 'removed at the end'})\n",
          flush=True)
    start = time.perf_counter()
    try:
        failed = run_sections(runner, args, sections, report)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    report["total_seconds"] = time.perf_counter() - start
    report["machine"]["load_average_end"] = os.getloadavg()
    report["failed"] = failed
    write_json(args.out, report)
    print(summary(report, SECTIONS, args.out))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
