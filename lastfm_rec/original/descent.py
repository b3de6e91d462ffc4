"""Fast full-batch gradient descent on the objective of ``build_model``, compiled with numba.

Owns the default ``solver="sgd"`` path of :meth:`lastfm_rec.original.cfmodel.CFModel.train`:
:class:`Descent` keeps the embeddings in a layout made for the step and runs steps of
``U -= rate·dU, V -= rate·dV`` with the gradient of
:meth:`lastfm_rec.original.solvers.Objective.gradients`: the iterates of the original's
``GradientDescentOptimizer`` loop up to float32 rounding. This module imports numba;
:mod:`lastfm_rec.original.cfmodel` imports it only when the fast path runs.

Why this form (HetRec data, k = 10, one thread, 2,000 steps): a step is a sparse pass over
the ~74k training entries (residuals and both sparse-dense products) and a dense pass over
each factor (gravity, regularisation, update, the next Gram matrix). It costs about 0.6 ms
(sparse pass 0.35 ms, artist pass 0.22 ms, user pass 0.02 ms); the TensorFlow loop it
replaced (XLA-compiled residual) took about 1.6 ms. ``bench/bench_training.py`` times whole
runs.

* One pass, user by user, over the entries: each residual is used at once for the user's
  gradient and scattered into the artist's. Each row holds its embedding and its gradient
  side by side (``[V_j | dV_j]``, 80 bytes at k = 10) and artists are renumbered by
  decreasing number of entries, so the rows most entries touch share cache lines (in C on
  the real data: 1.0 ms with separate arrays in data order, 0.5 ms like this).
* A row is one SIMD vector of k float32 lanes (:class:`_Vector` and the ``_v*``
  intrinsics, LLVM vector code): numba does not vectorise loops over k = 10 (its SLP
  vectoriser is off, and loops over a constant k are unrolled into scalars first), and the
  scalar version of the same algorithm took 2.0–2.4 ms a step.
* k is a compile-time constant (one kernel per k, built by :func:`_kernels`), so the
  Gram accumulators and the update matrix stay in registers.
* Rounding follows the reference where it matters: each row's gradient is summed before
  it is subtracted from the row, and the Gram matrices are summed in float32 blocks added
  in float64 (see :func:`_flush_gram`). The notebook's losses after 2,000 steps agree with
  the reference loop's to within 1e-7.
* No fast-math: the fused multiply-adds are explicit and the only reassociated sum is the
  lane sum of a dot product, whose order is fixed when compiling. The same inputs give the
  same bytes in every run on one machine.

Costs: numba caches the compiled kernels next to this module (``cache=True``, or in
``NUMBA_CACHE_DIR``). Compiling them for a new k takes 2–7 s (a quiet or a busy machine);
a process that finds them in the cache loads them in about 0.5 s, on the first call.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, models, register_model

if TYPE_CHECKING:
    from lastfm_rec.original.solvers import Objective

__all__ = ["Descent"]

_F32 = ir.FloatType()
_LANE_TYPES = {types.float32: ir.FloatType(), types.float64: ir.DoubleType()}


class _Vector(types.Type):
    """A SIMD vector of ``n`` float32 or float64 lanes (one embedding row) in numba code."""

    def __init__(self, n: int, dtype: Any = types.float32) -> None:
        self.n = n
        self.dtype = dtype
        super().__init__(name=f"{dtype}x{n}")

    def llvm_type(self) -> ir.VectorType:
        return ir.VectorType(_LANE_TYPES[self.dtype], self.n)


@register_model(_Vector)
class _VectorModel(models.PrimitiveModel):
    def __init__(self, dmm: Any, fe_type: _Vector) -> None:
        super().__init__(dmm, fe_type, fe_type.llvm_type())


def _is_matrix(arr: Any) -> bool:
    """A C-contiguous 2-D float array: a row's lanes are consecutive in memory."""
    return (isinstance(arr, types.Array) and arr.dtype in _LANE_TYPES and arr.ndim == 2
            and arr.layout == "C")


def _row_pointer(context: Any, builder: Any, arrty: Any, arr: Any, row: Any, rowty: Any,
                 col: Any, colty: Any, n: int) -> Any:
    """Address of ``arr[row, col]`` as a pointer to ``n`` lanes."""
    ary = context.make_array(arrty)(context, builder, arr)
    indices = [context.cast(builder, row, rowty, types.intp),
               context.cast(builder, col, colty, types.intp)]
    ptr = cgutils.get_item_pointer2(
        context, builder, data=ary.data, shape=cgutils.unpack_tuple(builder, ary.shape),
        strides=cgutils.unpack_tuple(builder, ary.strides), layout=arrty.layout,
        inds=indices, wraparound=False)
    return builder.bitcast(ptr, _Vector(n, arrty.dtype).llvm_type().as_pointer())


def _splat(builder: Any, value: Any, n: int) -> Any:
    vector = builder.insert_element(ir.Constant(ir.VectorType(value.type, n), ir.Undefined),
                                    value, ir.Constant(ir.IntType(32), 0))
    return builder.shuffle_vector(vector, vector, ir.Constant(ir.VectorType(ir.IntType(32), n),
                                                              [0] * n))


@intrinsic
def _vload(typingctx: Any, arr: Any, row: Any, col: Any, n: Any) -> Any:
    """``arr[row, col:col + n]`` (``n`` a constant) as a vector; no bounds check."""
    if not _is_matrix(arr) or not isinstance(n, types.IntegerLiteral):
        return None
    width = n.literal_value

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        ptr = _row_pointer(context, builder, arr, args[0], args[1], row, args[2], col, width)
        return builder.load(ptr, align=4)
    return _Vector(width, arr.dtype)(arr, row, col, n), codegen


@intrinsic
def _vstore(typingctx: Any, arr: Any, row: Any, col: Any, vector: Any) -> Any:
    """``arr[row, col:col + n] = vector``; no bounds check."""
    if not _is_matrix(arr) or not isinstance(vector, _Vector) or vector.dtype != arr.dtype:
        return None

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        ptr = _row_pointer(context, builder, arr, args[0], args[1], row, args[2], col,
                           vector.n)
        builder.store(args[3], ptr, align=4)
        return context.get_dummy_value()
    return types.none(arr, row, col, vector), codegen


@intrinsic
def _vzero(typingctx: Any, n: Any) -> Any:
    """``n`` float32 zeros."""
    if not isinstance(n, types.IntegerLiteral):
        return None
    width = n.literal_value

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return ir.Constant(ir.VectorType(_F32, width), [0.0] * width)
    return _Vector(width)(n), codegen


@intrinsic
def _vaxpy(typingctx: Any, scale: Any, x: Any, y: Any) -> Any:
    """``scale·x + y`` lane by lane, one fused multiply-add each (``scale`` a scalar)."""
    if not isinstance(x, _Vector) or x != y or scale != x.dtype:
        return None

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        vty = x.llvm_type()
        suffix = "f32" if x.dtype == types.float32 else "f64"
        fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vty, [vty] * 3),
                                             f"llvm.fma.v{x.n}{suffix}")
        return builder.call(fma, [_splat(builder, args[0], x.n), args[1], args[2]])
    return x(scale, x, y), codegen


@intrinsic
def _vadd(typingctx: Any, x: Any, y: Any) -> Any:
    if not isinstance(x, _Vector) or x != y:
        return None

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.fadd(args[0], args[1])
    return x(x, y), codegen


@intrinsic
def _vdot(typingctx: Any, x: Any, y: Any) -> Any:
    """``Σ x·y`` over the lanes, summed as a tree (the order is fixed when compiling)."""
    if not isinstance(x, _Vector) or x != y or x.dtype != types.float32:
        return None

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        vty = x.llvm_type()
        reduce = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(_F32, [_F32, vty]),
            f"llvm.vector.reduce.fadd.v{x.n}f32")
        product = builder.fmul(args[0], args[1])
        return builder.call(reduce, [ir.Constant(_F32, -0.0), product],
                            fastmath=("reassoc", "nsz"))
    return types.float32(x, y), codegen


@intrinsic
def _vlane(typingctx: Any, x: Any, lane: Any) -> Any:
    if not isinstance(x, _Vector) or not isinstance(lane, types.Integer):
        return None

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.extract_element(args[0], args[1])
    return x.dtype(x, lane), codegen


@intrinsic
def _vwiden(typingctx: Any, x: Any) -> Any:
    """A float32 vector as float64 lanes (exact)."""
    if not isinstance(x, _Vector) or x.dtype != types.float32:
        return None
    wide = _Vector(x.n, types.float64)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.fpext(args[0], wide.llvm_type())
    return wide(x), codegen


def _stack(dtype: Any, size: Any) -> Any:
    if not isinstance(size, types.IntegerLiteral):
        return None

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        length = context.get_constant(types.intp, size.literal_value)
        return cgutils.alloca_once(builder, context.get_value_type(dtype), size=length)
    return types.CPointer(dtype)(size), codegen


@intrinsic
def _stack_f32(typingctx: Any, size: Any) -> Any:
    """A float32 buffer of ``size`` (a compile-time constant) on the caller's stack."""
    return _stack(types.float32, size)


@intrinsic
def _stack_f64(typingctx: Any, size: Any) -> Any:
    """A float64 buffer of ``size`` (a compile-time constant) on the caller's stack."""
    return _stack(types.float64, size)


_inline = numba.njit(inline="always", boundscheck=False)
#: Rows summed in float32 before their Gram matrix is added to the float64 total.
GRAM_BLOCK = 64


# The helpers below are inlined into the kernels of _kernels before typing, so ``K`` is the
# kernel's compile-time constant in them.
@_inline
def _step_matrix(gram: Any, c_reg: Any, c_grav: Any, step: Any, K: Any) -> None:
    # c_reg·I + c_grav·Gram: the regularisation and gravity part of the gradient is X·step.
    for e in range(K):
        for f in range(K):
            step[e, f] = c_grav * gram[e, f]
        step[e, e] += c_reg


@_inline
def _sparse_pass(indptr: Any, cols: Any, vals: Any, UG: Any, W: Any, c_obs: Any,
                 K: Any) -> None:
    # UG[i, K:] = c_obs·(R V)_i and W[j, K:] += c_obs·(Rᵀ U)_j, R the residual on Ω.
    for i in range(UG.shape[0]):
        u = _vload(UG, i, 0, K)
        grad = _vzero(K)
        for p in range(indptr[i], indptr[i + 1]):
            j = cols[p]
            v = _vload(W, j, 0, K)
            r = (vals[p] - _vdot(u, v)) * c_obs
            grad = _vaxpy(r, v, grad)
            _vstore(W, j, K, _vaxpy(r, u, _vload(W, j, K, K)))
        _vstore(UG, i, K, grad)


@_inline
def _add_outer(x: Any, acc: Any, K: Any) -> None:
    # acc += x xᵀ
    for a in range(K):
        _vstore(acc, a, 0, _vaxpy(_vlane(x, a), x, _vload(acc, a, 0, K)))


@_inline
def _flush_gram(block: Any, total: Any, K: Any) -> None:
    # total += block in float64; block = 0. Summed in float32 over all 17,632 artists, the
    # Gram's rounding moved the final gravity loss 2e-6 (relative) away from the reference's;
    # float64 accumulators on every row took twice as long (they do not fit in registers);
    # float32 blocks of 64 rows give the reference's losses to 1e-7 at a 5% cost.
    for a in range(K):
        _vstore(total, a, 0, _vadd(_vload(total, a, 0, K), _vwiden(_vload(block, a, 0, K))))
        _vstore(block, a, 0, _vzero(K))


@_inline
def _start_gram(block: Any, total: Any, K: Any) -> None:
    for a in range(K):
        _vstore(block, a, 0, _vzero(K))
        _vstore(total, a, 0, _vwiden(_vzero(K)))


@_inline
def _round_gram(total: Any, gram: Any, K: Any) -> None:
    for a in range(K):
        for c in range(K):
            gram[a, c] = np.float32(total[a, c])


@_inline
def _dense_pass(X: Any, step: Any, rate: Any, gram: Any, block: Any, total: Any,
                K: Any) -> None:
    # X[:, :K] -= rate·(X[:, K:] + X[:, :K]·step); clear X[:, K:]; the Gram of the new X.
    _start_gram(block, total, K)
    for start in range(0, X.shape[0], GRAM_BLOCK):
        for row in range(start, min(start + GRAM_BLOCK, X.shape[0])):
            x = _vload(X, row, 0, K)
            # The whole gradient first, then one rounding at X's scale, as the reference
            # does; in two chains of fused multiply-adds instead of one k long, for speed.
            grad = _vload(X, row, K, K)
            other = _vzero(K)
            for e in range(0, K - 1, 2):
                grad = _vaxpy(_vlane(x, e), _vload(step, e, 0, K), grad)
                other = _vaxpy(_vlane(x, e + 1), _vload(step, e + 1, 0, K), other)
            if K % 2:
                grad = _vaxpy(_vlane(x, K - 1), _vload(step, K - 1, 0, K), grad)
            out = _vaxpy(-rate, _vadd(grad, other), x)
            _vstore(X, row, 0, out)
            _vstore(X, row, K, _vzero(K))
            _add_outer(out, block, K)
        _flush_gram(block, total, K)
    _round_gram(total, gram, K)


@_inline
def _gram_of(X: Any, gram: Any, block: Any, total: Any, K: Any) -> None:
    # Summed exactly as _dense_pass sums the Gram of its result.
    _start_gram(block, total, K)
    for start in range(0, X.shape[0], GRAM_BLOCK):
        for row in range(start, min(start + GRAM_BLOCK, X.shape[0])):
            _add_outer(_vload(X, row, 0, K), block, K)
        _flush_gram(block, total, K)
    _round_gram(total, gram, K)


@cache
def _kernels(k: int) -> tuple[Any, Any]:
    """``(descend, grams)`` compiled for embedding dimension ``k``, or loaded from numba's
    cache. They close over ints only: a closure over compiled functions gets a new cache
    key in every process."""
    K = int(k)
    KK = K * K  # a constant, so that the stack buffers are sized when compiling
    jit = numba.njit(cache=True, boundscheck=False, nogil=True)

    @jit
    def descend(indptr: Any, cols: Any, vals: Any, UG: Any, W: Any, gram_u: Any,
                gram_v: Any, n_steps: int, rate: Any, c_obs: Any, c_reg_u: Any,
                c_reg_v: Any, c_grav: Any) -> None:
        step_u = numba.carray(_stack_f32(KK), (K, K))
        step_v = numba.carray(_stack_f32(KK), (K, K))
        block = numba.carray(_stack_f32(KK), (K, K))
        total = numba.carray(_stack_f64(KK), (K, K))
        for _ in range(n_steps):
            # Both halves use the Gram matrices of the current U and V.
            _step_matrix(gram_v, c_reg_u, c_grav, step_u, K)
            _step_matrix(gram_u, c_reg_v, c_grav, step_v, K)
            _sparse_pass(indptr, cols, vals, UG, W, c_obs, K)
            _dense_pass(UG, step_u, rate, gram_u, block, total, K)
            _dense_pass(W, step_v, rate, gram_v, block, total, K)

    @jit
    def grams(UG: Any, W: Any, gram_u: Any, gram_v: Any) -> None:
        block = numba.carray(_stack_f32(KK), (K, K))
        total = numba.carray(_stack_f64(KK), (K, K))
        _gram_of(UG, gram_u, block, total, K)
        _gram_of(W, gram_v, block, total, K)

    return descend, grams


class Descent:
    """Gradient descent on one objective, with its state in numpy arrays.

    Parameters
    ----------
    objective
        Training entries, N, M, λ_r and λ_g.
    U, V
        Starting embeddings, (N, k) and (M, k) (copied, as float32).

    Notes
    -----
    The state is ``[U | dU]`` and ``[V | dV]``, artists renumbered by decreasing number of
    entries, and the Gram matrices of U and V that the next step needs; so ``run(a)`` then
    ``run(b)`` gives the same bytes as ``run(a + b)``. :meth:`embeddings` returns U and V in
    the objective's order.
    """

    def __init__(self, objective: Objective, U: np.ndarray, V: np.ndarray) -> None:
        n, m = objective.n_users, objective.n_artists
        k = U.shape[1] if U.ndim == 2 else 0
        if k < 1 or U.shape != (n, k) or V.shape != (m, k):
            raise ValueError(f"embeddings must be ({n}, k) and ({m}, k) with k >= 1, got "
                             f"{U.shape} and {V.shape}")
        users, artists = objective.indices[:, 0], objective.indices[:, 1]
        self._order = np.argsort(-np.bincount(artists, minlength=m), kind="stable")
        rank = np.empty(m, np.int64)
        rank[self._order] = np.arange(m)
        ranked = rank[artists]
        # Each user's entries in artist-rank order: the pass walks W forwards.
        by_user = np.lexsort((ranked, users))
        self._indptr = np.zeros(n + 1, np.int64)
        np.cumsum(np.bincount(users, minlength=n), out=self._indptr[1:])
        self._cols = ranked[by_user].astype(np.uint32)
        self._vals = np.ascontiguousarray(objective.values[by_user], dtype=np.float32)
        self._UG = np.zeros((n, 2 * k), np.float32)
        self._W = np.zeros((m, 2 * k), np.float32)
        self._UG[:, :k] = U
        self._W[:, :k] = V[self._order]
        self._gram_u = np.zeros((k, k), np.float32)
        self._gram_v = np.zeros((k, k), np.float32)
        self._k = k
        f32 = np.float32
        self._coefficients = (
            f32(-2.0 / objective.n_observed),
            f32(2.0 * objective.regularization_coeff / n),
            f32(2.0 * objective.regularization_coeff / m),
            f32(2.0 * objective.gravity_coeff / (n * m)))
        _, grams = _kernels(k)
        grams(self._UG, self._W, self._gram_u, self._gram_v)

    def run(self, n_steps: int, learning_rate: float) -> None:
        """Apply ``n_steps`` gradient-descent steps of size ``learning_rate``."""
        if n_steps < 0:
            raise ValueError("n_steps must be >= 0")
        descend, _ = _kernels(self._k)
        descend(self._indptr, self._cols, self._vals, self._UG, self._W, self._gram_u,
                self._gram_v, int(n_steps), np.float32(learning_rate), *self._coefficients)

    def embeddings(self) -> tuple[np.ndarray, np.ndarray]:
        """Copies of ``(U, V)``, float32, in the objective's user and artist order."""
        k = self._k
        V = np.empty((len(self._order), k), np.float32)
        V[self._order] = self._W[:, :k]
        return self._UG[:, :k].copy(), V
