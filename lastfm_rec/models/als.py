"""Implicit-feedback matrix factorisation (Hu, Koren & Volinsky 2008) via ``implicit``.

Every artist enters the loss: played ones with preference 1 and confidence
``1 + alpha * scaled plays``, unplayed ones with preference 0 and confidence 1.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares
from threadpoolctl import threadpool_limits

from lastfm_rec.models.base import FactorRecommender, scale_plays


class ALSRecommender(FactorRecommender):
    """``implicit.als.AlternatingLeastSquares`` on scaled play counts, single-threaded and
    seeded so a fit is reproducible.

    Parameters
    ----------
    factors, regularization, alpha, iterations
        As in ``implicit`` (confidence = 1 + alpha * scaled plays).
    scaling
        ``"log1p"``, ``"binary"`` or ``"raw"`` (:func:`~lastfm_rec.models.base.scale_plays`).
    random_state
        Seed of the factor initialisation.
    """

    name = "als"

    def __init__(self, factors: int = 256, regularization: float = 100.0, alpha: float = 5.0,
                 iterations: int = 15, scaling: str = "log1p", random_state: int = 42) -> None:
        self.factors, self.regularization, self.alpha = factors, regularization, alpha
        self.iterations, self.scaling, self.random_state = iterations, scaling, random_state

    def _implicit_model(self) -> AlternatingLeastSquares:
        return AlternatingLeastSquares(
            factors=self.factors, regularization=self.regularization, alpha=self.alpha,
            iterations=self.iterations, random_state=self.random_state, num_threads=1,
            dtype=np.float32)

    def _fit(self, user_items: sp.csr_matrix) -> None:
        with threadpool_limits(1, "blas"):  # before construction: implicit checks BLAS threads
            model = self._implicit_model()
            model.fit(scale_plays(user_items, self.scaling).astype(np.float32),
                      show_progress=False)
        self.user_factors = np.asarray(model.user_factors, dtype=np.float32)
        self.item_factors = np.asarray(model.item_factors, dtype=np.float32)

    def _fold_in(self, user_items: sp.csr_matrix) -> np.ndarray:
        with threadpool_limits(1, "blas"):
            model = self._implicit_model()
            model.user_factors, model.item_factors = self.user_factors, self.item_factors
            vectors = model.recalculate_user(
                np.arange(user_items.shape[0]),
                scale_plays(user_items, self.scaling).astype(np.float32))
        return np.asarray(vectors)
