"""Ranking metrics as plain functions, one definition each, averaged over every evaluated user.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from lastfm_rec.data.matrices import StudyData as StudyData
from lastfm_rec.data.matrices import friend_matrix as friend_matrix
from lastfm_rec.data.matrices import load_study as load_study
from lastfm_rec.data.matrices import play_matrix as play_matrix
from lastfm_rec.data.matrices import tag_matrix as tag_matrix
from lastfm_rec.evaluation.splits import HeldOut
from lastfm_rec.ops import check_csr

if TYPE_CHECKING:
    pass


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

def ndcg_per_user(ranked: np.ndarray, held_out: HeldOut, k: int = 10) -> np.ndarray:
    """NDCG@k of each evaluated user (a non-empty held-out set), in row order: the values
    :func:`ndcg_at_k` averages, and what paired comparisons of two models resample."""
    hits, n_relevant = _hits(ranked, held_out, k)
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.cumsum(discount)[np.minimum(k, n_relevant) - 1]
    return (hits * discount).sum(axis=1) / ideal

def ndcg_at_k(ranked: np.ndarray, held_out: HeldOut, k: int = 10) -> float:
    """NDCG@k with binary relevance: ``DCG / ideal DCG``, averaged per user.

    ``DCG = sum over hits at rank r (1-based) of 1 / log2(r + 1)``; the ideal DCG puts
    ``min(k, |held out|)`` hits at ranks ``1..``. Averaged over every evaluated user
    (non-empty held-out set), users without hits counting as 0 (:func:`ndcg_per_user`
    gives the values). Same definition as ``implicit.evaluation.ndcg_at_k`` (which also
    skips users with an empty held-out set).
    """
    return _mean(ndcg_per_user(ranked, held_out, k))

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
