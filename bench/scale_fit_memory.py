"""Peak memory of the driver of ``lastfm-rec scale fit`` on synthetic data of growing size.

For each size (``--scales``, multiples of the real users and artists:
``lastfm_rec.data.synthetic.SyntheticSpec.scaled``, seeded), the HetRec-format folder is
generated once, then ``python -m lastfm_rec.serving.cli scale fit --input FOLDER --out DIR``
runs ``--repeats`` times as a subprocess of its own (:class:`bench.runner.Runner`). Every
``bench.runner.TREE_SAMPLE_SECONDS`` the resident memory of the driver's Python process and of
its descendants (the driver JVM that pyspark starts; in local mode it also runs the tasks) is
sampled; the table gives the medians of their peaks: Python alone, the JVM, and their sum at
one moment.

``--artists-per-user N`` grows the rows alone: each user listens to N artists instead of the
real data's 50, with the users and artists (and so the factors) of the size.

``--code DIR`` puts DIR first on the command's ``PYTHONPATH``, so that another version of the
package (e.g. ``git archive main | tar -x -C DIR``) is measured on the same data, with the
same settings. Outputs: the table on stdout and, with ``--out``, a JSON of every run.

Usage: ``python bench/scale_fit_memory.py [--scales 1 10] [--repeats 3] [--master local[2]]
[--factors 64] [--iterations 5] [--artists-per-user N] [--code DIR] [--workdir DIR] [--out FILE]``
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.report import table, write_json  # noqa: E402
from bench.runner import CHILD_TIMEOUT, Runner  # noqa: E402

#: The measures of each run, as (JSON key of :meth:`bench.runner.Runner.run`, column title).
PEAKS = (("root_peak_rss_mb", "driver Python MB"), ("children_peak_rss_mb", "driver JVM MB"),
         ("tree_peak_rss_mb", "together MB"))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 10],
                        help="synthetic sizes, multiples of the real data (default 1 10)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per size (default 3)")
    parser.add_argument("--master", default="local[2]", help="Spark master (default local[2])")
    parser.add_argument("--driver-memory", default="2g", help="driver JVM heap (default 2g)")
    parser.add_argument("--factors", type=int, default=64, help="ALS factors (default 64)")
    parser.add_argument("--iterations", type=int, default=5,
                        help="ALS iterations (default 5: the driver's memory does not depend "
                             "on them)")
    parser.add_argument("--artists-per-user", type=int, default=None, metavar="N",
                        help="artists per user (default 50, as the real data): more rows, "
                             "the same users and artists")
    parser.add_argument("--seed", type=int, default=0, help="synthetic data seed (default 0)")
    parser.add_argument("--code", type=Path, default=None, metavar="DIR",
                        help="measure the package in DIR instead of this checkout's")
    parser.add_argument("--workdir", type=Path, default=None, metavar="DIR",
                        help="data, model folders and logs (default: a new temporary folder, "
                             "removed at the end)")
    parser.add_argument("--out", type=Path, default=None, help="write every run here as JSON")
    return parser.parse_args(argv)


def command_env(code: Path | None, workdir: Path) -> dict[str, str]:
    """The measured command's environment: ``code`` (or this checkout) first on
    ``PYTHONPATH``, temporary files (the JVM's log) under ``workdir``."""
    first = str((code or ROOT).resolve())
    path = os.pathsep.join(filter(None, [first, os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "TMPDIR": str(workdir),
            "PYTHONUNBUFFERED": "1"}


def measure(args: argparse.Namespace, workdir: Path) -> dict[str, list[dict]]:
    """Every run of every size: :meth:`bench.runner.Runner.run`'s numbers."""
    from lastfm_rec.data.synthetic import SyntheticSpec, generate_hetrec

    def spec(scale: int) -> SyntheticSpec:
        scaled = SyntheticSpec.scaled(scale)
        if args.artists_per_user is None:
            return scaled
        return dataclasses.replace(scaled, artists_per_user=args.artists_per_user)

    runner = Runner(workdir, command_env(args.code, workdir), CHILD_TIMEOUT)
    runs: dict[str, list[dict]] = {}
    for scale in args.scales:
        folder = generate_hetrec(workdir / f"x{scale}", spec(scale), seed=args.seed)
        runs[f"{scale}x"] = []
        for repeat in range(args.repeats):
            out = workdir / f"model-x{scale}"
            shutil.rmtree(out, ignore_errors=True)
            command = [sys.executable, "-m", "lastfm_rec.serving.cli", "scale", "fit",
                       "--input", str(folder), "--out", str(out), "--master", args.master,
                       "--driver-memory", args.driver_memory, "--local-dir", str(workdir),
                       "--factors", str(args.factors), "--iterations", str(args.iterations)]
            # Run in workdir: `python -m` puts the folder it runs in first on sys.path, so in
            # this checkout it would import this checkout's package whatever --code says.
            run = runner.run(command, f"scale-fit-x{scale}-{repeat + 1}", cwd=workdir)
            runs[f"{scale}x"].append(run)
            print(f"{scale}x run {repeat + 1}: " + ", ".join(
                f"{title} {run[key]:,.0f}" for key, title in PEAKS)
                + f", {run['wall_seconds']:.0f} s", file=sys.stderr, flush=True)
    return runs


def render(runs: dict[str, list[dict]], args: argparse.Namespace) -> str:
    """The medians of each size's peaks, and its seconds."""
    from lastfm_rec.data.synthetic import SyntheticSpec

    rows = [[size, len(done), *(statistics.median(r[key] for r in done) for key, _ in PEAKS),
             statistics.median(r["wall_seconds"] for r in done)]
            for size, done in runs.items()]
    code = args.code or ROOT
    rows_per_user = args.artists_per_user or SyntheticSpec.artists_per_user
    return table(f"scale fit driver peak memory ({code}; {rows_per_user} artists per user; "
                 f"{args.master}, driver heap "
                 f"{args.driver_memory}, {args.factors} factors, {args.iterations} "
                 "iterations; medians)",
                 ["size", "runs", *(title for _, title in PEAKS), "seconds"], rows)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="lastfm-rec-scale-memory-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        runs = measure(args, workdir)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print(render(runs, args))
    if args.out:
        write_json(args.out, {"settings": {k: str(v) for k, v in vars(args).items()},
                              "runs": runs})
    return 0


if __name__ == "__main__":
    sys.exit(main())
