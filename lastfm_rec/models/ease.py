"""EASE (Steck 2019): a closed-form item-item linear model with a zero diagonal.

``B = argmin |X - XB|^2 + lambda |B|^2`` subject to ``diag(B) = 0`` has the solution
``B = I - P / diag(P)`` with ``P = (X^T X + lambda I)^-1``. The dense inverse costs
``items^3``, so only artists with at least ``min_listeners`` training listeners are modelled
(about 6 000 of 17 632 on the real training split with the default 2); the others are never
recommended. On the real split 18% of held-out listens are of such artists, but 13 of those
18 points are artists nobody played in training, which no collaborative model can rank.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.linalg import lapack
from threadpoolctl import threadpool_limits

from lastfm_rec.models.base import Recommender, plain, scale_plays
from lastfm_rec.ops import memoised, profiled, solver_threads


def ease_weights(rows: sp.csr_matrix, l2: float, item_vectors: sp.csr_matrix | None = None,
                 vector_weight: float = 0.0, dtype: type = np.float32) -> np.ndarray:
    """EASE's item-item weights ``I - P / diag(P)`` (float32).

    ``P = (G + l2 I)^-1`` with the Gram matrix ``G = rows^T rows``, plus ``vector_weight``
    times the item-item inner products of ``item_vectors`` (one row per column of ``rows``)
    when given. ``G = F^T F`` for the stacked factor ``F`` (``rows`` over the weighted
    ``item_vectors^T``); when ``F`` has fewer rows than columns (fewer users than artists, as
    on the real data: 1,892 against about 6,000), ``P`` comes from the Woodbury identity
    ``P = (I - F^T (l2 I + F F^T)^-1 F) / l2``, whose dense system has one row per row of
    ``F``: on the real training split a sixth of the CPU time of the direct solve, weights
    within 4e-7 of it (:func:`_low_rank_inverse`). Otherwise ``G + l2 I``, symmetric positive
    definite, is inverted through its Cholesky factor in ``dtype``: float32 (the default)
    takes half the time of float64 and moved 5 of 1,881 users' top-10 orders on the real
    data (weights within 5e-7 of float64's), a quarter of the time of the general inverse it
    replaces. Inside :func:`lastfm_rec.ops.reuse_results`, equal inputs reuse the earlier
    weights.
    """
    extra, weight = (item_vectors, plain(vector_weight)) if (
        item_vectors is not None and vector_weight) else (None, 0.0)
    return memoised("ease_weights",
                    lambda: _solve_weights(rows, extra, weight, plain(l2), dtype),
                    rows, plain(l2), extra, weight, np.dtype(dtype).str)


def _solve_weights(rows: sp.csr_matrix, item_vectors: sp.csr_matrix | None,
                   vector_weight: float, l2: float, dtype: type) -> np.ndarray:
    """The weights of :func:`ease_weights`, by the cheaper of its two solves."""
    with profiled("EASE solve"):
        factor = rows if item_vectors is None else sp.vstack(
            [rows, np.sqrt(vector_weight) * sp.csr_matrix(item_vectors).T])
        if factor.shape[0] < factor.shape[1]:
            inverse = _low_rank_inverse(sp.csr_matrix(factor), l2, dtype)
        else:
            inverse = _cholesky_inverse(_gram(rows, item_vectors, vector_weight, dtype), l2)
        inverse /= -np.diag(inverse).copy()  # in place: the weights are the largest array
        inverse[np.diag_indices_from(inverse)] = 0.0
        return inverse.astype(np.float32, copy=False)


#: Rows per block when a square array the size of the weights is built or mirrored.
_BLOCK_ROWS = 512


def _gram(rows: sp.csr_matrix, item_vectors: sp.csr_matrix | None, vector_weight: float,
          dtype: type) -> np.ndarray:
    """``G + l2 I``'s Gram part, built in ``dtype`` and Fortran order for the solve: a float64
    copy the size of the answer (390 MB for the real data's 6,953 artists) was the fit's
    largest array. Co-listener counts are exact in float32; each weighted tag product is
    rounded once before it is added."""
    rows = sp.csr_matrix(rows, dtype=dtype)
    gram = (rows.T @ rows).toarray(order="F")
    if item_vectors is not None:
        # a block of rows at a time: the whole product held 20 M entries as a sparse matrix
        vectors = sp.csr_matrix(item_vectors)
        transposed = vectors.T.tocsr()
        for start in range(0, gram.shape[0], _BLOCK_ROWS):
            similar = (vectors[start:start + _BLOCK_ROWS] @ transposed).toarray()
            similar *= vector_weight
            gram[start:start + _BLOCK_ROWS] += similar.astype(dtype)
    return gram


def _not_positive_definite(l2: float) -> np.linalg.LinAlgError:
    return np.linalg.LinAlgError(f"EASE's Gram matrix plus l2 = {l2} is not positive "
                                 "definite: use a larger l2")


def _cholesky_inverse(system: np.ndarray, l2: float) -> np.ndarray:
    """``(gram + l2 I)^-1`` from its Cholesky factor, for a Fortran-ordered ``gram`` (taken
    over)."""
    system[np.diag_indices_from(system)] += l2
    return _spd_inverse(system, l2)


def _spd_inverse(system: np.ndarray, l2: float) -> np.ndarray:
    """The inverse of a symmetric positive definite Fortran-ordered array (overwritten)."""
    potrf, potri = lapack.get_lapack_funcs(("potrf", "potri"), (system,))
    with threadpool_limits(solver_threads(), "blas"):
        factor, info = potrf(system, lower=False, overwrite_a=True)
        if info == 0:
            inverse, info = potri(factor, lower=False, overwrite_c=True)
    if info != 0:
        raise _not_positive_definite(l2)
    return _mirror_upper(inverse)


def _mirror_upper(square: np.ndarray) -> np.ndarray:
    """Copy the upper triangle of ``square`` onto its lower one, in place and a block of rows
    at a time: ``np.triu(a) + np.triu(a, 1).T`` held three more arrays of the answer's size
    (580 MB for the real data's 6,953 artists), the fit's peak."""
    for start in range(0, square.shape[0], _BLOCK_ROWS):
        stop = min(start + _BLOCK_ROWS, square.shape[0])
        square[start:stop, :start] = square[:start, start:stop].T
        block = square[start:stop, start:stop]
        block[...] = np.triu(block) + np.triu(block, 1).T
    return square


def _low_rank_inverse(factor: sp.csr_matrix, l2: float, dtype: type) -> np.ndarray:
    """``l2 (F^T F + l2 I)^-1 = I - F^T (l2 I + F F^T)^-1 F`` for a factor ``F`` with fewer
    rows than columns (the scale ``l2`` cancels in the weights).

    The small system is solved in float64; the product ``F^T (...)`` of the size of the
    answer is formed in ``dtype``. Without a positive ``l2``, ``F^T F + l2 I`` (of rank at
    most ``F``'s rows) is singular.
    """
    if l2 <= 0:
        raise _not_positive_definite(l2)
    factor = sp.csr_matrix(factor, dtype=np.float64)
    small = np.asfortranarray((factor @ factor.T).toarray())
    small[np.diag_indices_from(small)] += l2
    solved = np.asarray(factor.T @ _spd_inverse(small, l2), dtype=dtype)  # F^T M^-1
    inverse = np.asarray(sp.csr_matrix(factor, dtype=dtype).T @ solved.T)
    np.negative(inverse, out=inverse)  # in place: a second array the size of the answer
    inverse[np.diag_indices_from(inverse)] += 1.0
    return inverse


def float32_product(rows: sp.csr_matrix, weights: np.ndarray) -> np.ndarray:
    """``rows @ weights`` in float32, the weights' type: a float64 ``rows`` would make scipy
    copy all of ``weights`` to float64 first (5 times slower for 256 users x 6,000
    artists)."""
    return sp.csr_matrix(rows, dtype=np.float32) @ weights


def modelled_items(listeners: np.ndarray, min_listeners: int) -> np.ndarray:
    """Artists with at least ``min_listeners`` training listeners (the ones EASE models)."""
    return np.flatnonzero(listeners >= max(min_listeners, 1))


class EASERecommender(Recommender):
    """EASE on binary (or log1p-scaled) plays.

    Parameters
    ----------
    l2
        The ridge penalty ``lambda``.
    min_listeners
        Artists with fewer training listeners are left out of the model.
    scaling
        How plays enter ``X`` (``"binary"`` or ``"log1p"``).
    """

    name = "ease"
    fit_hint = "a larger l2"

    def __init__(self, l2: float = 100.0, min_listeners: int = 2,
                 scaling: str = "binary") -> None:
        self.l2, self.min_listeners, self.scaling = l2, min_listeners, scaling

    def _fit(self, user_items: sp.csr_matrix) -> None:
        self.items_ = modelled_items(self.item_listeners_, self.min_listeners)
        x = scale_plays(user_items, self.scaling)[:, self.items_]
        self.weights_ = ease_weights(x, self.l2)

    def _score(self, userids: np.ndarray, user_items: sp.csr_matrix,
               recalculate_user: bool) -> np.ndarray:
        x = scale_plays(user_items, self.scaling)[:, self.items_]
        scores = np.full((userids.size, self.n_items), -np.inf)
        scores[:, self.items_] = float32_product(x, self.weights_)
        return scores

    def _item_scores(self, itemids: np.ndarray) -> np.ndarray:
        return weight_rows(self, itemids)

    def _state(self) -> dict:
        return {"items_": self.items_, "weights_": self.weights_}


def weight_rows(model: Recommender, itemids: np.ndarray) -> np.ndarray:
    """``similar_items`` scores from a model's EASE weights (rows of ``weights_`` over
    ``items_``), with the co-listening cosine for artists the weights do not cover."""
    items, weights = model.items_, model.weights_
    scores = Recommender._item_scores(model, itemids)
    position = np.minimum(np.searchsorted(items, itemids), max(items.size - 1, 0))
    modelled = items[position] == itemids if items.size else np.zeros(itemids.size, bool)
    for row in np.flatnonzero(modelled):
        scores[row] = -np.inf
        scores[row, items] = weights[position[row]]
    return scores
