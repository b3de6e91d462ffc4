"""Ranking evaluation: the splits, the metrics and the evaluation loop.

Owns how the ranking study measures a recommender (the matrices it measures on come from
:mod:`lastfm_rec.matrices`; ``play_matrix``, ``tag_matrix``, ``friend_matrix``,
``StudyData`` and ``load_study`` are re-exported here):

* the per-user holdout split (:func:`holdout_split`), the new-user split
  (:func:`new_user_split`) and the literature's splits (:func:`random_split`,
  :func:`ratio_split`);
* ranking metrics as plain functions of a ranked id matrix and the held-out sets
  (:func:`precision_at_k`, :func:`recall_at_k`, :func:`ndcg_at_k`, :func:`map_at_k`,
  :func:`catalogue_coverage`, :func:`mean_popularity`);
* running a fitted model against held-out listens (:func:`evaluate`,
  :func:`evaluate_new_users`) and a table over many models (:func:`evaluate_models`).

The recipe for an honest comparison, selecting on validation and reporting on test::

    train, test = holdout_split(X, seed=42)
    fit_part, validation = holdout_split(train, seed=43)
    # tune on (fit_part, validation); refit the chosen settings on train; report on test

Every metric averages per user over every evaluated user, that is every row whose held-out
set is non-empty; a user without a hit counts as 0 and is never dropped.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp

# The matrices live in lastfm_rec.matrices; re-exported here for existing callers.
from lastfm_rec.matrices import StudyData as StudyData
from lastfm_rec.matrices import friend_matrix as friend_matrix
from lastfm_rec.matrices import load_study as load_study
from lastfm_rec.matrices import play_matrix as play_matrix
from lastfm_rec.matrices import tag_matrix as tag_matrix
from lastfm_rec.ops import check_csr

if TYPE_CHECKING:
    from lastfm_rec.models.base import Recommender

HeldOut = sp.csr_matrix | Sequence[np.ndarray]


# --------------------------------------------------------------------------- splits

def holdout_split(user_items: sp.csr_matrix, fraction: float = 0.2, min_items: int = 5,
                  seed: int = 42) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Hold out a random ``fraction`` of each user's artists.

    Each user with at least ``min_items`` artists gets ``round(fraction * n)`` of their
    ``n`` artists (at least 1, at most ``n - 1``) moved to the test matrix, chosen with
    ``numpy.random.default_rng(seed)``; users with fewer artists stay wholly in training.
    Values (play counts) move with their entries. Carve a validation set out of the training
    part with the same function and another seed (see the module docstring).

    Returns
    -------
    tuple of csr_matrix
        ``(train, test)``, both of the input's shape; their sum is the input and no entry is
        in both.
    """
    matrix = check_csr(user_items).copy()
    matrix.sum_duplicates()
    matrix.eliminate_zeros()
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    if min_items < 2:
        raise ValueError(f"min_items must be at least 2, got {min_items}")
    counts = np.diff(matrix.indptr)
    rows = np.repeat(np.arange(matrix.shape[0]), counts)
    n_held = np.clip(np.round(fraction * counts).astype(np.int64), 1, np.maximum(counts - 1, 1))
    n_held[counts < min_items] = 0
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random(matrix.nnz), rows))  # shuffled within each row
    rank = np.empty(matrix.nnz, dtype=np.int64)
    rank[order] = np.arange(matrix.nnz) - np.repeat(matrix.indptr[:-1], counts)
    held = rank < n_held[rows]
    return _subset(matrix, ~held), _subset(matrix, held)


def _subset(matrix: sp.csr_matrix, keep: np.ndarray) -> sp.csr_matrix:
    coo = matrix.tocoo()
    part = sp.csr_matrix((coo.data[keep], (coo.row[keep], coo.col[keep])), shape=matrix.shape)
    part.sort_indices()
    return part


def new_user_split(user_items: sp.csr_matrix, n_new: int | float = 0.1,
                   given_fraction: float = 0.5, min_items: int = 10,
                   seed: int = 42) -> tuple[sp.csr_matrix, sp.csr_matrix, sp.csr_matrix,
                                            np.ndarray]:
    """Hold whole users out of training to test recommendations for new users.

    ``n_new`` users (a count, or a fraction of the users with at least ``min_items``
    artists) are drawn with ``numpy.random.default_rng(seed)`` and removed from training.
    For each, ``given_fraction`` of their artists are "likes" they hand over (their row of
    ``given``) and the rest are what a recommender should find (``hidden``).

    Returns
    -------
    tuple
        ``(train, given, hidden, new_users)``: ``train`` has the remaining users' rows (in
        their original order), ``given``/``hidden`` one row per new user, and
        ``new_users`` their row indices in ``user_items``.
    """
    matrix = check_csr(user_items)
    counts = np.diff(matrix.indptr)
    eligible = np.flatnonzero(counts >= min_items)
    n = round(n_new * eligible.size) if isinstance(n_new, float) else int(n_new)
    if not 0 < n < matrix.shape[0]:
        raise ValueError(f"n_new gives {n} new users; need between 1 and {matrix.shape[0] - 1}")
    if n > eligible.size:
        raise ValueError(f"only {eligible.size} users have {min_items}+ artists, asked for {n}")
    rng = np.random.default_rng(seed)
    new_users = np.sort(rng.choice(eligible, size=n, replace=False))
    keep = np.setdiff1d(np.arange(matrix.shape[0]), new_users)
    hidden, given = holdout_split(matrix[new_users], fraction=given_fraction,
                                  min_items=2, seed=seed + 1)
    return matrix[keep], given, hidden, new_users


def random_split(user_items: sp.csr_matrix, fraction: float = 0.2,
                 seed: int = 42) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Hold out a random ``fraction`` of all rows at once (not per user).

    The protocol of the social-recommendation papers on this data (SocialLGN, MHCN):
    ``round(fraction * nnz)`` entries drawn uniformly with ``numpy.random.default_rng(seed)``
    move to the test matrix, whatever user they belong to, so a user may end up with no test
    rows or, rarely, no training rows. Values move with their entries; binarise with
    :func:`lastfm_rec.models.base.scale_plays` for the 0/1 protocol. Carve validation out of
    the training part with the same function and another seed.

    Returns
    -------
    tuple of csr_matrix
        ``(train, test)``, both of the input's shape; their sum is the input.
    """
    matrix = check_csr(user_items).copy()
    matrix.sum_duplicates()
    matrix.eliminate_zeros()
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    held = np.zeros(matrix.nnz, dtype=bool)
    picked = np.random.default_rng(seed).permutation(matrix.nnz)[:round(fraction * matrix.nnz)]
    held[picked] = True
    return _subset(matrix, ~held), _subset(matrix, held)


def ratio_split(user_items: sp.csr_matrix, ratios: Sequence[float] = (0.8, 0.1, 0.1),
                seed: int = 42) -> tuple[sp.csr_matrix, sp.csr_matrix, sp.csr_matrix]:
    """RecBole's per-user random ``train:valid:test`` split (``split_by_ratio`` grouped by
    user, ``RO`` order).

    Each user's ``n`` artists are shuffled (``numpy.random.default_rng(seed)``); validation
    and test get ``floor(ratio * n)`` each and training the rest, except that a part whose
    share ``ratio * n`` lies in (0, 1) takes one artist from training while training keeps
    more than one (test first, then validation), as RecBole's ``_calcu_split_ids`` does.

    Returns
    -------
    tuple of csr_matrix
        ``(train, validation, test)``, each of the input's shape; their sum is the input.
    """
    matrix = check_csr(user_items).copy()
    matrix.sum_duplicates()
    matrix.eliminate_zeros()
    shares = np.asarray(ratios, dtype=np.float64)
    if shares.shape != (3,) or shares.min() <= 0:
        raise ValueError(f"ratios must be three positive numbers, got {tuple(ratios)}")
    shares = shares / shares.sum()
    counts = np.diff(matrix.indptr)
    parts = np.floor(np.outer(counts, shares)).astype(np.int64)
    parts[:, 0] = counts - parts[:, 1:].sum(axis=1)
    for column in (2, 1):
        tiny = (shares[column] * counts > 0) & (shares[column] * counts < 1) & (parts[:, 0] > 1)
        parts[tiny, column] += 1
        parts[tiny, 0] -= 1
    rows = np.repeat(np.arange(matrix.shape[0]), counts)
    order = np.lexsort((np.random.default_rng(seed).random(matrix.nnz), rows))
    rank = np.empty(matrix.nnz, dtype=np.int64)
    rank[order] = np.arange(matrix.nnz) - np.repeat(matrix.indptr[:-1], counts)
    train_end = parts[rows, 0]
    valid_end = train_end + parts[rows, 1]
    return (_subset(matrix, rank < train_end),
            _subset(matrix, (rank >= train_end) & (rank < valid_end)),
            _subset(matrix, rank >= valid_end))


# --------------------------------------------------------------------------- metrics

def _held_out_sets(held_out: HeldOut, n_rows: int) -> sp.csr_matrix:
    """The held-out sets as a 0/1 CSR matrix with one row per ranked row."""
    if sp.issparse(held_out):
        matrix = sp.csr_matrix(held_out, copy=True)
        matrix.eliminate_zeros()
    else:
        sets = [np.unique(np.asarray(s, dtype=np.int64)) for s in held_out]
        width = max((int(s.max()) + 1 for s in sets if s.size), default=1)
        indptr = np.r_[0, np.cumsum([s.size for s in sets])]
        indices = np.concatenate(sets) if sets else np.zeros(0, dtype=np.int64)
        matrix = sp.csr_matrix((np.ones(indices.size), indices, indptr),
                               shape=(len(sets), width))
    if matrix.shape[0] != n_rows:
        raise ValueError(f"held_out has {matrix.shape[0]} rows but the ranking has {n_rows}")
    matrix.data[:] = 1.0
    return matrix


def _hits(ranked: np.ndarray, held_out: HeldOut, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``(hits, n_relevant)`` for the evaluated rows: hits is a bool (users x k) matrix."""
    ranked = np.asarray(ranked)
    if ranked.ndim != 2:
        raise ValueError(f"ranked must be a 2-D (users x K) id matrix, got shape {ranked.shape}")
    if k < 1 or k > ranked.shape[1]:
        raise ValueError(f"k={k} must be between 1 and the ranking's width {ranked.shape[1]}")
    truth = _held_out_sets(held_out, ranked.shape[0])
    n_relevant = np.diff(truth.indptr)
    top = ranked[:, :k].astype(np.int64)
    valid = (top >= 0) & (top < truth.shape[1])
    rows = np.broadcast_to(np.arange(top.shape[0])[:, None], top.shape)
    hits = np.zeros(top.shape, dtype=bool)
    hits[valid] = np.asarray(truth[rows[valid], top[valid]]).ravel() > 0
    evaluated = n_relevant > 0
    return hits[evaluated], n_relevant[evaluated]


def _mean(per_user: np.ndarray) -> float:
    return float(per_user.mean()) if per_user.size else float("nan")


def precision_at_k(ranked: np.ndarray, held_out: HeldOut, k: int = 10) -> float:
    """Precision@k: hits in the top ``k`` divided by ``k``, averaged per user.

    ``ranked`` is a (users x K) matrix of recommended artist ids, best first (``-1`` pads a
    short list and never hits); ``held_out`` has one set per row (a CSR matrix whose
    nonzeros are the held-out artists, or a list of id arrays). Averaged over every
    evaluated user (a non-empty held-out set); users without hits count as 0. A user with
    fewer than ``k`` held-out artists cannot reach 1. ``implicit.evaluation.precision_at_k``
    differs: it pools hits over users and divides by the pooled ``min(k, |held out|)``, a
    micro-averaged form of :func:`recall_at_k`.
    """
    hits, _ = _hits(ranked, held_out, k)
    return _mean(hits.sum(axis=1) / k)


def recall_at_k(ranked: np.ndarray, held_out: HeldOut, k: int = 10,
                capped: bool = True) -> float:
    """Recall@k: hits in the top ``k`` divided by ``min(k, |held out|)``, averaged per user.

    Capping the denominator at ``k`` lets a perfect ranking score 1 for every user;
    ``capped=False`` divides by ``|held out|`` instead, the recall of the literature
    (SocialLGN, MHCN, RecBole). Averaged over every evaluated user (non-empty held-out set),
    users without hits counting as 0.
    """
    hits, n_relevant = _hits(ranked, held_out, k)
    return _mean(hits.sum(axis=1) / (np.minimum(k, n_relevant) if capped else n_relevant))


def ndcg_at_k(ranked: np.ndarray, held_out: HeldOut, k: int = 10) -> float:
    """NDCG@k with binary relevance: ``DCG / ideal DCG``, averaged per user.

    ``DCG = sum over hits at rank r (1-based) of 1 / log2(r + 1)``; the ideal DCG puts
    ``min(k, |held out|)`` hits at ranks ``1..``. Averaged over every evaluated user
    (non-empty held-out set), users without hits counting as 0. Same definition as
    ``implicit.evaluation.ndcg_at_k`` (which also skips users with an empty held-out set).
    """
    hits, n_relevant = _hits(ranked, held_out, k)
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.cumsum(discount)[np.minimum(k, n_relevant) - 1]
    return _mean((hits * discount).sum(axis=1) / ideal)


def map_at_k(ranked: np.ndarray, held_out: HeldOut, k: int = 10) -> float:
    """MAP@k: average precision at the hits in the top ``k``, averaged per user.

    A user's AP@k is ``sum over hits at rank r of precision@r``, divided by
    ``min(k, |held out|)``. Averaged over every evaluated user (non-empty held-out set), users
    without hits counting as 0. Same definition as
    ``implicit.evaluation.mean_average_precision_at_k``.
    """
    hits, n_relevant = _hits(ranked, held_out, k)
    precision_at_rank = np.cumsum(hits, axis=1) / np.arange(1, k + 1)
    return _mean((precision_at_rank * hits).sum(axis=1) / np.minimum(k, n_relevant))


def catalogue_coverage(ranked: np.ndarray, n_items: int, k: int = 10) -> float:
    """Share of the catalogue recommended: distinct ids in the top ``k`` lists / ``n_items``.

    Counted over all rows of ``ranked`` (:func:`evaluate` passes exactly the evaluated
    users); ``-1`` padding is not an artist.
    """
    top = np.asarray(ranked)[:, :k]
    return float(np.unique(top[top >= 0]).size / n_items)


def mean_popularity(ranked: np.ndarray, popularity: np.ndarray, k: int = 10) -> float:
    """Mean popularity of recommended artists: per user the mean over their top ``k``,
    then the mean over all rows of ``ranked`` (``-1`` padding skipped).

    ``popularity`` is one number per artist; :func:`evaluate` uses each artist's number of
    listeners in the training matrix (users with a nonzero play count), so a value of 300
    means the recommended artists are, on average, played by 300 training users.
    """
    top = np.asarray(ranked)[:, :k]
    values = np.where(top >= 0, np.asarray(popularity, dtype=np.float64)[np.maximum(top, 0)],
                      0.0)
    counts = (top >= 0).sum(axis=1)
    per_user = values.sum(axis=1) / np.maximum(counts, 1)
    return _mean(per_user[counts > 0])


def listeners(user_items: sp.csr_matrix) -> np.ndarray:
    """Number of users with a nonzero entry for each artist (the popularity :func:`evaluate`
    reports)."""
    return np.bincount(check_csr(user_items).indices, minlength=user_items.shape[1])


# --------------------------------------------------------------------------- evaluation

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
             K: Sequence[int] = (10, 20), popularity: np.ndarray | None = None) -> dict[str, float]:
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
        ``eval_seconds``.
    """
    train, test = check_csr(train, "train"), check_csr(test, "test")
    if train.shape != test.shape:
        raise ValueError(f"train {train.shape} and test {test.shape} differ in shape")
    started = time.perf_counter()
    users = np.flatnonzero(np.diff(test.indptr) > 0)
    popularity = listeners(train) if popularity is None else popularity
    ranked = rank_users(model, users, train[users], max(K))
    row = _metric_row(ranked, test[users], popularity, train.shape[1], K)
    row["users"] = int(users.size)
    row["eval_seconds"] = time.perf_counter() - started
    return row


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
    users = np.flatnonzero(np.diff(hidden.indptr) > 0)
    if popularity is None:
        popularity = getattr(model, "item_listeners_", None)
        if popularity is None:
            popularity = listeners(given)
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
