"""The solvers behind ``CFModel.train``: three ways to minimise one objective.

* :func:`fast_gradient_ops`: full-batch gradient descent with the hand-derived gradient
  (:meth:`Objective.gradients`) inside a ``tf.while_loop``, the residual compiled with XLA;
* :func:`per_step_train_op`: the original's loop, ``optimizer.minimize(loss)`` run once per
  step;
* :func:`als_sweeps`: closed-form alternating least squares on the same objective
  (:func:`als_half_step`, numpy/scipy).

Each works on the graph, variables and :class:`Objective` of a model made by
:func:`lastfm_rec.original.cfmodel.build_model`; :class:`lastfm_rec.original.cfmodel.CFModel`
keeps the session, history and progress bar and calls these. TensorFlow comes from
:mod:`lastfm_rec.original.tfcompat` (its environment defaults).

How fast the gradient path can be here (HetRec data, k = 10, about 10 MFLOP a step, one
thread; ``bench/bench_training.py``, CPU time per step): a step costs about 1.4 ms, of which
the two sparse-dense products take a third, the gravity products a quarter, the fused
residual a seventh. Two rewrites compiled more of the step with XLA and were measured
against it: the whole loop in one XLA program, with the sums over each user's and each
artist's entries as padded dense reductions (XLA compiles scatter-adds and long reductions
poorly), and the gravity, regularisation and update terms in a second XLA kernel. Each saved
at most 10% of a step's CPU time and added compilation (a CPU-second per process and data
shape for the whole loop, 0.3–0.5 s per model for the second kernel) that a 2,000-step run
does not win back. A step's arrays fit in cache; what remains is kernel and
gather overhead that these tools do not remove.
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

    def gradients(self, U: tf.Tensor, V: tf.Tensor,
                  residual_fn: Callable[..., tf.Tensor] | None = None
                  ) -> tuple[tf.Tensor, tf.Tensor]:
        """Hand-derived gradient of the objective at (U, V), built as graph ops.

        With ``R`` the sparse residual ``A - UVᵀ`` on Ω::

            dU = -2/|Ω| R V  + 2λ_r/N U + 2λ_g/(NM) U (VᵀV)
            dV = -2/|Ω| RᵀU  + 2λ_r/M V + 2λ_g/(NM) V (UᵀU)

        ``residual_fn(U, V, rows, cols, values)`` computes the residual values (default:
        :func:`observed_residual`; the fast path passes an XLA-compiled version of it). The
        entries are the objective's, as constants (slicing the index columns of the graph's
        sparse tensor took about 5% of every step).
        """
        n, m = float(self.n_users), float(self.n_artists)
        residual_fn = residual_fn or observed_residual
        values = residual_fn(U, V, tf.constant(self.indices[:, 0]),
                             tf.constant(self.indices[:, 1]), tf.constant(self.values))
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


def observed_residual(U: tf.Tensor, V: tf.Tensor, rows: tf.Tensor, cols: tf.Tensor,
              values: tf.Tensor) -> tf.Tensor:
    """``A_ij - <U_i, V_j>`` on the observed entries (the gathers dominate a step's cost)."""
    return values - tf.reduce_sum(tf.gather(U, rows) * tf.gather(V, cols), axis=1)


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


def fast_gradient_ops(graph: tf.Graph, embedding_vars: Mapping[str, Any], objective: Objective,
                      xla: bool) -> tuple[Any, Any, Any, bool]:
    """Ops that run ``n_steps`` gradient-descent steps in one ``Session.run``.

    The residual on the observed entries (two gathers, a product and a row sum) is compiled
    with XLA when ``xla``, which fuses it and makes a step about twice as fast; the sparse
    products stay TensorFlow kernels (XLA has none).

    Returns
    -------
    tuple
        ``(n_steps, learning_rate, op, xla)``: the two placeholders to feed, the op that
        runs the loop and assigns the variables, and whether XLA is used.
    """
    U_var, V_var = embedding_vars["u_id"], embedding_vars["a_id"]
    with graph.as_default(), tf.name_scope("fast_gradient_descent"):
        n_steps = tf.placeholder(tf.int32, [], name="n_steps")
        rate = tf.placeholder(U_var.dtype.base_dtype, [], name="learning_rate")
        residual_fn = tf.function(observed_residual, jit_compile=True) if xla else None

        def body(i: tf.Tensor, U: tf.Tensor, V: tf.Tensor) -> tuple[Any, ...]:
            grad_u, grad_v = objective.gradients(U, V, residual_fn)
            return i + 1, U - rate * grad_u, V - rate * grad_v

        _, U_new, V_new = tf.while_loop(
            lambda i, U, V: i < n_steps, body,
            [tf.constant(0), U_var.read_value(), V_var.read_value()],
            parallel_iterations=1, back_prop=False)
        op = tf.group(U_var.assign(U_new), V_var.assign(V_new))
    return n_steps, rate, op, xla


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
