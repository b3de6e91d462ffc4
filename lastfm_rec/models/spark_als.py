"""Implicit-feedback ALS fitted by Apache Spark MLlib, scored here from its factors.

Needs the Spark extra (``make install-spark``) and Java 17+; pyspark is imported inside
``fit`` and ``fit_frame`` only, so the registry stays cheap to import. Fitting runs on the
session of :func:`lastfm_rec.spark.session.spark_session` (``local[*]``, or the cluster of
``LASTFM_REC_SPARK_MASTER``); ``fit_frame`` fits rows already on Spark without bringing them
to this process (``lastfm-rec scale fit``). Recommending, ``similar_items`` and
``save``/``load`` use the factors as every :class:`~lastfm_rec.models.base.FactorRecommender`
does.

How Spark's objective maps to ``implicit``'s (:mod:`lastfm_rec.models.als`). Both minimise,
over every user-artist pair, ``c_ui (p_ui - x_u . y_i)^2`` with preference ``p_ui = 1`` for
a played artist and ``0`` otherwise, and confidence ``c_ui = 1 + alpha * r_ui`` (``r`` the
scaled plays). They differ in the penalty and the solver:

* ``implicit``: ``regularization * (|x_u|^2 + |y_i|^2)``, the same for every user and artist,
  solved approximately by a few conjugate-gradient steps per update;
* Spark (ALS-WR): ``regParam * (n_u |x_u|^2 + n_i |y_i|^2)``, with ``n_u`` (``n_i``) the
  user's (artist's) number of played artists (listeners), solved exactly (Cholesky).

So ``implicit``'s ``regularization = 100`` is, for a user with the median 50 artists, a
Spark ``regParam`` of about 2; users with many artists are held back harder and artists
with few listeners less. On validation of the real data (rank 64, 15 iterations) the best
were ``regParam = 1.0`` here and ``regularization = 100`` there, and their held-out NDCG@10
is within 2% (``notebooks/07_scaling_out.ipynb``); the factors are not expected to agree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from lastfm_rec.models.base import FactorRecommender, scale_plays

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


class SparkALSRecommender(FactorRecommender):
    """MLlib ``ALS(implicitPrefs=True)`` on scaled play counts; seeded.

    Parameters
    ----------
    factors
        Rank of the factorisation.
    regularization
        Spark's ``regParam`` (multiplied by each user's or artist's count of plays).
    alpha
        Confidence ``1 + alpha * scaled plays``.
    iterations
        Alternations (``maxIter``).
    blocks
        User and item blocks (``numUserBlocks``/``numItemBlocks``): tasks per step; about
        the cores of the session (raise it on a cluster). Part of the seeded result.
    scaling
        ``"log1p"``, ``"binary"`` or ``"raw"`` (:func:`~lastfm_rec.models.base.scale_plays`).
    random_state
        Seed of Spark's factor initialisation.
    """

    name = "spark-als"

    def __init__(self, factors: int = 64, regularization: float = 1.0, alpha: float = 5.0,
                 iterations: int = 15, scaling: str = "log1p", random_state: int = 42,
                 blocks: int = 2) -> None:
        self.factors, self.regularization, self.alpha = factors, regularization, alpha
        self.iterations, self.scaling, self.random_state = iterations, scaling, random_state
        self.blocks = blocks

    def fit_frame(self, ratings: DataFrame, n_users: int, n_items: int) -> SparkALSRecommender:
        """Learn from listening rows in a Spark DataFrame, without bringing them here.

        Parameters
        ----------
        ratings
            Rows with integer ``u_id`` in ``0..n_users-1``, ``a_id`` in ``0..n_items-1`` and
            play counts ``weight``, as :func:`lastfm_rec.spark.preprocessing.prepare` gives.
        n_users, n_items
            The model's shape.

        Returns
        -------
        SparkALSRecommender
            Fitted as :meth:`fit` fits the same rows as a matrix (same seed, same factors),
            but only the factors and each artist's listener count come to this process:
            ``train_`` is None, so a saved model holds no play matrix. The MLlib model is
            kept in ``spark_model_`` (not saved), for
            :func:`~lastfm_rec.spark.als.recommend_to_parquet`.

        Raises
        ------
        ModelFitError
            The factors hold NaN or infinite values.
        """
        from lastfm_rec.spark import preprocessing

        self.n_users, self.n_items = int(n_users), int(n_items)
        self.item_listeners_ = preprocessing.item_listeners(ratings, self.n_items)
        self.train_ = None
        self._cosine_items = self._cosine_users = None
        self._train(preprocessing.scaled_ratings(ratings, self.scaling), keep=True)
        self._check_fit()
        return self

    def _fit(self, user_items: sp.csr_matrix) -> None:
        from lastfm_rec.spark import preprocessing, session

        scaled = scale_plays(user_items, self.scaling)
        with preprocessing.matrix_frame(session.spark_session(), scaled) as frame:
            self._train(frame)

    def _train(self, frame: DataFrame, keep: bool = False) -> None:
        """Fit MLlib ALS on rows ``(u_id, a_id, rating)`` and collect the factors; ``keep``
        the MLlib model in ``spark_model_``."""
        from lastfm_rec.spark import als

        model = als.train_als(frame, factors=self.factors, regularization=self.regularization,
                              alpha=self.alpha, iterations=self.iterations,
                              seed=self.random_state, blocks=self.blocks)
        if keep:
            self.spark_model_ = model
        self.user_factors, self.item_factors = als.factor_arrays(model, self.n_users,
                                                                 self.n_items)

    def _fold_in(self, user_items: sp.csr_matrix) -> np.ndarray:
        """Spark's own user update, exactly: ``(Y'Y + sum c1 y y' + regParam n_u I) x =
        sum (1 + c1) y`` over the user's played artists, ``c1 = alpha * scaled plays``.

        For a training user this reproduces the factors Spark learnt (its last step
        solves the users given the final artist factors).
        """
        items = np.asarray(self.item_factors, dtype=np.float64)
        gram = items.T @ items
        scaled = scale_plays(user_items, self.scaling)
        vectors = np.zeros((scaled.shape[0], items.shape[1]))
        for row in range(scaled.shape[0]):
            start, end = scaled.indptr[row], scaled.indptr[row + 1]
            played, values = scaled.indices[start:end], scaled.data[start:end]
            keep = values > 0
            if not keep.any():
                continue
            own, confidence = items[played[keep]], self.alpha * values[keep]
            system = gram + (own.T * confidence) @ own
            system[np.diag_indices_from(system)] += self.regularization * keep.sum()
            vectors[row] = np.linalg.solve(system, (1.0 + confidence) @ own)
        return vectors.astype(self.item_factors.dtype)
