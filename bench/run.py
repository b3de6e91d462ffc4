"""The benchmark suite (``make bench``): speed and memory of the whole study, and how they grow.

Sections, each measured process run in its own subprocess so that its peak resident memory
can be read from ``os.wait4`` (``ru_maxrss``, which also covers the descendants it waited
for, e.g. notebook kernels):

1. ``training``  ``bench/bench_training.py``: the original per-step loop (reference), the
   package's gradient path and the ALS solver on the real data (k = 10, 2000 steps): steps/s,
   time to reach the reference's final loss, ratios to the reference (one run, so the ratios
   compare like with like).
2. ``notebooks`` every ``notebooks/*.ipynb`` executed with
   ``lastfm_rec.reports.execute_notebook`` (HTML too) into a temporary folder, one subprocess
   each, then the ``make run`` equivalent (``python -m lastfm_rec.reports notebooks --out
   TMP``) as one subprocess.
3. ``serving``   the CLI's serving path: ``service.load_session`` (cold: fit + cache; warm:
   from the cache), latency of one ``recommend_for_likes`` for a new user from
   ``rec_sheets/example_artists.csv`` with the model loaded, batched ``recommend`` for all
   users at once (users/s), and the wall time of ``lastfm-rec --help`` and of a cached
   ``lastfm-rec recommend`` (subprocesses).
4. Peak RSS: a column of every table above.
5. ``growth``    seeded synthetic data (``lastfm_rec.data.synthetic``) at 1x and 10x the real users
   and artists (100x with ``--with-100x``: 189,200 users, 1.76 M artists, ~9.3 M rows). Per
   size, each step in its own subprocess: generate; ``load_dataset`` + ``prepare``; fit of
   ``models.create("als")`` (implicit feedback, its default parameters: recorded in the
   JSON) on the play counts of the prepared rows; the original's
   objective (k = 10, λ_r = 0.2, λ_g = 0.5, no hold-out) with ``solver="als"`` for
   ``CF_SWEEPS`` = 5 sweeps (on the real data the loss after 5 sweeps is within 0.3% of where
   15 end, and sweep 1 already passes the 2000-step gradient reference); batched
   ``recommend`` (N = 10) for a fixed sample of ``SAMPLE_USERS`` users. Each measure's growth
   is the exponent of a least-squares line through (log size factor, log measure); the
   plot goes to ``reports/bench_growth.png``.

Everything runs one process at a time with one BLAS/OpenMP thread (``--threads``), so the
bench never competes with itself on the 2-core machine and medians stay stable while others
use it; the load average at start and end is recorded. Measurements are medians of
``--repeats`` (3) runs, except that a run longer than ``LONG_RUN_SECONDS`` (20 s) is not
repeated (the repeats actually made are in the tables); each notebook runs once
(``--notebook-repeats``). Results: a table on stdout and
``reports/bench.json`` (with machine information). ``--quick``: one repeat, 1x only, no
``make run`` equivalent (its total is then the sum of the notebooks).

Memory bounds of the growth steps (N users, M artists, R listening rows, T tag rows,
k factors; measured peaks in the JSON):

* generate: O(R + T) int64 arrays; files formatted in 1 M-row chunks (100x: < 2 GB).
* load + prepare: every file's bytes plus a few byte-sized masks and its parsed frame,
  then several O(R + T) copies in ``prepare`` (tags joined, grouped, sorted).
* implicit ALS fit: the CSR and its transpose, O(R), plus factors O((N + M) k) float32
  (k = 256 by default: 1.8 GB of artist factors at 100x).
* CF ALS: four O(R) CSRs (ratings, pattern, transposes) in float64, the O(R) TF sparse
  tensors, and per half-step a stack of k x k Gram matrices, O(max(N, M) k^2) float64
  (100x: 1.76 M x 10 x 10 x 8 B = 1.4 GB, about twice while solving).
* recommend: the fitted model (factors O((N + M) k) float32 and its O(R) training CSR),
  and ``Recommender.recommend``'s dense float64 score block of batch x M, held about 3 times
  at once (the scores, their negated copy and the int64 ``argpartition`` result). The
  library bounds the batch to ``models.base._BLOCK_ENTRIES // M`` users (2^25 entries =
  256 MiB: 256 users at 1x, 191 at 10x, 19 at 100x), so the block costs at most ~0.8 GB.
  Library versions without that bound scored 256 users whatever M (10.8 GB at 100x); with
  them the bench splits the sample into calls of that size itself (``users_per_call``).

Usage: ``python bench/run.py [--quick] [--with-100x] [--only SECTION ...] [--repeats N]``
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SECTIONS = ("training", "notebooks", "serving", "growth")
TRAINING_STEPS = 2000
CF_SWEEPS = 5
CF_ARGS = {"embedding_dim": 10, "regularization_coeff": 0.2, "gravity_coeff": 0.5,
           "holdout_fraction": 0.0, "solver": "als"}
#: Steps whose run takes longer than this are not repeated (a median of 3 would cost minutes).
LONG_RUN_SECONDS = 20.0
SHEET = ROOT / "rec_sheets" / "example_artists.csv"
LATENCY_CALLS = 50
HELP_RUNS = 5
CLI_RUNS = 3
SAMPLE_USERS = 256
BLOCK_BYTES = 256 << 20
SEED = 0
CHILD_TIMEOUT = 3600
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
               "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


# =========================================================================== workers
# Each runs in its own subprocess (``run.py --worker NAME``) and returns a dict of numbers.


def _rss_mb() -> dict[str, float]:
    """Peak RSS so far of this process and of its waited-for children, in MB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"self_peak_mb": own, "children_peak_mb": children}


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def _work_notebook(p: dict) -> dict:
    from lastfm_rec.reports import execute_notebook

    seconds, done = _timed(lambda: execute_notebook(p["path"], p["out"], html=True))
    return {"seconds": seconds, "execute_seconds": done.seconds,
            "html_seconds": seconds - done.seconds}


def _work_serving_cold(p: dict) -> dict:
    from lastfm_rec.serving.session import load_session

    seconds, session = _timed(lambda: load_session(p["data_dir"], p["model"]))
    return {"cold_session_seconds": seconds, "n_users": int(session.plays.shape[0]),
            "n_artists": int(session.plays.shape[1]), "rows": int(session.plays.nnz)}


def _work_serving(p: dict) -> dict:
    import numpy as np

    from lastfm_rec.data.sheets import read_rec_sheet
    from lastfm_rec.serving.session import likes_row, load_session, recommend_for_likes

    session_s, session = _timed(lambda: load_session(p["data_dir"], p["model"]))
    sheet_times = []
    for _ in range(5):
        seconds, liked = _timed(lambda: read_rec_sheet(p["sheet"], session.artists))
        sheet_times.append(seconds)
    setup = _rss_mb()

    def latencies(fn: Callable[[], Any], calls: int) -> list[float]:
        for _ in range(3):  # warm-up: first-call allocations, caches
            fn()
        return [_timed(fn)[0] for _ in range(calls)]

    via_service = latencies(lambda: recommend_for_likes(session, liked, k=10), p["calls"])
    row = likes_row(session, liked)
    model = session.model
    direct = latencies(lambda: model.recommend(0, row, N=10, recalculate_user=True),
                       p["calls"])
    users = np.arange(session.plays.shape[0])
    batched = [_timed(lambda: model.recommend(users, session.plays, N=10))[0]
               for _ in range(p["batch_repeats"])]
    batch_s = statistics.median(batched)
    return {
        "session_load_seconds": session_s, "sheet_read_ms": 1e3 * statistics.median(sheet_times),
        "liked": len(liked), "calls": p["calls"],
        "latency_ms_median": 1e3 * statistics.median(via_service),
        "latency_ms_p90": 1e3 * float(np.quantile(via_service, 0.9)),
        "latency_ms_min": 1e3 * min(via_service),
        "model_recommend_ms_median": 1e3 * statistics.median(direct),
        "batch_users": int(users.size), "batch_seconds_median": batch_s,
        "batch_seconds_all": batched, "batch_users_per_s": users.size / batch_s,
        "setup_peak_mb": setup["self_peak_mb"],
    }


def _work_generate(p: dict) -> dict:
    from lastfm_rec.data.synthetic import SyntheticSpec, generate_hetrec

    imports = _rss_mb()["self_peak_mb"]
    spec = SyntheticSpec.scaled(p["factor"])
    seconds, _ = _timed(lambda: generate_hetrec(p["dir"], spec, seed=p["seed"]))
    size = sum(f.stat().st_size for f in Path(p["dir"]).glob("*.dat"))
    return {"seconds": seconds, "n_users": spec.n_users, "n_artists": spec.n_artists,
            "file_mb": size / 1e6, "imports_peak_mb": imports}


def _work_load(p: dict) -> dict:
    import numpy as np

    from lastfm_rec import load_dataset, prepare

    imports = _rss_mb()["self_peak_mb"]
    load_s, dataset = _timed(lambda: load_dataset(p["dir"]))
    prepare_s, prepared = _timed(lambda: prepare(dataset))
    ratings = prepared.ratings
    out = {"seconds": load_s + prepare_s, "load_seconds": load_s, "prepare_seconds": prepare_s,
           "rows": len(ratings), "n_users": prepared.n_users, "n_artists": prepared.n_artists,
           "tag_rows": len(dataset.user_tagged), "imports_peak_mb": imports}
    peak = _rss_mb()["self_peak_mb"]
    if p.get("save"):
        np.savez(p["prepared"], u_id=ratings["u_id"].to_numpy(np.int32),
                 a_id=ratings["a_id"].to_numpy(np.int32),
                 w_mm=ratings["w_mm"].to_numpy(np.float64),
                 weight=ratings["weight"].to_numpy(np.float64),
                 shape=np.array([prepared.n_users, prepared.n_artists]))
    out["step_peak_mb"] = peak
    return out


def _prepared(path: str) -> dict:
    import numpy as np

    with np.load(path) as stored:
        return {key: stored[key] for key in stored.files}


def _plays(data: dict) -> Any:
    import scipy.sparse as sp

    n_users, n_artists = (int(v) for v in data["shape"])
    return sp.csr_matrix((data["weight"], (data["u_id"], data["a_id"])),
                         shape=(n_users, n_artists))


def _work_fit_implicit(p: dict) -> dict:
    from lastfm_rec.models import create

    imports = _rss_mb()["self_peak_mb"]
    plays = _plays(_prepared(p["prepared"]))
    setup = _rss_mb()["self_peak_mb"]
    model = create("als")
    seconds, _ = _timed(lambda: model.fit(plays, show_progress=False))
    out = {"seconds": seconds, "imports_peak_mb": imports, "setup_peak_mb": setup,
           "step_peak_mb": _rss_mb()["self_peak_mb"], "params": model.get_params()}
    if p.get("save"):
        model.save(p["model"])
    return out


def _work_fit_cf(p: dict) -> dict:
    import pandas as pd

    from lastfm_rec.original.cfmodel import build_model

    imports = _rss_mb()["self_peak_mb"]
    data = _prepared(p["prepared"])
    ratings = pd.DataFrame({"u_id": data["u_id"].astype("int64"),
                            "a_id": data["a_id"].astype("int64"), "w_mm": data["w_mm"]})
    n_users, n_artists = (int(v) for v in data["shape"])
    del data
    setup = _rss_mb()["self_peak_mb"]
    build_s, model = _timed(lambda: build_model(ratings, n_users=n_users, n_artists=n_artists,
                                                **CF_ARGS))
    built = _rss_mb()["self_peak_mb"]
    fit_s, _ = _timed(lambda: model.train(num_iterations=p["sweeps"], plot_results=False,
                                          show_progress=False))
    loss = float(model.history["total_loss"].iloc[-1])
    model.close()
    return {"seconds": fit_s, "build_seconds": build_s, "sweeps": p["sweeps"],
            "total_loss": loss, "imports_peak_mb": imports, "setup_peak_mb": setup,
            "build_peak_mb": built,
            "step_peak_mb": _rss_mb()["self_peak_mb"]}


def _work_recommend(p: dict) -> dict:
    import numpy as np

    from lastfm_rec.models import Recommender

    imports = _rss_mb()["self_peak_mb"]
    plays = _plays(_prepared(p["prepared"]))
    model = Recommender.load(p["model"])
    n_users, n_items = plays.shape
    rng = np.random.default_rng(p["seed"])
    users = np.sort(rng.choice(n_users, size=min(p["sample"], n_users), replace=False))
    rows = plays[users]
    chunk, library_bounded = users_per_call(n_items)
    setup = _rss_mb()["self_peak_mb"]

    step = users.size if library_bounded else chunk

    def run() -> None:
        for start in range(0, users.size, step):
            model.recommend(users[start:start + step], rows[start:start + step], N=10)

    model.recommend(users[:chunk], rows[:chunk], N=10)  # warm-up, outside the timing
    times = [_timed(run)[0]]
    while len(times) < p["repeats"] and sum(times) < LONG_RUN_SECONDS:
        times.append(_timed(run)[0])
    seconds = statistics.median(times)
    return {"seconds": seconds, "seconds_all": times, "users": int(users.size),
            "users_per_call": chunk, "library_bounds_batch": library_bounded,
            "users_per_s": users.size / seconds,
            "ms_per_user": 1e3 * seconds / users.size, "imports_peak_mb": imports,
            "setup_peak_mb": setup,
            "step_peak_mb": _rss_mb()["self_peak_mb"]}


def users_per_call(n_items: int) -> tuple[int, bool]:
    """Users per batch of ``recommend``'s dense batch x n_items float64 score block, and
    whether the library bounds it itself.

    The library scores ``min(_BATCH, _BLOCK_ENTRIES // n_items)`` users at a time; the whole
    sample is then passed in one call and the first number is that batch, for the report.
    Without ``_BLOCK_ENTRIES`` it scores 256 users whatever ``n_items`` (10.8 GB at 100x), so
    the bench passes at most ``BLOCK_BYTES // (8 n_items)`` users per call instead.
    """
    from lastfm_rec.models import base

    entries = getattr(base, "_BLOCK_ENTRIES", None)
    if entries is not None:
        return max(1, min(base._BATCH, entries // max(n_items, 1))), True
    return max(1, min(base._BATCH, BLOCK_BYTES // (8 * n_items))), False


WORKERS: dict[str, Callable[[dict], dict]] = {
    "notebook": _work_notebook, "serving_cold": _work_serving_cold, "serving": _work_serving,
    "generate": _work_generate, "load": _work_load, "fit_implicit": _work_fit_implicit,
    "fit_cf": _work_fit_cf, "recommend": _work_recommend,
}


def worker_main(name: str, params: str, result: str) -> int:
    out = WORKERS[name](json.loads(params))
    out.update({f"final_{k}": v for k, v in _rss_mb().items()})
    Path(result).write_text(json.dumps(out))
    return 0


# =========================================================================== the runner


class ChildFailed(RuntimeError):
    pass


class Runner:
    """Runs measured subprocesses one at a time, logging their output under ``workdir``."""

    def __init__(self, workdir: Path, env: dict[str, str], timeout: int) -> None:
        self.workdir = workdir
        self.logs = workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.env = env
        self.timeout = timeout
        self.count = 0

    def run(self, cmd: Sequence[str], label: str, cwd: Path = ROOT) -> dict:
        """Run ``cmd``; wall time, CPU time and peak RSS (MB) from ``os.wait4``."""
        self.count += 1
        log_path = self.logs / f"{self.count:03d}-{label}.log"
        with log_path.open("wb") as log:
            start = time.perf_counter()
            proc = subprocess.Popen(list(cmd), stdout=log, stderr=subprocess.STDOUT,
                                    env=self.env, cwd=cwd, stdin=subprocess.DEVNULL)
            timer = threading.Timer(self.timeout, proc.kill)
            timer.start()
            try:
                _, status, usage = os.wait4(proc.pid, 0)
            except BaseException:
                proc.kill()
                os.waitpid(proc.pid, 0)
                raise
            finally:
                timer.cancel()
            wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        result = {"wall_seconds": wall, "peak_rss_mb": usage.ru_maxrss / 1024,
                  "cpu_seconds": usage.ru_utime + usage.ru_stime, "log": str(log_path)}
        if proc.returncode != 0:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-15:]
            raise ChildFailed(f"{label} exited with status {proc.returncode} after "
                              f"{wall:.1f} s; last lines of {log_path}:\n  "
                              + "\n  ".join(tail))
        return result

    def work(self, name: str, params: dict, label: str | None = None) -> dict:
        """One worker run: its own numbers plus the wait4 measures of its process."""
        result_path = self.workdir / f"result-{self.count + 1:03d}.json"
        measured = self.run([sys.executable, str(Path(__file__).resolve()), "--worker", name,
                             "--params", json.dumps(params), "--result", str(result_path)],
                            label or name)
        out = json.loads(result_path.read_text())
        result_path.unlink()
        out.update(measured)
        return out

    def repeat(self, name: str, params: Callable[[int], dict], repeats: int,
               label: str) -> dict:
        """Up to ``repeats`` worker runs (one only if it takes over ``LONG_RUN_SECONDS``):
        medians of every number, peak RSS the largest."""
        runs = [self.work(name, params(0), f"{label}-1")]
        while len(runs) < repeats and runs[0]["wall_seconds"] <= LONG_RUN_SECONDS:
            runs.append(self.work(name, params(len(runs)), f"{label}-{len(runs) + 1}"))
        summary: dict[str, Any] = {"repeats": len(runs)}
        for key, value in runs[0].items():
            values = [r[key] for r in runs]
            if isinstance(value, bool) or not isinstance(value, int | float):
                summary[key] = value
            elif key == "peak_rss_mb" or key.endswith("_peak_mb"):
                summary[key] = max(values)
            else:
                summary[key] = statistics.median(values)
        if len(runs) > 1:
            summary["seconds_all"] = [r.get("seconds", r["wall_seconds"]) for r in runs]
        return summary


# =========================================================================== sections


def section_training(runner: Runner, args: argparse.Namespace) -> dict:
    out_path = runner.workdir / "bench_training.json"
    cmd = [sys.executable, str(ROOT / "bench" / "bench_training.py"),
           "--iterations", str(TRAINING_STEPS), "--repeats", str(args.repeats),
           "--out", str(out_path), "--data-dir", str(args.data_dir)]
    print(f"  bench_training.py: {TRAINING_STEPS} steps, {args.repeats} repeat(s) ...",
          flush=True)
    measured = runner.run(cmd, "training")
    report = json.loads(out_path.read_text())
    if report["model"]["embedding_dim"] != 10:
        raise ChildFailed(f"bench_training ran embedding_dim {report['model']['embedding_dim']}")
    rows = report["results"]
    ref = rows[0]
    methods = []
    for row in rows:
        to_ref = row.get("seconds_to_reference_loss")
        if to_ref is None and row["final_total_loss"] <= ref["final_total_loss"] * (1 + 1e-6):
            to_ref = row["seconds_median"]  # same iterates: reaches it with its last step
        methods.append({
            "method": row["method"], "seconds": row["seconds_median"],
            "seconds_all": row["seconds_all"], "steps": row["steps"],
            "steps_per_s": row["steps_per_s"], "final_total_loss": row["final_total_loss"],
            "seconds_to_reference_loss": to_ref,
            "speedup_vs_reference": ref["seconds_median"] / row["seconds_median"],
            "speedup_to_reference_loss": (ref["seconds_median"] / to_ref) if to_ref else None,
            "sweeps_to_reference_loss": row.get("sweeps_to_reference_loss"),
        })
    return {"process": measured, "data": report["data"], "model": report["model"],
            "repeats": report["repeats"], "methods": methods,
            "build_model_seconds_median": report["build_model_seconds_median"],
            "environment": report["environment"]}


def section_notebooks(runner: Runner, args: argparse.Namespace) -> dict:
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


def _cli_command() -> list[str]:
    script = Path(sys.executable).parent / "lastfm-rec"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from lastfm_rec.serving.cli import main; "
                                  "sys.exit(main())"]


def section_serving(runner: Runner, args: argparse.Namespace) -> dict:
    params = {"data_dir": str(args.data_dir), "model": args.serving_model, "sheet": str(SHEET),
              "calls": LATENCY_CALLS if not args.quick else 20,
              "batch_repeats": max(3, args.repeats)}
    print(f"  load_session({args.serving_model!r}) with an empty cache (fit + save) ...",
          flush=True)
    cold = runner.work("serving_cold", params, "serving-cold")
    print(f"  recommend latency ({params['calls']} calls) and batched throughput ...",
          flush=True)
    warm = runner.work("serving", params, "serving")
    cli = _cli_command()
    print(f"  lastfm-rec --help x{HELP_RUNS}, lastfm-rec recommend x{CLI_RUNS} ...", flush=True)
    helps = [runner.run([*cli, "--help"], f"cli-help-{i + 1}") for i in range(HELP_RUNS)]
    cli_runs = CLI_RUNS if not args.quick else 1
    recs = [runner.run([*cli, "recommend", "--likes", str(SHEET), "--model", args.serving_model,
                        "--data-dir", str(args.data_dir)], f"cli-recommend-{i + 1}")
            for i in range(cli_runs)]

    def summary(runs: list[dict]) -> dict:
        return {"runs": len(runs),
                "seconds_median": statistics.median(r["wall_seconds"] for r in runs),
                "seconds_all": [r["wall_seconds"] for r in runs],
                "peak_rss_mb": max(r["peak_rss_mb"] for r in runs)}

    return {"model": args.serving_model, "sheet": str(SHEET.relative_to(ROOT)), "cold": cold,
            "warm": warm, "cli_help": summary(helps), "cli_recommend": summary(recs)}


GROWTH_STEPS = ("generate", "load", "fit_implicit", "fit_cf", "recommend")


def section_growth(runner: Runner, args: argparse.Namespace) -> dict:
    factors = [1] if args.quick else [1, 10]
    if args.with_100x:
        factors.append(100)
    sizes = []
    for factor in factors:
        repeats = 1 if factor >= 100 else args.repeats
        folder = runner.workdir / f"synthetic-{factor}x"
        prepared = str(runner.workdir / f"prepared-{factor}x.npz")
        model = str(runner.workdir / f"als-{factor}x.npz")
        print(f"  {factor}x: generate ...", flush=True)
        size: dict[str, Any] = {"factor": factor, "repeats": repeats}
        size["generate"] = runner.work("generate", {"factor": factor, "dir": str(folder),
                                                    "seed": SEED}, f"generate-{factor}x")
        print(f"  {factor}x: load + prepare x{repeats} ...", flush=True)
        size["load"] = runner.repeat(
            "load", lambda i, f=folder, p=prepared: {"dir": str(f), "prepared": p,
                                                     "save": i == 0},
            repeats, f"load-{factor}x")
        print(f"  {factor}x: fit implicit ALS x{repeats} ...", flush=True)
        size["fit_implicit"] = runner.repeat(
            "fit_implicit", lambda i, p=prepared, m=model: {"prepared": p, "model": m,
                                                            "save": i == 0},
            repeats, f"fit-implicit-{factor}x")
        print(f"  {factor}x: fit CF objective, ALS solver, {CF_SWEEPS} sweeps x{repeats} ...",
              flush=True)
        size["fit_cf"] = runner.repeat(
            "fit_cf", lambda _i, p=prepared: {"prepared": p, "sweeps": CF_SWEEPS},
            repeats, f"fit-cf-{factor}x")
        print(f"  {factor}x: batched recommend for {SAMPLE_USERS} users ...", flush=True)
        size["recommend"] = runner.work(
            "recommend", {"prepared": prepared, "model": model, "sample": SAMPLE_USERS,
                          "seed": SEED, "repeats": repeats}, f"recommend-{factor}x")
        sizes.append(size)
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
            for path in (prepared, model):
                Path(path).unlink(missing_ok=True)
    growth = {"sizes": sizes, "measures": growth_measures(sizes),
              "cf_sweeps": CF_SWEEPS, "cf_args": CF_ARGS, "sample_users": SAMPLE_USERS,
              "block_bytes": BLOCK_BYTES}
    return growth


def _measure_table() -> list[tuple[str, str, Callable[[dict], float]]]:
    """(name, unit, getter) of each growth measure."""
    return [
        ("generate time", "s", lambda s: s["generate"]["seconds"]),
        ("load_dataset time", "s", lambda s: s["load"]["load_seconds"]),
        ("prepare time", "s", lambda s: s["load"]["prepare_seconds"]),
        ("implicit ALS fit time", "s", lambda s: s["fit_implicit"]["seconds"]),
        ("CF build_model time", "s", lambda s: s["fit_cf"]["build_seconds"]),
        (f"CF ALS fit time ({CF_SWEEPS} sweeps)", "s", lambda s: s["fit_cf"]["seconds"]),
        ("recommend time per user", "ms", lambda s: s["recommend"]["ms_per_user"]),
        ("recommend throughput", "users/s", lambda s: s["recommend"]["users_per_s"]),
        ("generate peak RSS", "MB", lambda s: s["generate"]["peak_rss_mb"]),
        ("load + prepare peak RSS", "MB", lambda s: s["load"]["peak_rss_mb"]),
        ("implicit ALS fit peak RSS", "MB", lambda s: s["fit_implicit"]["peak_rss_mb"]),
        ("CF ALS fit peak RSS", "MB", lambda s: s["fit_cf"]["peak_rss_mb"]),
        ("recommend peak RSS", "MB", lambda s: s["recommend"]["peak_rss_mb"]),
        *[(f"{label} RSS above imports", "MB above imports",
           lambda s, step=step: s[step]["peak_rss_mb"] - s[step]["imports_peak_mb"])
          for step, label in (("generate", "generate"), ("load", "load + prepare"),
                              ("fit_implicit", "implicit ALS fit"), ("fit_cf", "CF ALS fit"),
                              ("recommend", "recommend"))],
    ]


def _exponent(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Slope of the least-squares line through (log x, log y)."""
    pairs = [(math.log(x), math.log(y)) for x, y in zip(xs, ys, strict=True) if y > 0]
    if len(pairs) < 2:
        return None
    mx = statistics.fmean(p[0] for p in pairs)
    my = statistics.fmean(p[1] for p in pairs)
    sxx = sum((p[0] - mx) ** 2 for p in pairs)
    return sum((p[0] - mx) * (p[1] - my) for p in pairs) / sxx


def growth_measures(sizes: list[dict]) -> list[dict]:
    factors = [s["factor"] for s in sizes]
    measures = []
    for name, unit, get in _measure_table():
        values = [float(get(s)) for s in sizes]
        measures.append({"measure": name, "unit": unit, "factors": factors, "values": values,
                         "exponent": _exponent(factors, values)})
    return measures


def plot_growth(growth: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    measures = growth["measures"]
    panels = [(("s",), "seconds"),
              (("MB", "MB above imports"), "peak RSS (MB; dashed: above the imports)"),
              (("users/s",), "recommend (users/s)")]
    fig, axes = plt.subplots(1, 3, figsize=(18, 5.6))
    for ax, (units, label) in zip(axes, panels, strict=True):
        colours: dict[str, Any] = {}
        for m in measures:
            if m["unit"] not in units:
                continue
            exponent = m["exponent"]
            tag = f" (x^{exponent:.2f})" if exponent is not None else ""
            step = m["measure"].split(" RSS")[0].replace(" peak", "")
            dashed = m["unit"] == "MB above imports"
            line, = ax.plot(m["factors"], m["values"], marker="o", ls="--" if dashed else "-",
                            color=colours.get(step), label=m["measure"] + tag)
            colours.setdefault(step, line.get_color())
        ax.set(xscale="log", yscale="log", xlabel="size (x the real users and artists)",
               ylabel=label)
        factors = [s["factor"] for s in growth["sizes"]]
        ax.set_xticks(factors, [f"{f}x" for f in factors])
        ax.minorticks_off()
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Growth on synthetic HetRec data (log-log; exponent of a least-squares fit)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


# =========================================================================== output


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{max(0, digits - 1 - math.floor(math.log10(magnitude)))}f}"


def table(title: str, header: Sequence[str], rows: list[Sequence[Any]]) -> str:
    cells = [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(header)]
    line = "  ".join(h.ljust(w) if i == 0 else h.rjust(w)
                     for i, (h, w) in enumerate(zip(header, widths, strict=True)))
    out = [title, line, "-" * len(line)]
    for r in cells:
        out.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                             for i, (c, w) in enumerate(zip(r, widths, strict=True))))
    return "\n".join(out)


def report_training(t: dict) -> str:
    rows = [[m["method"], m["seconds"], m["steps_per_s"], m["final_total_loss"],
             m["speedup_vs_reference"], m["seconds_to_reference_loss"],
             m["speedup_to_reference_loss"]] for m in t["methods"]]
    d = t["data"]
    text = table(f"1. Training speed (real data: {d['ratings']} ratings, {d['n_users']} users x "
                 f"{d['n_artists']} artists; k=10, {TRAINING_STEPS} steps; medians of "
                 f"{t['repeats']})",
                 ["method", "seconds", "steps/s", "final loss", "x ref", "s to ref loss",
                  "x ref (to loss)"], rows)
    als = t["methods"][-1]
    return (text + f"\n(ALS steps are sweeps; it reaches the reference's final loss after "
            f"{als['sweeps_to_reference_loss']} sweep(s). Whole bench_training process: "
            f"{t['process']['wall_seconds']:.0f} s, peak RSS "
            f"{t['process']['peak_rss_mb']:.0f} MB)")


def report_notebooks(n: dict) -> str:
    rows = [[nb["notebook"], nb["seconds"], nb["execute_seconds"], nb["peak_rss_mb"]]
            for nb in n["notebooks"]]
    rows.append(["sum of the above", n["sum_seconds"], None, None])
    if "make_run" in n:
        rows.append(["make run equivalent (one process)", n["make_run"]["wall_seconds"], None,
                     n["make_run"]["peak_rss_mb"]])
    repeats = n["notebooks"][0]["repeats"] if n["notebooks"] else 0
    return table(f"2. The whole story: notebooks executed with HTML (median of {repeats})",
                 ["notebook", "seconds", "of which cells", "peak RSS MB"], rows)


def report_serving(s: dict) -> str:
    w, c = s["warm"], s["cold"]
    rows = [
        ["load_session, empty cache (fit + save)", f"{c['cold_session_seconds']:.2f} s",
         c["peak_rss_mb"]],
        ["load_session, cached model", f"{w['session_load_seconds']:.2f} s", None],
        ["read rec sheet", f"{w['sheet_read_ms']:.2f} ms", None],
        [f"recommend_for_likes, new user ({w['liked']} likes; median of {w['calls']})",
         f"{w['latency_ms_median']:.1f} ms (p90 {w['latency_ms_p90']:.1f})", None],
        ["  of which model.recommend(recalculate_user=True)",
         f"{w['model_recommend_ms_median']:.1f} ms", None],
        [f"batched recommend, all {w['batch_users']} users (N=10)",
         f"{w['batch_users_per_s']:,.0f} users/s ({w['batch_seconds_median']:.2f} s)",
         w["peak_rss_mb"]],
        [f"lastfm-rec --help (median of {s['cli_help']['runs']})",
         f"{s['cli_help']['seconds_median']:.2f} s", s["cli_help"]["peak_rss_mb"]],
        [f"lastfm-rec recommend, cached (median of {s['cli_recommend']['runs']})",
         f"{s['cli_recommend']['seconds_median']:.2f} s", s["cli_recommend"]["peak_rss_mb"]],
    ]
    return table(f"3. Serving (model {s['model']}, sheet {s['sheet']})",
                 ["measure", "value", "peak RSS MB"], rows)


def report_growth(g: dict) -> str:
    sizes = g["sizes"]
    lines = []
    rows = [[f"{s['factor']}x", s["load"]["n_users"], s["load"]["n_artists"], s["load"]["rows"],
             s["load"]["tag_rows"], s["generate"]["file_mb"], s["recommend"]["users_per_call"],
             s["repeats"]] for s in sizes]
    lines.append(table("5. Growth on synthetic data (sizes after prepare)",
                       ["size", "users", "artists", "rows", "tag rows", "files MB",
                        "rec. batch", "repeats"], rows))
    header = ["measure", "unit", *[f"{s['factor']}x" for s in sizes], "exponent"]
    rows = [[m["measure"], m["unit"], *m["values"], m["exponent"]] for m in g["measures"]]
    lines.append(table("   measures (medians) and growth exponent (log-log least squares "
                       "over the sizes)", header, rows))
    return "\n\n".join(lines)


def report_memory(report: dict) -> str:
    """Every measured process's peak RSS in one table."""
    rows: list[list[Any]] = []
    if "methods" in report.get("training", {}):
        rows.append(["training: bench_training.py (all methods)",
                     report["training"]["process"]["peak_rss_mb"]])
    for nb in report.get("notebooks", {}).get("notebooks", []):
        rows.append([f"notebook {nb['notebook']} (with its kernel)", nb["peak_rss_mb"]])
    if "make_run" in report.get("notebooks", {}):
        rows.append(["make run equivalent", report["notebooks"]["make_run"]["peak_rss_mb"]])
    serving = report.get("serving", {})
    if "warm" in serving:
        rows += [["serving: load_session with fit (cold cache)", serving["cold"]["peak_rss_mb"]],
                 ["serving: cached session + latency + batched recommend",
                  serving["warm"]["peak_rss_mb"]],
                 ["lastfm-rec --help", serving["cli_help"]["peak_rss_mb"]],
                 ["lastfm-rec recommend (cached)", serving["cli_recommend"]["peak_rss_mb"]]]
    for size in report.get("growth", {}).get("sizes", []):
        for step in GROWTH_STEPS:
            rows.append([f"growth {size['factor']}x: {step}", size[step]["peak_rss_mb"]])
    return table("4. Peak memory (RSS of each measured process, incl. waited-for children)",
                 ["process", "peak RSS MB"], rows)


def machine_info() -> dict:
    """The library's :func:`lastfm_rec.reports.machine_info` plus memory, commit and load."""
    from lastfm_rec import reports

    mem_gb = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gb = int(line.split()[1]) / 1024**2
                break
    commit = None
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                capture_output=True, text=True, timeout=10).stdout.strip()
    return {
        **reports.machine_info(),
        "cores_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
        else None,
        "memory_gb": mem_gb, "git_commit": commit, "load_average_start": os.getloadavg(),
    }


def report_machine(m: dict, settings: dict) -> str:
    from lastfm_rec import reports

    return (f"Machine: {reports.describe_machine(m)} ({m['cores_available']} "
            f"available), {m['memory_gb']:.1f} GB; Python {m['python']}, numpy {m['numpy']}, "
            f"scipy {m['scipy']}, pandas {m['pandas']}, TensorFlow {m['tensorflow']}, "
            f"implicit {m['implicit']}; load average at start "
            f"{', '.join(f'{x:.2f}' for x in m['load_average_start'])}; "
            f"threads per process {settings['threads'] or 'library default'}")


# =========================================================================== main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: one repeat, 1x only, no make-run equivalent")
    parser.add_argument("--with-100x", action="store_true",
                        help="also the 100x synthetic size (~9.3 M rows; several minutes, "
                             "a few GB)")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=None,
                        help="run only these sections")
    parser.add_argument("--repeats", type=int, default=None,
                        help="repeats of each measurement (default 3, --quick 1)")
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
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--params", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    if args.repeats < 1 or args.notebook_repeats < 1:
        parser.error("repeats must be at least 1")
    return args


def child_env(args: argparse.Namespace, workdir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["LASTFM_REC_DATA"] = str(args.data_dir)  # notebooks find the data through it
    env["LASTFM_REC_CACHE"] = str(workdir / "cache")  # serving starts from an empty cache
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("MPLBACKEND", "Agg")
    if args.threads:
        for name in THREAD_VARS:
            env[name] = str(args.threads)
    return env


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        return worker_main(args.worker, args.params, args.result)

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
    runner = Runner(workdir, child_env(args, workdir), args.timeout)
    settings = {"quick": args.quick, "with_100x": args.with_100x, "repeats": args.repeats,
                "notebook_repeats": args.notebook_repeats, "threads": args.threads,
                "sections": sections, "data_dir": str(args.data_dir),
                "serving_model": args.serving_model, "long_run_seconds": LONG_RUN_SECONDS,
                "training_steps": TRAINING_STEPS, "cf_sweeps": CF_SWEEPS,
                "latency_calls": LATENCY_CALLS, "sample_users": SAMPLE_USERS,
                "block_bytes": BLOCK_BYTES, "seed": SEED}
    machine = machine_info()
    report: dict[str, Any] = {"started": dt.datetime.now().isoformat(timespec="seconds"),
                              "machine": machine, "settings": settings}
    print(report_machine(machine, settings))
    print(f"Scratch folder: {workdir} ({'kept' if args.keep else 'removed at the end'})\n",
          flush=True)
    runs = {"training": (section_training, report_training),
            "notebooks": (section_notebooks, report_notebooks),
            "serving": (section_serving, report_serving),
            "growth": (section_growth, report_growth)}
    texts, failed = [], []
    start = time.perf_counter()
    try:
        for name in sections:
            section, render = runs[name]
            print(f"[{name}]", flush=True)
            t0 = time.perf_counter()
            try:
                report[name] = section(runner, args)
            except ChildFailed as error:
                print(f"  FAILED: {error}", flush=True)
                report[name] = {"error": str(error)}
                failed.append(name)
                continue
            report[name]["section_seconds"] = time.perf_counter() - t0
            texts.append(render(report[name]))
            print(f"  done in {report[name]['section_seconds']:.0f} s\n", flush=True)
        if "growth" in report and "sizes" in report["growth"]:
            plot_growth(report["growth"], args.plot)
            report["growth"]["plot"] = str(args.plot)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    report["total_seconds"] = time.perf_counter() - start
    report["machine"]["load_average_end"] = os.getloadavg()
    report["failed"] = failed
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")

    print("=" * 100)
    print(report_machine(machine, settings))
    print(f"load average at end {', '.join(f'{x:.2f}' for x in os.getloadavg())}\n")
    for text in texts:
        print(text + "\n")
    print(report_memory(report) + "\n")
    if "growth" in report and "plot" in report["growth"]:
        print(f"growth plot: {args.plot}")
    print(f"results: {args.out}")
    print(f"total {report['total_seconds'] / 60:.1f} min"
          + (f"; FAILED sections: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
