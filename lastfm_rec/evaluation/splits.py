"""How the study holds listens out: per-user holdout, new users, random and ratio splits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from lastfm_rec.data.matrices import StudyData as StudyData
from lastfm_rec.data.matrices import friend_matrix as friend_matrix
from lastfm_rec.data.matrices import load_study as load_study
from lastfm_rec.data.matrices import play_matrix as play_matrix
from lastfm_rec.data.matrices import tag_matrix as tag_matrix
from lastfm_rec.ops import check_csr

if TYPE_CHECKING:
    pass


HeldOut = sp.csr_matrix | Sequence[np.ndarray]

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
