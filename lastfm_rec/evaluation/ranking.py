"""The evaluation loop: rank every evaluated user once, then score the lists with every metric.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp

from lastfm_rec.data.matrices import StudyData as StudyData
from lastfm_rec.data.matrices import friend_matrix as friend_matrix
from lastfm_rec.data.matrices import load_study as load_study
from lastfm_rec.data.matrices import play_matrix as play_matrix
from lastfm_rec.data.matrices import tag_matrix as tag_matrix
from lastfm_rec.evaluation.metrics import (
    catalogue_coverage,
    listeners,
    map_at_k,
    mean_popularity,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
)
from lastfm_rec.ops import check_csr, profiled

if TYPE_CHECKING:
    from lastfm_rec.models.base import Recommender


def evaluated_users(held_out: sp.csr_matrix) -> np.ndarray:
    """The users an evaluation scores: those with a non-empty ``held_out`` row, in order."""
    return np.flatnonzero(np.diff(held_out.indptr) > 0)


def rank_users(model: Recommender, userids: np.ndarray, user_items: sp.csr_matrix, n: int,
               recalculate_user: bool = False, batch_size: int = 512) -> np.ndarray:
    """Top-``n`` ids (already listened artists filtered) for ``userids``, one row each."""
    ranked = np.full((len(userids), n), -1, dtype=np.int64)
    for start in range(0, len(userids), batch_size):
        batch = slice(start, start + batch_size)
        ids, _ = model.recommend(userids[batch], user_items[batch], N=n,
                                 filter_already_liked_items=True,
                                 recalculate_user=recalculate_user)
        ranked[batch, :ids.shape[1]] = ids
    return ranked

def _metric_row(ranked: np.ndarray, held_out: sp.csr_matrix, popularity: np.ndarray,
                n_items: int, K: Sequence[int]) -> dict[str, float]:
    row: dict[str, float] = {}
    for k in K:
        row[f"ndcg@{k}"] = ndcg_at_k(ranked, held_out, k)
        row[f"precision@{k}"] = precision_at_k(ranked, held_out, k)
        row[f"recall@{k}"] = recall_at_k(ranked, held_out, k)
        row[f"map@{k}"] = map_at_k(ranked, held_out, k)
        row[f"coverage@{k}"] = catalogue_coverage(ranked, n_items, k)
        row[f"popularity@{k}"] = mean_popularity(ranked, popularity, k)
    return row

def evaluate(model: Recommender, train: sp.csr_matrix, test: sp.csr_matrix,
             K: Sequence[int] = (10, 20), popularity: np.ndarray | None = None, *,
             return_ranked: bool = False
             ) -> dict[str, float] | tuple[dict[str, float], np.ndarray]:
    """Metrics of a fitted ``model`` on the held-out ``test`` listens.

    Every user with a non-empty ``test`` row is evaluated: the model ranks all artists not
    in the user's ``train`` row, and the top ``max(K)`` are scored with every metric at
    every ``k`` in ``K``. ``popularity`` defaults to training listener counts
    (:func:`listeners`).

    Returns
    -------
    dict
        ``ndcg@k``, ``precision@k``, ``recall@k``, ``map@k``, ``coverage@k``,
        ``popularity@k`` for each ``k``, plus ``users`` (how many were evaluated) and
        ``eval_seconds``; with ``return_ranked``, also the (evaluated users x ``max(K)``)
        lists, in user order, for per-user figures
        (:func:`lastfm_rec.evaluation.metrics.ndcg_per_user`).
    """
    train, test = check_csr(train, "train"), check_csr(test, "test")
    if train.shape != test.shape:
        raise ValueError(f"train {train.shape} and test {test.shape} differ in shape")
    started = time.perf_counter()
    users = evaluated_users(test)
    popularity = listeners(train) if popularity is None else popularity
    with profiled("evaluate"):
        ranked = rank_users(model, users, train[users], max(K))
        row = _metric_row(ranked, test[users], popularity, train.shape[1], K)
    row["users"] = int(users.size)
    row["eval_seconds"] = time.perf_counter() - started
    return (row, ranked) if return_ranked else row

def evaluate_new_users(model: Recommender, given: sp.csr_matrix, hidden: sp.csr_matrix,
                       K: Sequence[int] = (10, 20),
                       popularity: np.ndarray | None = None) -> dict[str, float]:
    """Metrics for users unseen in training (:func:`new_user_split`).

    Each new user's ``given`` row is folded in (``recommend(..., recalculate_user=True)``)
    and the ranking, with the given artists filtered, is scored against ``hidden``.
    ``popularity`` defaults to listener counts of the model's training matrix when the model
    keeps it, else of ``given``.
    """
    given, hidden = check_csr(given, "given"), check_csr(hidden, "hidden")
    started = time.perf_counter()
    users = evaluated_users(hidden)
    if popularity is None:
        popularity = getattr(model, "item_listeners_", None)
        if popularity is None:
            popularity = listeners(given)
    with profiled("evaluate new users"):
        ranked = rank_users(model, users, given[users], max(K), recalculate_user=True)
        row = _metric_row(ranked, hidden[users], popularity, given.shape[1], K)
    row["users"] = int(users.size)
    row["eval_seconds"] = time.perf_counter() - started
    return row

def evaluate_models(models: Mapping[str, Recommender], train: sp.csr_matrix,
                    test: sp.csr_matrix, K: Sequence[int] = (10, 20), fit: bool = True,
                    popularity: np.ndarray | None = None) -> pd.DataFrame:
    """Fit (timed, unless ``fit=False``) and :func:`evaluate` each model; one row per name.

    The table has the metric columns of :func:`evaluate` plus ``fit_seconds``.
    """
    rows = {}
    for name, model in models.items():
        fit_seconds = float("nan")
        if fit:
            started = time.perf_counter()
            model.fit(train, show_progress=False)
            fit_seconds = time.perf_counter() - started
        rows[name] = {**evaluate(model, train, test, K, popularity), "fit_seconds": fit_seconds}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "model"
    return table
