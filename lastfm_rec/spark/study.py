"""Spark against ``implicit`` on one machine: time, peak memory and ranking quality.

What notebook 07 measures, as functions: :func:`measure` times a call and samples the
resident memory of this process and of its children (the Spark JVM is a child of the Python
driver) with psutil; :func:`compare_engines` fits each model on the package's holdout split
and reports seconds, peak memory and NDCG@10; :func:`memory_model` predicts the bytes each
step needs from the data's shape, to check against the measurements and to extrapolate to
data one machine cannot hold.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd
import psutil
import scipy.sparse as sp

from lastfm_rec.evaluation.ranking import evaluate
from lastfm_rec.evaluation.splits import holdout_split
from lastfm_rec.models import EXTRAS
from lastfm_rec.models.base import Recommender

MB = 1 << 20
#: Bytes per rating Spark's ALS keeps on the JVM: (source id, encoded destination, rating),
#: 4 bytes each, in the in-block and the out-block of both the user and the item side, plus
#: the cached input rows (two ints and a float).
SPARK_BYTES_PER_RATING = 4 * 3 * 2 + 12
#: Copies of the factor blocks Spark holds at once: the current and the previous iteration's,
#: and the blocks shuffled to the other side.
SPARK_FACTOR_COPIES = 3


@dataclass(frozen=True)
class Measurement:
    """One timed call: wall seconds and resident memory (bytes) of the process tree before
    and at its peak, and the peaks of this process alone and of its children (the Spark
    JVM)."""

    seconds: float
    before: int
    peak: int
    peak_self: int
    peak_children: int
    result: Any

    @property
    def peak_mb(self) -> float:
        return self.peak / MB

    @property
    def added_mb(self) -> float:
        """Peak above the memory in use before the call."""
        return (self.peak - self.before) / MB


def _tree_rss() -> tuple[int, int]:
    """Resident bytes of this process and of all its descendants."""
    me = psutil.Process()
    children = 0
    for child in me.children(recursive=True):
        try:
            children += child.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return me.memory_info().rss + children, children


def measure(fn: Callable[[], Any], interval: float = 0.05) -> Measurement:
    """Call ``fn`` while a thread samples the process tree's resident memory every
    ``interval`` seconds."""
    before, children = _tree_rss()
    peaks = [before, before - children, children]  # tree, this process, children
    done = threading.Event()

    def sample() -> None:
        total, children = _tree_rss()
        peaks[:] = max(peaks[0], total), max(peaks[1], total - children), max(peaks[2],
                                                                              children)

    def loop() -> None:
        while not done.wait(interval):
            sample()

    sampler = threading.Thread(target=loop, daemon=True)
    sampler.start()
    started = time.perf_counter()
    try:
        result = fn()
    finally:
        seconds = time.perf_counter() - started
        done.set()
        sampler.join()
    sample()
    return Measurement(seconds, before, peaks[0], peaks[1], peaks[2], result)


def compare_engines(plays: sp.csr_matrix, models: Mapping[str, Callable[[], Recommender]],
                    seed: int = 42) -> pd.DataFrame:
    """Fit each model on the holdout split of ``plays`` (:func:`holdout_split`, ``seed``)
    and measure it: one row per name with ``fit_seconds``, ``peak_mb`` (Python plus, for a
    model that needs an install extra (Spark), the JVM), ``jvm_peak_mb``, ``added_mb``
    (growth of the process tree during the fit) and ``ndcg@10`` on the held-out listens."""
    train, test = holdout_split(plays, seed=seed)
    rows = {}
    for name, factory in models.items():
        model = factory()
        fitted = measure(lambda model=model: model.fit(train))
        uses_jvm = model.name in EXTRAS
        rows[name] = {"fit_seconds": fitted.seconds,
                      "peak_mb": (fitted.peak if uses_jvm else fitted.peak_self) / MB,
                      "jvm_peak_mb": fitted.peak_children / MB, "added_mb": fitted.added_mb,
                      "ndcg@10": evaluate(model, train, test, K=(10,))["ndcg@10"]}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "engine"
    return table


def memory_model(n_users: int, n_items: int, nnz: int, factors: int) -> pd.DataFrame:
    """Predicted bytes of each step of fitting ALS on a ``n_users`` x ``n_items`` matrix
    with ``nnz`` ratings, for ``implicit`` (one process) and Spark (summed over the cluster).

    Returns
    -------
    pandas.DataFrame
        Rows ``(engine, step)``, column ``mb``; a ``total`` row per engine.
    """
    vectors = (n_users + n_items) * factors * 4  # float32 factors
    steps = {
        ("implicit", "play matrix: CSR float64 + scaled float32 copy + its transpose"):
            nnz * (12 + 8 + 8) + (n_users + n_items) * 8,
        ("implicit", "factors: the model's and the kept float32 copy"): 2 * vectors,
        ("spark", "ratings in ALS blocks (both sides) + cached rows"):
            nnz * SPARK_BYTES_PER_RATING,
        ("spark", "factor blocks (current, previous, shuffled)"): SPARK_FACTOR_COPIES * vectors,
        ("spark", "driver: play matrix + collected factors"): nnz * 12 + 2 * vectors,
    }
    table = pd.Series(steps, name="mb").div(MB).to_frame()
    table.index.names = ["engine", "step"]
    totals = table.groupby(level="engine").sum()
    totals.index = pd.MultiIndex.from_product([totals.index, ["total"]],
                                              names=["engine", "step"])
    return pd.concat([table, totals]).sort_index(level="engine", sort_remaining=False)
