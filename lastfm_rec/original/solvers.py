"""The solvers behind ``CFModel.train``: three ways to minimise one objective.

* :class:`FastDescent`: full-batch gradient descent with the hand-derived gradient, many steps
  per call in one XLA-compiled loop over a padded layout of the training entries
  (:class:`SlotLayout`, :func:`observed_gradient`);
* :func:`per_step_train_op`: the original's loop, ``optimizer.minimize(loss)`` run once per
  step;
* :func:`als_sweeps`: closed-form alternating least squares on the same objective
  (:func:`als_half_step`, numpy/scipy).

:func:`per_step_train_op` works on the graph and variables of a model made by
:func:`lastfm_rec.original.cfmodel.build_model`; the other two take and return numpy
embeddings, which :class:`lastfm_rec.original.cfmodel.CFModel` reads from and writes to its
session. TensorFlow comes from :mod:`lastfm_rec.original.tfcompat` (its environment defaults).

Why the fast path looks the way it does (profiled on the HetRec data, k = 10): a step is about
10 MFLOP, but TensorFlow's sparse-dense products, gathers and scatter-adds each cost about a
millisecond single-threaded, and XLA compiles scatter-adds and long reductions poorly. Laid out
per owner (each user's, or each artist's, entries padded to a common width), the sums over an
owner's entries are dense reductions that XLA fuses with the gathers, and the whole step, the
gravity terms included, compiles into one loop. Compiling takes a second or two, so the loop
is compiled once per process and shape (the layout's arrays are arguments, not constants) and
runs eagerly outside the model's graph.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import scipy.sparse as sp

from lastfm_rec.original.tfcompat import tf

#: One more bucket of a :class:`SlotLayout` costs a few more kernels to compile and to run
#: each step; on the HetRec data this many padded slots per bucket balanced the two (the
#: loop then has 1 user and 8 artist buckets and compiles in about a CPU-second).
BUCKET_COST_SLOTS = 8000


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

    def coefficients(self, dtype: Any = np.float32) -> np.ndarray:
        """``[-2/|Ω|, 2λ_r/N, 2λ_r/M, 2λ_g/(NM)]``: the factors of the gradient's terms."""
        n, m = float(self.n_users), float(self.n_artists)
        lam_r, lam_g = self.regularization_coeff, self.gravity_coeff
        return np.array([-2. / self.n_observed, 2. * lam_r / n, 2. * lam_r / m,
                         2. * lam_g / (n * m)], dtype=dtype)

    def gradients(self, U: np.ndarray, V: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Hand-derived gradient of the objective at (U, V), as the fast path computes it.

        With ``R`` the sparse residual ``A - UVᵀ`` on Ω::

            dU = -2/|Ω| R V  + 2λ_r/N U + 2λ_g/(NM) U (VᵀV)
            dV = -2/|Ω| RᵀU  + 2λ_r/M V + 2λ_g/(NM) V (UᵀU)
        """
        return FastDescent(self, xla=False).gradients(U, V)


def bucket_widths(degrees: np.ndarray, bucket_cost: float = BUCKET_COST_SLOTS) -> np.ndarray:
    """Widths (decreasing) of the buckets that pad owners of these degrees most cheaply.

    Owners sorted by degree are split into runs, each padded to its largest degree; the split
    minimises padded slots plus ``bucket_cost`` per bucket (dynamic programming over the
    distinct degrees). Owners of degree 0 get no bucket.
    """
    distinct, counts = np.unique(degrees[degrees > 0], return_counts=True)
    distinct, counts = distinct[::-1], counts[::-1]
    covered = np.concatenate([[0], np.cumsum(counts)])
    best = np.zeros(len(distinct) + 1)
    first = np.zeros(len(distinct) + 1, dtype=np.int64)
    for end in range(1, len(distinct) + 1):
        # The last bucket holds distinct[start:end], padded to distinct[start].
        costs = (best[:end] + (covered[end] - covered[:end]) * distinct[:end] + bucket_cost)
        first[end] = np.argmin(costs)
        best[end] = costs[first[end]]
    widths, end = [], len(distinct)
    while end:
        widths.append(int(distinct[first[end]]))
        end = first[end]
    return np.array(widths[::-1], dtype=np.int64)


@dataclass(frozen=True)
class SlotLayout:
    """The training entries grouped by owner (user, or artist), padded into dense buckets.

    Owners are put in layout order: buckets of decreasing width, then the owners without
    entries. Bucket ``b`` holds the owners at layout positions ``bounds[b]:bounds[b + 1]``;
    ``slots[b][i, s]`` is the index of the ``s``-th entry of its ``i``-th owner (entries in
    their canonical order), ``-1`` for padding.

    Attributes
    ----------
    order
        Owner ids in layout order.
    bounds
        Bucket boundaries, ``len(slots) + 1`` positions starting at 0.
    slots
        One ``(owners, width)`` int64 array per bucket.
    """

    order: np.ndarray
    bounds: tuple[int, ...]
    slots: tuple[np.ndarray, ...]

    @classmethod
    def build(cls, owners: np.ndarray, n_owners: int,
              bucket_cost: float = BUCKET_COST_SLOTS) -> SlotLayout:
        """The layout of entries whose owners are ``owners`` (ids in ``[0, n_owners)``)."""
        degrees = np.bincount(owners, minlength=n_owners)
        widths = bucket_widths(degrees, bucket_cost)
        owner_width = np.zeros(n_owners, dtype=np.int64)
        nonempty = degrees > 0
        owner_width[nonempty] = widths[::-1][np.searchsorted(widths[::-1], degrees[nonempty])]
        order = np.lexsort((np.arange(n_owners), -owner_width))
        position = np.empty(n_owners, dtype=np.int64)
        position[order] = np.arange(n_owners)
        by_owner = np.argsort(owners, kind="stable")
        rank = np.arange(len(owners)) - np.concatenate([[0], np.cumsum(degrees)])[
            owners[by_owner]]
        bounds, slots = [0], []
        for width in widths:
            count = int(np.count_nonzero(owner_width == width))
            block = np.full((count, width), -1, dtype=np.int64)
            mine = owner_width[owners[by_owner]] == width
            entries = by_owner[mine]
            block[position[owners[entries]] - bounds[-1], rank[mine]] = entries
            slots.append(block)
            bounds.append(bounds[-1] + count)
        return cls(order, tuple(bounds), tuple(slots))

    @cached_property
    def position(self) -> np.ndarray:
        """Layout position of each owner id (the inverse of :attr:`order`)."""
        position = np.empty_like(self.order)
        position[self.order] = np.arange(len(self.order))
        return position

    def flat_positions(self, n_entries: int) -> np.ndarray:
        """Position of each entry in the buckets' slots, flattened and concatenated."""
        flat = np.empty(n_entries, dtype=np.int64)
        offset = 0
        for block in self.slots:
            filled = block.ravel() >= 0
            flat[block.ravel()[filled]] = offset + np.flatnonzero(filled)
            offset += block.size
        return flat


def _times_small(X: tf.Tensor, G: tf.Tensor) -> tf.Tensor:
    """``X @ G`` for a small square ``G`` as a sum of outer products (XLA fuses it; its dot
    kernel is four times slower on these shapes)."""
    return tf.add_n([X[:, i:i + 1] * G[i:i + 1, :] for i in range(G.shape[0])])


def observed_gradient(U: tf.Tensor, V: tf.Tensor, user_partners: Sequence[tf.Tensor],
                      user_values: Sequence[tf.Tensor], artist_partners: Sequence[tf.Tensor],
                      artist_residuals: Sequence[tf.Tensor],
                      coefficients: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """The gradient (:meth:`Objective.gradients`) at embeddings in layout order, as graph ops.

    ``U`` (N+1 rows) and ``V`` (M+1 rows) are in the user and artist layouts' order with a
    last row of zeros, which padded slots point at. The arrays come from
    :class:`FastDescent`: per user bucket, the artists' layout positions and the ratings; per
    artist bucket, the users' layout positions and where each entry's residual is in the user
    buckets' flattened residuals (one past the end for padding).
    """
    k = U.shape[1]
    residuals, observed_u, start = [], [], 0
    for partners, values in zip(user_partners, user_values, strict=True):
        stop = start + partners.shape[0]
        V_slots = tf.gather(V, partners)
        residual = values - tf.reduce_sum(U[start:stop, None, :] * V_slots, axis=2)
        observed_u.append(tf.reduce_sum(residual[:, :, None] * V_slots, axis=1))
        residuals.append(tf.reshape(residual, [-1]))
        start = stop
    observed_u.append(tf.zeros([U.shape[0] - start, k], U.dtype))
    residuals.append(tf.zeros([1], U.dtype))
    residuals = tf.concat(residuals, 0)
    observed_v, start = [], 0
    for partners, positions in zip(artist_partners, artist_residuals, strict=True):
        residual = tf.gather(residuals, positions)
        observed_v.append(tf.reduce_sum(residual[:, :, None] * tf.gather(U, partners), axis=1))
        start += partners.shape[0]
    observed_v.append(tf.zeros([V.shape[0] - start, k], V.dtype))
    # Gravity is computed even when its coefficient is 0 (0 · finite is exactly 0): models
    # with and without it then share one compiled loop.
    grad_u = (coefficients[0] * tf.concat(observed_u, 0) + coefficients[1] * U
              + coefficients[3] * _times_small(U, tf.matmul(V, V, transpose_a=True)))
    grad_v = (coefficients[0] * tf.concat(observed_v, 0) + coefficients[2] * V
              + coefficients[3] * _times_small(V, tf.matmul(U, U, transpose_a=True)))
    return grad_u, grad_v


def _descend(U: tf.Tensor, V: tf.Tensor, layout: tuple[Sequence[tf.Tensor], ...],
             coefficients: tf.Tensor, n_steps: tf.Tensor,
             learning_rate: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """``n_steps`` gradient-descent steps from (U, V) in layout order."""
    def body(i: tf.Tensor, U: tf.Tensor, V: tf.Tensor) -> tuple[tf.Tensor, ...]:
        grad_u, grad_v = observed_gradient(U, V, *layout, coefficients)
        return i + 1, U - learning_rate * grad_u, V - learning_rate * grad_v

    _, U, V = tf.while_loop(lambda i, U, V: i < n_steps, body, [tf.constant(0), U, V],
                            parallel_iterations=1)
    return U, V


#: The loop, traced (and compiled) once per process and layout shape; each shape's program
#: stays in memory for the life of the process.
_DESCEND = {True: tf.function(_descend, jit_compile=True, autograph=False),
            False: tf.function(_descend, jit_compile=False, autograph=False)}
_GRADIENT = tf.function(observed_gradient, autograph=False)


def _eagerly(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` with TensorFlow executing eagerly: in a helper thread if the caller is
    building a graph (a ``Graph.as_default()`` block holds for its own thread only)."""
    if tf.executing_eagerly():
        return fn()
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn).result()


class FastDescent:
    """Full-batch gradient descent on an :class:`Objective`, many steps per call.

    Parameters
    ----------
    objective
        The objective to minimise.
    xla
        Compile the loop with XLA; ``False`` runs the same ops uncompiled (the fallback if
        compiling fails, much slower).

    The steps are those of the original's ``GradientDescentOptimizer`` on the same loss, up
    to float32 rounding; the same inputs give bitwise-identical outputs on one machine.
    """

    def __init__(self, objective: Objective, xla: bool = True) -> None:
        self.objective = objective
        self.xla = xla
        rows, cols = objective.indices[:, 0], objective.indices[:, 1]
        self.users = SlotLayout.build(rows, objective.n_users, BUCKET_COST_SLOTS)
        self.artists = SlotLayout.build(cols, objective.n_artists, BUCKET_COST_SLOTS)
        flat = self.users.flat_positions(objective.n_observed)
        n_slots = sum(block.size for block in self.users.slots)

        def pick(slots: np.ndarray, values: np.ndarray, padding: float) -> np.ndarray:
            return np.where(slots >= 0, values[np.maximum(slots, 0)], padding)

        self._layout = (
            tuple(pick(s, self.artists.position[cols], objective.n_artists).astype(np.int32)
                  for s in self.users.slots),
            tuple(pick(s, objective.values, 0.).astype(np.float32) for s in self.users.slots),
            tuple(pick(s, self.users.position[rows], objective.n_users).astype(np.int32)
                  for s in self.artists.slots),
            tuple(pick(s, flat, n_slots).astype(np.int32) for s in self.artists.slots))

    def _to_layout(self, U: np.ndarray, V: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        zero = np.zeros((1, U.shape[1]), dtype=U.dtype)
        return (np.concatenate([U[self.users.order], zero]),
                np.concatenate([V[self.artists.order], zero]))

    def _from_layout(self, U: Any, V: Any) -> tuple[np.ndarray, np.ndarray]:
        return (np.asarray(U)[self.users.position], np.asarray(V)[self.artists.position])

    def __call__(self, U: np.ndarray, V: np.ndarray, n_steps: int,
                 learning_rate: float) -> tuple[np.ndarray, np.ndarray]:
        """(U, V) after ``n_steps`` steps of size ``learning_rate``."""
        U_l, V_l = self._to_layout(U, V)
        coefficients = self.objective.coefficients(U.dtype)

        def run() -> tuple[Any, Any]:
            return _DESCEND[self.xla](U_l, V_l, self._layout, coefficients,
                                      tf.constant(n_steps, tf.int32),
                                      tf.constant(learning_rate, U.dtype))
        return self._from_layout(*_eagerly(run))

    def gradients(self, U: np.ndarray, V: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The gradient at (U, V) (:meth:`Objective.gradients`)."""
        U_l, V_l = self._to_layout(U, V)
        coefficients = self.objective.coefficients(U.dtype)

        def run() -> tuple[Any, Any]:
            return _GRADIENT(U_l, V_l, *self._layout, coefficients)
        return self._from_layout(*_eagerly(run))


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
