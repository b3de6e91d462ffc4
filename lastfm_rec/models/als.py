"""Implicit-feedback matrix factorisation (Hu, Koren & Volinsky 2008) via ``implicit``.

Every artist enters the loss: played ones with preference 1 and confidence
``1 + alpha * scaled plays``, unplayed ones with preference 0 and confidence 1.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares
from threadpoolctl import threadpool_limits

from lastfm_rec.models.base import Recommender, scale_plays


class ALSRecommender(Recommender):
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

    def _user_vectors(self, userids: np.ndarray, user_items: sp.csr_matrix,
                      recalculate_user: bool) -> np.ndarray:
        if not recalculate_user:
            return self.user_factors[userids]
        with threadpool_limits(1, "blas"):
            model = self._implicit_model()
            model.user_factors, model.item_factors = self.user_factors, self.item_factors
            vectors = model.recalculate_user(
                np.arange(userids.size), scale_plays(user_items, self.scaling).astype(np.float32))
        return np.asarray(vectors)

    def _score(self, userids: np.ndarray, user_items: sp.csr_matrix,
               recalculate_user: bool) -> np.ndarray:
        vectors = self._user_vectors(userids, user_items, recalculate_user)
        return vectors.astype(np.float64) @ self.item_factors.T.astype(np.float64)

    def item_vectors(self) -> np.ndarray:
        self._check_fitted()
        return self.item_factors

    def user_vectors(self, user_items: sp.csr_matrix) -> np.ndarray:
        self._check_fitted()
        rows = sp.csr_matrix(user_items, dtype=np.float64)
        return self._user_vectors(np.arange(rows.shape[0]), rows, recalculate_user=True)

    def _item_scores(self, itemids: np.ndarray) -> np.ndarray:
        factors = self.item_factors.astype(np.float64)
        unit = factors / np.maximum(np.linalg.norm(factors, axis=1, keepdims=True), 1e-12)
        return unit[itemids] @ unit.T

    def _state(self) -> dict:
        return {"user_factors": self.user_factors, "item_factors": self.item_factors}
