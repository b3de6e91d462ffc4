"""Artists nobody has played yet: the held-out rows whose artist has no training row.

A model that learns from plays alone has nothing to rank such an artist by; the hybrid's
tag profile can (:class:`lastfm_rec.models.hybrid.HybridRecommender`, ``cold_weight``).
This module owns what counts as cold (:func:`cold_artists`), how much of it a ranking
recovers (:func:`cold_recovered`), the weights chosen for it on validation
(:data:`COLD_WEIGHTS`) and the comparison of one fitted hybrid with and without it
(:func:`cold_artist_effect`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from lastfm_rec.evaluation.metrics import ndcg_per_user
from lastfm_rec.evaluation.ranking import evaluated_users, rank_users

if TYPE_CHECKING:
    import pandas as pd

    from lastfm_rec.models.hybrid import HybridRecommender

#: ``cold_weight`` chosen on validation NDCG@10 (grid 0, 0.5, 1, 2, 4, 8; tags of the
#: validation and test pairs left out) for each protocol, the hybrid otherwise at its
#: settings there. Per-user holdout (seed 42, validation seed 43; 2,025 cold validation
#: rows): 0.1974 at 0, 0.1977 at 0.5, 0.1929 at 1, 0.0863 at 2. The papers' protocol with
#: every signal (split seed 0, validation seed 1000; 2,055 cold rows): 0.1955 at 0, 0.1957
#: at 0.5, 0.1964 at 1, 0.1856 at 2. Larger weights recover more cold rows and lose the
#: others.
COLD_WEIGHTS: dict[str, float] = {"holdout": 0.5, "literature": 1.0}


def cold_artists(train: sp.csr_matrix) -> np.ndarray:
    """Boolean mask over artists: True where ``train`` has no stored entry for the artist."""
    train = sp.csr_matrix(train)
    return np.bincount(train.indices[train.data != 0], minlength=train.shape[1]) == 0


def cold_recovered(ranked: np.ndarray, held_out: sp.csr_matrix, cold: np.ndarray,
                   k: int = 10) -> tuple[int, int]:
    """``(recovered, cold rows)``: of the held-out rows whose artist is ``cold``, how many
    appear in the row's top ``k`` of ``ranked`` (rows of ``ranked`` and ``held_out``
    aligned, ``-1`` padding ignored)."""
    held_out = sp.csr_matrix(held_out)
    if ranked.shape[0] != held_out.shape[0]:
        raise ValueError(f"ranked has {ranked.shape[0]} rows, held_out {held_out.shape[0]}: "
                         "pass the held-out rows of the ranked users")
    coo = held_out.tocoo()
    is_cold = cold[coo.col] & (coo.data != 0)
    rows, artists = coo.row[is_cold], coo.col[is_cold]
    top = ranked[:, :k]
    recovered = int((top[rows] == artists[:, None]).any(axis=1).sum())
    return recovered, int(rows.size)


def cold_artist_effect(model: HybridRecommender, train: sp.csr_matrix, test: sp.csr_matrix,
                       cold_weight: float, k: int = 10) -> pd.DataFrame:
    """One fitted hybrid ranked twice on ``test``: ``cold_weight`` 0 and ``cold_weight``.

    The weight changes scoring only, so both rankings come from the same fit.

    Returns
    -------
    pandas.DataFrame
        One row per weight: ``ndcg@{k}`` (mean over the users with test rows), ``cold
        rows`` (test rows whose artist has no training row), ``recovered`` (of those, in the
        user's top ``k``) and ``share``; the attribute ``per_user`` (``.attrs``) holds each
        user's NDCG@k per weight, for :func:`lastfm_rec.evaluation.significance.paired_comparison`.
    """
    import pandas as pd

    users = evaluated_users(test)
    cold = cold_artists(train)
    rows, per_user = {}, {}
    kept = model.cold_weight
    try:
        for weight in (0.0, float(cold_weight)):
            model.cold_weight = weight
            ranked = rank_users(model, users, train[users], k)
            scores = ndcg_per_user(ranked, test[users], k)
            recovered, total = cold_recovered(ranked, test[users], cold, k)
            label = f"cold_weight {weight:g}"
            rows[label] = {f"ndcg@{k}": float(scores.mean()), "cold rows": total,
                           "recovered": recovered, "share": recovered / max(total, 1)}
            per_user[label] = scores
    finally:
        model.cold_weight = kept
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.attrs["per_user"] = pd.DataFrame(per_user, index=pd.Index(users, name="user"))
    return table
