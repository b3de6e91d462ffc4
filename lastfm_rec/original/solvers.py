"""The solvers behind ``CFModel.train`` and the objective they minimise.

* :class:`Objective`: the training entries and coefficients of a model made by
  :func:`lastfm_rec.original.cfmodel.build_model`, with the hand-derived gradient
  (:meth:`Objective.gradients`) that the fast gradient path
  (:mod:`lastfm_rec.original.descent`, compiled with numba) implements;
* :func:`per_step_train_op`: the original's loop, ``optimizer.minimize(loss)`` run once per
  step;
* :func:`als_sweeps`: closed-form alternating least squares on the same objective
  (:func:`als_half_step`, numpy/scipy).

:class:`lastfm_rec.original.cfmodel.CFModel` keeps the session, history and progress bar and
calls these. TensorFlow comes from :mod:`lastfm_rec.original.tfcompat` (its environment
defaults).

Why the gradient path left TensorFlow (HetRec data, k = 10, about 10 MFLOP a step, one
thread): in a ``tf.while_loop`` with the residual compiled by XLA a step cost about 1.4–1.6 ms,
kernel launches and gathers rather than arithmetic; compiling more of the step with XLA saved
at most 10% and added seconds of compilation. The numba kernel runs a step in about 0.6 ms.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from lastfm_rec.original.tfcompat import tf


@dataclass(frozen=True)
class Objective:
    """The objective of a model built by :func:`build_model`, in a form the fast solvers use.

    Attributes
    ----------
    indices, values
        Training entries: canonical-order ``(u_id, a_id)`` int64 pairs and float32 ``w_mm``.
    n_users, n_artists
        N and M.
    regularization_coeff, gravity_coeff
        λ_r and λ_g.
    """

    indices: np.ndarray
    values: np.ndarray
    n_users: int
    n_artists: int
    regularization_coeff: float
    gravity_coeff: float

    @property
    def n_observed(self) -> int:
        return len(self.values)

    def matrix(self) -> sp.csr_matrix:
        """The training ratings as an N×M CSR matrix (float64)."""
        return sp.csr_matrix(
            (self.values.astype(np.float64), (self.indices[:, 0], self.indices[:, 1])),
            shape=(self.n_users, self.n_artists))

    def gradients(self, U: tf.Tensor, V: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Hand-derived gradient of the objective at (U, V), built as graph ops.

        With ``R`` the sparse residual ``A - UVᵀ`` on Ω::

            dU = -2/|Ω| R V  + 2λ_r/N U + 2λ_g/(NM) U (VᵀV)
            dV = -2/|Ω| RᵀU  + 2λ_r/M V + 2λ_g/(NM) V (UᵀU)

        The compiled gradient path (:mod:`lastfm_rec.original.descent`) computes the same
        terms; this form checks them against TensorFlow's automatic differentiation.
        """
        n, m = float(self.n_users), float(self.n_artists)
        rows, cols = tf.constant(self.indices[:, 0]), tf.constant(self.indices[:, 1])
        values = tf.constant(self.values) - tf.reduce_sum(
            tf.gather(U, rows) * tf.gather(V, cols), axis=1)
        residual = tf.SparseTensor(tf.constant(self.indices), values,
                                   [self.n_users, self.n_artists])
        c_obs = -2. / self.n_observed
        grad_u = (c_obs * tf.sparse.sparse_dense_matmul(residual, V)
                  + (2. * self.regularization_coeff / n) * U)
        grad_v = (c_obs * tf.sparse.sparse_dense_matmul(residual, U, adjoint_a=True)
                  + (2. * self.regularization_coeff / m) * V)
        if self.gravity_coeff:
            c_grav = 2. * self.gravity_coeff / (n * m)
            grad_u += c_grav * tf.matmul(U, tf.matmul(V, V, transpose_a=True))
            grad_v += c_grav * tf.matmul(V, tf.matmul(U, U, transpose_a=True))
        return grad_u, grad_v


def als_half_step(ratings: sp.csr_matrix, pattern: sp.csr_matrix, fixed: np.ndarray,
                   ridge: float, gravity_weight: float) -> np.ndarray:
    """Exact minimiser over the free factor X (rows × k) with the other factor ``fixed``.

    Setting the gradient of the objective to zero row by row (multiplied by |Ω|/2) gives, for
    each row i with observed columns Ω_i::

        (Σ_{j∈Ω_i} f_j f_jᵀ + ridge·I + gravity_weight·FᵀF) x_i = Σ_{j∈Ω_i} A_ij f_j

    with ``ridge = |Ω| λ_r / rows`` and ``gravity_weight = |Ω| λ_g / (NM)``. The Gram
    matrices of all rows come from one sparse product with the flattened outer products
    f_j f_jᵀ; the k×k systems are solved as one stacked batch.
    """
    k = fixed.shape[1]
    outer = (fixed[:, :, None] * fixed[:, None, :]).reshape(len(fixed), k * k)
    lhs = np.asarray(pattern @ outer).reshape(-1, k, k)
    shared = ridge * np.eye(k)
    if gravity_weight:
        shared = shared + gravity_weight * (fixed.T @ fixed)
    lhs += shared
    rhs = np.asarray(ratings @ fixed)[:, :, None]
    try:
        return np.linalg.solve(lhs, rhs)[:, :, 0]
    except np.linalg.LinAlgError:
        # Singular rows (no regularisation and fewer than k ratings): the minimum-norm
        # minimiser is still a minimiser.
        return (np.linalg.pinv(lhs) @ rhs)[:, :, 0]


def per_step_train_op(session: tf.Session, loss: tf.Tensor, embedding_vars: Mapping[str, Any],
                      optimizer: Any, learning_rate: float) -> Any:
    """The original's step: ``optimizer.minimize(loss)`` (default plain gradient descent);
    ``optimizer`` is a ``tf.compat.v1.train.Optimizer`` class or instance. Its slot variables
    are initialised in ``session``."""
    with loss.graph.as_default():
        if optimizer is None:
            opt = tf.train.GradientDescentOptimizer(learning_rate)
        elif isinstance(optimizer, tf.train.Optimizer):
            opt = optimizer
        else:
            opt = optimizer(learning_rate)
        train_op = opt.minimize(loss, var_list=list(embedding_vars.values()))
        session.run(tf.group(tf.variables_initializer(opt.variables()),
                             tf.local_variables_initializer()))
    return train_op


def als_sweeps(objective: Objective) -> Callable[[np.ndarray, np.ndarray, int],
                                                 tuple[np.ndarray, np.ndarray]]:
    """A function ``(U, V, sweeps) -> (U, V)`` running ALS sweeps (user half-step, then
    artist half-step) in float64 on ``objective``."""
    ratings = objective.matrix()
    ratings_t = ratings.T.tocsr()
    pattern = ratings.copy()
    pattern.data = np.ones_like(pattern.data)
    pattern_t = pattern.T.tocsr()
    n, m, n_obs = objective.n_users, objective.n_artists, objective.n_observed
    lam_r, lam_g = objective.regularization_coeff, objective.gravity_coeff
    grav = n_obs * lam_g / (n * m)

    def run(U: np.ndarray, V: np.ndarray, sweeps: int) -> tuple[np.ndarray, np.ndarray]:
        for _ in range(sweeps):
            U = als_half_step(ratings, pattern, V, n_obs * lam_r / n, grav)
            V = als_half_step(ratings_t, pattern_t, U, n_obs * lam_r / m, grav)
        return U, V
    return run
