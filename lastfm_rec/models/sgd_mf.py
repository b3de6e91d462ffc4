"""The original analysis's model behind the common interface: matrix factorisation fitted by
gradient descent on the MSE of min-max scaled play counts over observed entries only, with
L2 and "gravity" penalties (:func:`lastfm_rec.original.cfmodel.build_model`).

Unplayed artists enter the loss only through the gravity term, so nothing teaches the model
that a played artist should outrank an unplayed one. On the real test split (seed 42,
defaults) it scores NDCG@10 0.0003, below a random order (0.0010): its top artists have about
2 listeners each, while held-out listens lean to popular artists. It is here to measure
exactly that. Users and artists without a training entry get zero embeddings (as ALS leaves
them), not their random start.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from lastfm_rec.data.preprocessing import WeightScaler, outlier_threshold
from lastfm_rec.models.base import FactorRecommender, FitCallback
from lastfm_rec.ops import memoised
from lastfm_rec.original.foldin import fold_in, similar_users_embedding

FOLD_INS = ("least-squares", "similar-users")


class SGDMFRecommender(FactorRecommender):
    """The original CFModel (``solver="sgd"``), trained on the ``user_items`` it is fitted on.

    Play counts above the ``quantile`` of the training counts are dropped (when
    ``remove_outliers``), the rest min-max scaled to ``w_mm`` with bounds fitted on training,
    as the original preprocessing does; the model then trains on every remaining entry
    (``holdout_fraction=0``: evaluation holds data out itself). Scores are dot products of
    user and artist embeddings, the original's default measure.

    Parameters
    ----------
    embedding_dim, regularization_coeff, gravity_coeff, init_stddev
        As in :func:`~lastfm_rec.original.cfmodel.build_model`; the defaults are the original's
        ``model`` (k=10, λ_r=0.2, λ_g=0.5, stddev 1).
    num_iterations, learning_rate
        Full-batch gradient steps (the original ran 2000 at learning rate 1).
    fold_in
        How ``recalculate_user=True`` places a user: ``"least-squares"`` minimises the model's
        own objective for that user (their ``w_mm`` row against the fixed artist embeddings,
        with the model's L2 and gravity terms at their per-user weight), ``"similar-users"``
        is the original's heuristic (mean embedding of the ``n_similar`` training users whose
        ``w_mm`` rows have the largest dot product with the user's 0/1 likes;
        :func:`lastfm_rec.original.foldin.similar_users_embedding`).
    """

    name = "sgd-mf"
    iterative = True
    fit_hint = "a smaller learning_rate or init_stddev"

    def __init__(self, embedding_dim: int = 10, regularization_coeff: float = 0.2,
                 gravity_coeff: float = 0.5, init_stddev: float = 1.0,
                 num_iterations: int = 2000, learning_rate: float = 1.0,
                 remove_outliers: bool = True, quantile: float = 0.99, seed: int = 42,
                 fold_in: str = "least-squares", n_similar: int = 5) -> None:
        if fold_in not in FOLD_INS:
            raise ValueError(f"fold_in must be one of {FOLD_INS}, got {fold_in!r}")
        self.embedding_dim, self.regularization_coeff = embedding_dim, regularization_coeff
        self.gravity_coeff, self.init_stddev = gravity_coeff, init_stddev
        self.num_iterations, self.learning_rate = num_iterations, learning_rate
        self.remove_outliers, self.quantile, self.seed = remove_outliers, quantile, seed
        self.fold_in, self.n_similar = fold_in, n_similar

    def _fit(self, user_items: sp.csr_matrix, show_progress: bool = False,
             callback: FitCallback | None = None) -> None:
        training = {k: v for k, v in self.saved_params().items()
                    if k not in ("fold_in", "n_similar")}  # these act after the fit
        self.scale_, self.user_factors, self.item_factors, self.n_observed_ = memoised(
            "sgd-mf", lambda: self._solve(user_items, show_progress, callback), user_items,
            training)

    def _solve(self, user_items: sp.csr_matrix, show_progress: bool,
               callback: FitCallback | None) -> tuple[np.ndarray, ...]:
        """Scaler range, user and artist factors, and the number of entries trained on."""
        from lastfm_rec.original.cfmodel import build_model  # TensorFlow: imported only when needed

        coo = user_items.tocoo()
        keep = np.ones(coo.nnz, dtype=bool)
        if self.remove_outliers and coo.nnz:
            keep = coo.data <= outlier_threshold(coo.data, self.quantile)
        scaler = WeightScaler.fit(coo.data[keep])
        ratings = pd.DataFrame({"u_id": coo.row[keep], "a_id": coo.col[keep],
                                "w_mm": scaler.transform(coo.data[keep])})
        model = build_model(ratings, embedding_dim=int(self.embedding_dim),
                            regularization_coeff=float(self.regularization_coeff),
                            gravity_coeff=float(self.gravity_coeff),
                            init_stddev=float(self.init_stddev), holdout_fraction=0.0,
                            seed=int(self.seed), n_users=self.n_users, n_artists=self.n_items,
                            solver="sgd")
        try:
            _train(model, int(self.num_iterations), float(self.learning_rate), show_progress,
                   callback)
            user_factors = np.asarray(model.embeddings["u_id"], dtype=np.float64)
            item_factors = np.asarray(model.embeddings["a_id"], dtype=np.float64)
        finally:
            model.close()
        # Rows nothing trained keep their random start: zero them, as ALS leaves them.
        user_factors[np.bincount(coo.row[keep], minlength=self.n_users) == 0] = 0.0
        item_factors[np.bincount(coo.col[keep], minlength=self.n_items) == 0] = 0.0
        return (np.array([scaler.minimum, scaler.maximum]), user_factors, item_factors,
                np.array(int(keep.sum())))

    def _scaled(self, user_items: sp.csr_matrix) -> sp.csr_matrix:
        scaled = sp.csr_matrix(user_items, copy=True)
        low, high = self.scale_
        scaled.data = (scaled.data - low) / (high - low) if high > low else 0 * scaled.data
        return scaled

    def _least_squares(self, user_items: sp.csr_matrix) -> np.ndarray:
        """Per-user minimiser of the training objective with the artist embeddings fixed.

        Multiplying the objective by ``|Ω|`` leaves ``Σ_j (w_j - u·v_j)²`` over the user's
        artists plus ``λ_r |Ω|/N |u|²`` plus ``λ_g |Ω|/(N M) u·(VᵀV)u``.
        """
        scale = float(self.n_observed_) / self.n_users
        scaled = self._scaled(user_items)
        vectors = np.zeros((scaled.shape[0], self.item_factors.shape[1]))
        for row in range(scaled.shape[0]):
            vectors[row] = fold_in(scaled[row].indices, self.item_factors,
                                   self.regularization_coeff * scale,
                                   self.gravity_coeff * scale, values=scaled[row].data)
        return vectors

    def _similar_users(self, user_items: sp.csr_matrix) -> np.ndarray:
        ratings = self._scaled(self.train_)
        return np.stack([
            similar_users_embedding(user_items[row].indices, ratings, self.user_factors,
                                    self.n_similar)
            for row in range(user_items.shape[0])]) if user_items.shape[0] else np.zeros(
                (0, self.embedding_dim))

    def _fold_in(self, user_items: sp.csr_matrix) -> np.ndarray:
        if self.fold_in == "similar-users":
            return self._similar_users(user_items)
        return self._least_squares(user_items)

    def _state(self) -> dict:
        return {**super()._state(), "scale_": self.scale_, "n_observed_": self.n_observed_}


def _train(model: Any, iterations: int, learning_rate: float, show_progress: bool,
           callback: FitCallback | None) -> None:
    """``model.train`` for ``iterations`` steps; with a ``callback``, in chunks of the
    history's recording interval (the same steps), calling it after each chunk."""
    if callback is None:
        model.train(iterations, learning_rate=learning_rate, plot_results=False,
                    show_progress=show_progress)
        return
    from lastfm_rec.original.cfmodel import RECORD_EVERY_SGD

    started = time.perf_counter()
    while model.iteration < iterations:
        chunk = min(RECORD_EVERY_SGD, iterations - model.iteration)
        model.train(chunk, learning_rate=learning_rate, plot_results=False,
                    show_progress=show_progress)
        callback(model.iteration, time.perf_counter() - started,
                 float(model.history["total_loss"].iloc[-1]))
