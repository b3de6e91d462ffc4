"""The work of each measured subprocess: ``python bench/workers.py NAME --params JSON ...``.

Each worker takes a dict of parameters and returns a dict of numbers (seconds, sizes, peak
RSS at chosen points: ``imports_peak_mb`` after the imports, ``setup_peak_mb`` once the
inputs are loaded, ``step_peak_mb`` after the measured step). :data:`WORKERS` names them for
:meth:`bench.runner.Runner.work`; the library is imported inside each worker, so a
process pays only for what it measures.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.runner import LONG_RUN_SECONDS, Worker, rss_mb, serve, timed  # noqa: E402

#: The original's objective fitted in the growth section (k = 10, λ_r = 0.2, λ_g = 0.5, no
#: hold-out), with the ALS solver.
CF_ARGS = {"embedding_dim": 10, "regularization_coeff": 0.2, "gravity_coeff": 0.5,
           "holdout_fraction": 0.0, "solver": "als"}
#: The score block the bench allows per ``recommend`` call when the library does not bound
#: it (float64 entries: 256 MiB).
BLOCK_BYTES = 256 << 20
#: Users per batch of library versions that do not bound the score block.
UNBOUNDED_BATCH = 256


def notebook(p: dict) -> dict:
    """Execute one notebook with its HTML (``path``, ``out``), profiled: the kernel appends
    the library's timed calls to ``profile`` (``$LASTFM_REC_PROFILE``)."""
    from lastfm_rec.ops import PROFILE_ENV
    from lastfm_rec.reports import execute_notebook

    profile = Path(p["profile"])
    profile.unlink(missing_ok=True)
    os.environ[PROFILE_ENV] = str(profile)  # the kernel inherits this process's environment
    seconds, done = timed(lambda: execute_notebook(p["path"], p["out"], html=True))
    lines = profile.read_text().splitlines() if profile.exists() else []
    return {"seconds": seconds, "execute_seconds": done.seconds,
            "html_seconds": seconds - done.seconds,
            "profile": profile_rows([json.loads(line) for line in lines]),
            "cells": cell_rows(done.notebook)}


def profile_rows(records: list[dict]) -> list[dict]:
    """The lines of :func:`lastfm_rec.ops.profiled` summed per ``path``, in the order each
    path first ended: ``path``, ``calls``, ``seconds``, ``cpu_seconds``."""
    rows: dict[str, dict] = {}
    for record in records:
        row = rows.setdefault(record["path"], {"path": record["path"], "calls": 0,
                                               "seconds": 0.0, "cpu_seconds": 0.0})
        row["calls"] += 1
        row["seconds"] += record["seconds"]
        row["cpu_seconds"] += record["cpu_seconds"]
    return list(rows.values())


def cell_rows(path: str | Path) -> list[dict]:
    """Each code cell of an executed notebook: its index, first line and seconds (from the
    execution timestamps nbclient stores in the cell's metadata)."""
    import datetime as dt

    import nbformat

    rows = []
    for index, cell in enumerate(nbformat.read(path, as_version=4).cells):
        timing = cell.get("metadata", {}).get("execution", {})
        if cell.cell_type != "code" or "shell.execute_reply" not in timing:
            continue
        start, end = (dt.datetime.fromisoformat(timing[key].replace("Z", "+00:00"))
                      for key in ("iopub.execute_input", "shell.execute_reply"))
        first = next((line for line in cell.source.splitlines()
                      if line.strip() and not line.startswith("#")), "")
        rows.append({"cell": index, "source": first[:60],
                     "seconds": (end - start).total_seconds()})
    return rows


def serving_cold(p: dict) -> dict:
    """``load_session`` with an empty cache: fit and save the serving model."""
    from lastfm_rec.serving.session import load_session

    seconds, session = timed(lambda: load_session(p["data_dir"], p["model"]))
    return {"cold_session_seconds": seconds, "n_users": int(session.plays.shape[0]),
            "n_artists": int(session.plays.shape[1]), "rows": int(session.plays.nnz)}


def _latencies(fn: Callable[[], Any], calls: int) -> list[float]:
    for _ in range(3):  # warm-up: first-call allocations, caches
        fn()
    return [timed(fn)[0] for _ in range(calls)]


def serving(p: dict) -> dict:
    """The cached session: load, read the rec sheet, latency of one new user's
    recommendations, batched ``recommend`` for every user."""
    import numpy as np

    from lastfm_rec.data.sheets import read_rec_sheet
    from lastfm_rec.serving.session import likes_row, load_session, recommend_for_likes

    session_s, session = timed(lambda: load_session(p["data_dir"], p["model"]))
    sheet_times = []
    for _ in range(5):
        seconds, liked = timed(lambda: read_rec_sheet(p["sheet"], session.artists))
        sheet_times.append(seconds)
    setup = rss_mb()

    via_service = _latencies(lambda: recommend_for_likes(session, liked, k=10), p["calls"])
    row = likes_row(session, liked)
    model = session.model
    direct = _latencies(lambda: model.recommend(0, row, N=10, recalculate_user=True),
                        p["calls"])
    users = np.arange(session.plays.shape[0])
    batched = [timed(lambda: model.recommend(users, session.plays, N=10))[0]
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


def generate(p: dict) -> dict:
    """Seeded synthetic HetRec files at ``factor`` times the real size, into ``dir``."""
    from lastfm_rec.data.synthetic import SyntheticSpec, generate_hetrec

    imports = rss_mb()["self_peak_mb"]
    spec = SyntheticSpec.scaled(p["factor"])
    seconds, _ = timed(lambda: generate_hetrec(p["dir"], spec, seed=p["seed"]))
    size = sum(f.stat().st_size for f in Path(p["dir"]).glob("*.dat"))
    return {"seconds": seconds, "n_users": spec.n_users, "n_artists": spec.n_artists,
            "file_mb": size / 1e6, "imports_peak_mb": imports}


def load(p: dict) -> dict:
    """``load_dataset`` + ``prepare`` of ``dir``; with ``save``, the prepared ratings go to
    ``prepared`` (an ``.npz``) for the later steps."""
    import numpy as np

    from lastfm_rec import load_dataset, prepare
    from lastfm_rec.files import atomic_write

    imports = rss_mb()["self_peak_mb"]
    load_s, dataset = timed(lambda: load_dataset(p["dir"]))
    prepare_s, prepared = timed(lambda: prepare(dataset))
    ratings = prepared.ratings
    out = {"seconds": load_s + prepare_s, "load_seconds": load_s, "prepare_seconds": prepare_s,
           "rows": len(ratings), "n_users": prepared.n_users, "n_artists": prepared.n_artists,
           "tag_rows": len(dataset.user_tagged), "imports_peak_mb": imports}
    peak = rss_mb()["self_peak_mb"]
    if p.get("save"):
        with atomic_write(p["prepared"]) as stream:
            np.savez(stream, u_id=ratings["u_id"].to_numpy(np.int32),
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


def fit_implicit(p: dict) -> dict:
    """Fit ``models.create("als")`` on the prepared play counts; with ``save``, save it to
    ``model``."""
    from lastfm_rec.models import create

    imports = rss_mb()["self_peak_mb"]
    plays = _plays(_prepared(p["prepared"]))
    setup = rss_mb()["self_peak_mb"]
    model = create("als")
    seconds, _ = timed(lambda: model.fit(plays, show_progress=False))
    out = {"seconds": seconds, "imports_peak_mb": imports, "setup_peak_mb": setup,
           "step_peak_mb": rss_mb()["self_peak_mb"], "params": model.get_params()}
    if p.get("save"):
        model.save(p["model"])
    return out


def fit_cf(p: dict) -> dict:
    """``build_model(**CF_ARGS)`` on the prepared ratings, then ``sweeps`` ALS sweeps."""
    import pandas as pd

    from lastfm_rec.original.cfmodel import build_model

    imports = rss_mb()["self_peak_mb"]
    data = _prepared(p["prepared"])
    ratings = pd.DataFrame({"u_id": data["u_id"].astype("int64"),
                            "a_id": data["a_id"].astype("int64"), "w_mm": data["w_mm"]})
    n_users, n_artists = (int(v) for v in data["shape"])
    del data
    setup = rss_mb()["self_peak_mb"]
    build_s, model = timed(lambda: build_model(ratings, n_users=n_users, n_artists=n_artists,
                                               **CF_ARGS))
    built = rss_mb()["self_peak_mb"]
    fit_s, _ = timed(lambda: model.train(num_iterations=p["sweeps"], plot_results=False,
                                         show_progress=False))
    loss = float(model.history["total_loss"].iloc[-1])
    model.close()
    return {"seconds": fit_s, "build_seconds": build_s, "sweeps": p["sweeps"],
            "total_loss": loss, "imports_peak_mb": imports, "setup_peak_mb": setup,
            "build_peak_mb": built,
            "step_peak_mb": rss_mb()["self_peak_mb"]}


def recommend(p: dict) -> dict:
    """Batched ``recommend`` (N = 10) of the saved ``model`` for a seeded sample of
    ``sample`` users: median of up to ``repeats`` runs (fewer past ``LONG_RUN_SECONDS``)."""
    import numpy as np

    from lastfm_rec.models import Recommender

    imports = rss_mb()["self_peak_mb"]
    plays = _plays(_prepared(p["prepared"]))
    model = Recommender.load(p["model"])
    n_users, n_items = plays.shape
    rng = np.random.default_rng(p["seed"])
    users = np.sort(rng.choice(n_users, size=min(p["sample"], n_users), replace=False))
    rows = plays[users]
    chunk, library_bounded = users_per_call(n_items)
    setup = rss_mb()["self_peak_mb"]

    step = users.size if library_bounded else chunk

    def run() -> None:
        for start in range(0, users.size, step):
            model.recommend(users[start:start + step], rows[start:start + step], N=10)

    model.recommend(users[:chunk], rows[:chunk], N=10)  # warm-up, outside the timing
    times = [timed(run)[0]]
    while len(times) < p["repeats"] and sum(times) < LONG_RUN_SECONDS:
        times.append(timed(run)[0])
    seconds = statistics.median(times)
    return {"seconds": seconds, "seconds_all": times, "users": int(users.size),
            "users_per_call": chunk, "library_bounds_batch": library_bounded,
            "users_per_s": users.size / seconds,
            "ms_per_user": 1e3 * seconds / users.size, "imports_peak_mb": imports,
            "setup_peak_mb": setup,
            "step_peak_mb": rss_mb()["self_peak_mb"]}


def users_per_call(n_items: int) -> tuple[int, bool]:
    """Users per batch of ``recommend``'s dense batch x n_items float64 score block, and
    whether the library bounds it itself.

    The library scores :func:`lastfm_rec.models.base.users_per_batch` users at a time; the
    whole sample is then passed in one call and the first number is that batch, for the
    report. Library versions without it score 256 users whatever ``n_items`` (10.8 GB at
    100x), so the bench passes at most ``BLOCK_BYTES // (8 n_items)`` users per call instead.
    """
    from lastfm_rec.models import base

    bound = getattr(base, "users_per_batch", None)
    if bound is not None:
        return bound(n_items), True
    return max(1, min(UNBOUNDED_BATCH, BLOCK_BYTES // (8 * n_items))), False


WORKERS: dict[str, Worker] = {
    "notebook": notebook, "serving_cold": serving_cold, "serving": serving,
    "generate": generate, "load": load, "fit_implicit": fit_implicit,
    "fit_cf": fit_cf, "recommend": recommend,
}


if __name__ == "__main__":
    raise SystemExit(serve(WORKERS))
