"""The collaborative-filtering model: a TensorFlow 1-style matrix factorisation.

Owns the original notebook's section 2 model and everything needed to train it fast and
reproducibly: the sparse rating tensor (:func:`build_rating_sparse_tensor`), the objective's
terms (:func:`sparse_mean_square_error`, :func:`regularization`, :func:`gravity`), the model
factory (:func:`build_model`) and :class:`CFModel` (session, training loop, history), with
save/load of trained embeddings as plain functions (:func:`save_model`, :func:`load_model`).
The solvers live in :mod:`lastfm_rec.original.solvers` and
:mod:`lastfm_rec.original.descent`, the history plot in
:func:`lastfm_rec.reports.plot_history`. TensorFlow is imported through
:mod:`lastfm_rec.original.tfcompat` by this module and the solvers only.

The objective, for ratings ``A`` observed on the training entries ``Ω``, user embeddings
``U`` (N×k) and artist embeddings ``V`` (M×k)::

    1/|Ω| Σ_Ω (A_ij - <U_i, V_j>)²  +  λ_r (ΣU²/N + ΣV²/M)  +  λ_g/(NM) Σ (UᵀU ∘ VᵀV)

Solvers (``CFModel.train``):

* ``solver="sgd"``, ``optimizer=None`` (the default): full-batch gradient descent, the
  original's ``GradientDescentOptimizer`` steps, with the gradient derived by hand
  (``dU = -2/|Ω| R V + 2λ_r/N U + 2λ_g/(NM) U VᵀV``, ``R`` the sparse residual) and run by
  a numba kernel (:mod:`lastfm_rec.original.descent`) between two recorded iterations; the
  embeddings go back into the TensorFlow variables before each evaluation. Same iterates as
  the original's loop up to float32 rounding, about 15x faster on the real data
  (``bench/bench_training.py``). numba is imported, and the kernel compiled or loaded from
  numba's cache, the first time this path runs in a process.
* ``solver="sgd"`` with an ``optimizer`` (any ``tf.compat.v1.train.Optimizer`` class or
  instance): the original's per-step loop (``opt.minimize`` on the loss, one
  ``Session.run`` per step), metrics fetched only on recorded iterations.
* ``solver="als"``: closed-form alternating least squares on the same objective, gravity
  included (numpy/scipy, batched k×k solves); ``num_iterations`` counts sweeps.

Reproducibility: every model has its own ``tf.Graph`` with a graph-level seed and explicit
op seeds, and its own single-threaded ``Session``; the train/test split is seeded. The same
seed and data give bitwise-identical embeddings, in one process and across processes, on the
same machine and TensorFlow and numba builds (checked by ``tests/test_cfmodel.py``). Importing this
module (through :mod:`lastfm_rec.original.tfcompat`) sets ``TF_ENABLE_ONEDNN_OPTS=0`` and
``TF_CPP_MIN_LOG_LEVEL=1`` unless they are already set (they only take effect if TensorFlow
was not imported before), so results do not
depend on oneDNN's CPU-specific kernels. ``tf.config.experimental.enable_op_determinism`` is
not called: it is process-wide, and single-threaded CPU kernels already gave identical bytes
with and without it.

Caching: :meth:`CFModel.save` writes embeddings, hyperparameters and history to one model
file (:mod:`lastfm_rec.files`: an ``.npz`` without pickles, with a versioned manifest).
``CFModel.load(path)`` returns a model that can recommend but not train;
``CFModel.load(path, ratings)`` rebuilds the graph (same seeded split, checked against a
fingerprint of the ratings) and continues training exactly where the saved model stopped.

Deviations from the original (defects not copied): the original ran ``num_iterations + 1``
optimiser steps and reported metrics one step behind the returned embeddings; here
``train(n)`` applies exactly ``n`` steps and the metrics of iteration ``i`` describe the
embeddings after ``i`` steps. The split is seeded, the sparse tensors are in canonical order,
``n_users``/``n_artists`` are arguments instead of notebook globals, and the test error of an
empty test set is NaN (the original's ``tf.losses.mean_squared_error`` returned 0).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from lastfm_rec.data.preprocessing import split_dataframe
from lastfm_rec.files import ModelFile, ModelFileError, read_model_file, write_model_file
from lastfm_rec.original.solvers import Objective, als_sweeps, per_step_train_op
from lastfm_rec.original.tfcompat import tf

__all__ = [
    "LOSS_COMPONENTS",
    "LOSS_NAMES",
    "METRIC_NAMES",
    "ORIGINAL_ITERATIONS",
    "ORIGINAL_MODELS",
    "CFModel",
    "Objective",
    "build_model",
    "build_rating_sparse_tensor",
    "gravity",
    "load_model",
    "regularization",
    "save_model",
    "sparse_mean_square_error",
]

#: Keys of the two metric dicts, in the original's order.
LOSS_NAMES = ("train_error_observed", "test_error_observed")
LOSS_COMPONENTS = ("observed_loss", "regularization_loss", "gravity_loss")
#: Columns of ``CFModel.history`` after ``iteration``.
METRIC_NAMES = (*LOSS_NAMES, *LOSS_COMPONENTS, "total_loss")

#: Threads of every model's Session: 1 keeps kernels' summation order fixed.
SESSION_THREADS = 1
#: Metrics are recorded at iteration 0, every this many gradient steps, and at the end.
RECORD_EVERY_SGD = 100
#: ALS sweeps are few and expensive: record every one.
RECORD_EVERY_ALS = 1
#: ``train()`` defaults: gradient steps for "sgd", sweeps for "als".
DEFAULT_ITERATIONS = {"sgd": 100, "als": 15}
SOLVERS = ("sgd", "als")

#: The original notebook's two models, trained for :data:`ORIGINAL_ITERATIONS` steps at
#: learning rate 1. The export cuts both ``build_model`` calls off after ``gravity``, so
#: ``gravity_coeff`` and ``init_stddev`` were read back from the printed losses: ``model0``
#: printed observed 0.3586 (test 1.216) with gravity_loss 0.0, and ``model`` printed observed
#: 0.0447, regularisation 1.708, gravity 0.0662, test 0.0893 (total 1.819). With seed 42 these
#: arguments give 0.3570 (test 1.180) and 0.0448, 1.697, 0.0658, test 0.0905 (total 1.808);
#: gravity_coeff=1.0 would give gravity 0.019 and observed 0.021 (total 1.699), and
#: init_stddev=0.5 gives observed 0.139 for ``model0``.
ORIGINAL_MODELS: dict[str, dict[str, float]] = {
    "model0": {"embedding_dim": 10, "regularization_coeff": 0.0, "gravity_coeff": 0.0,
               "init_stddev": 1.0},
    "model": {"embedding_dim": 10, "regularization_coeff": 0.2, "gravity_coeff": 0.5,
              "init_stddev": 1.0},
}
ORIGINAL_ITERATIONS = 2000


def _ids_and_values(ratings: pd.DataFrame, n_users: int,
                    n_artists: int) -> tuple[np.ndarray, np.ndarray]:
    """Ratings as canonical-order (row-major sorted) int64 indices and float32 values."""
    missing = {"u_id", "a_id", "w_mm"} - set(ratings.columns)
    if missing:
        raise ValueError(f"ratings need columns u_id, a_id, w_mm; missing {sorted(missing)}")
    indices = ratings[["u_id", "a_id"]].to_numpy(dtype=np.int64).reshape(-1, 2)
    values = ratings["w_mm"].to_numpy(dtype=np.float32).reshape(-1)
    if indices.size:
        if indices.min() < 0 or indices[:, 0].max() >= n_users or \
                indices[:, 1].max() >= n_artists:
            raise ValueError(f"u_id must be in [0, {n_users}) and a_id in [0, {n_artists})")
        if not np.all(np.isfinite(values)):
            raise ValueError("w_mm has missing or infinite values")
    order = np.lexsort((indices[:, 1], indices[:, 0]))
    indices, values = indices[order], values[order]
    if len(indices) > 1 and np.any(np.all(indices[1:] == indices[:-1], axis=1)):
        raise ValueError("ratings hold the same (u_id, a_id) pair more than once")
    return indices, values


def build_rating_sparse_tensor(ratings: pd.DataFrame, n_users: int,
                               n_artists: int) -> tf.SparseTensor:
    """The N×M sparse rating matrix of ``w_mm``, indices in canonical (row-major) order.

    Parameters
    ----------
    ratings
        Rows with integer ``u_id`` (0..N-1), ``a_id`` (0..M-1) and float ``w_mm``; each
        (u_id, a_id) pair at most once.
    n_users, n_artists
        The dense shape ``[N, M]``.

    Returns
    -------
    tf.SparseTensor
        float32 values; created in the current default graph (or eagerly outside one).
    """
    indices, values = _ids_and_values(ratings, n_users, n_artists)
    return tf.SparseTensor(indices=indices, values=values, dense_shape=[n_users, n_artists])


def sparse_mean_square_error(sparse_ratings: tf.SparseTensor, user_embeddings: Any,
                             artist_embeddings: Any) -> tf.Tensor:
    """Mean squared error between the observed ratings and ``<U_i, V_j>``.

    ``1/|Ω| Σ_{(i,j)∈Ω} (A_ij - <U_i, V_j>)²`` over the entries ``Ω`` of ``sparse_ratings``;
    NaN if there are none (the original's ``tf.losses.mean_squared_error`` gave 0).
    """
    predictions = tf.reduce_sum(
        tf.gather(user_embeddings, sparse_ratings.indices[:, 0])
        * tf.gather(artist_embeddings, sparse_ratings.indices[:, 1]),
        axis=1)
    return tf.reduce_mean(tf.squared_difference(sparse_ratings.values, predictions))


def _n_rows(x: tf.Tensor) -> Any:
    """Number of rows, as a Python int when static, else as a float32 tensor."""
    rows = x.shape[0]
    rows = getattr(rows, "value", rows)  # a Dimension in TF1 behaviour, an int in TF2
    return int(rows) if rows is not None else tf.cast(tf.shape(x)[0], x.dtype)


def gravity(U: Any, V: Any) -> tf.Tensor:
    """Gravity: ``1/(NM) Σ (UᵀU ∘ VᵀV)``, the mean squared prediction over all N×M pairs."""
    U = tf.convert_to_tensor(U)
    V = tf.convert_to_tensor(V)
    return 1. / (_n_rows(U) * _n_rows(V)) * tf.reduce_sum(
        tf.matmul(U, U, transpose_a=True) * tf.matmul(V, V, transpose_a=True))


def regularization(U: Any, V: Any) -> tf.Tensor:
    """L2 regularisation (without its coefficient): ``ΣU²/N + ΣV²/M``."""
    U = tf.convert_to_tensor(U)
    V = tf.convert_to_tensor(V)
    return tf.reduce_sum(U * U) / _n_rows(U) + tf.reduce_sum(V * V) / _n_rows(V)


class CFModel:
    """A collaborative-filtering model: embedding variables, a loss and metrics to train.

    Parameters
    ----------
    embedding_vars
        ``{"u_id": U, "a_id": V}``: ``tf.Variable`` s of one graph.
    loss
        The scalar loss tensor to minimise (same graph).
    metrics
        Optional list of dicts of scalar tensors, recorded during training; the models of
        :func:`build_model` have the original's two: ``{train_error_observed,
        test_error_observed}`` and ``{observed_loss, regularization_loss, gravity_loss}``.
    objective
        The :class:`Objective` behind ``loss``. Needed by the fast gradient path and by ALS;
        without it ``train`` uses the per-step optimiser loop.
    solver
        ``"sgd"`` (gradient steps) or ``"als"`` (alternating least squares sweeps).
    hyperparameters
        What :func:`build_model` was called with (saved with the model).

    Attributes
    ----------
    history : pandas.DataFrame
        One row per recorded iteration: ``iteration`` and the columns of
        :data:`METRIC_NAMES`.
    iteration : int
        Gradient steps (or ALS sweeps) applied so far.
    train_ratings, test_ratings : pandas.DataFrame or None
        The split used, for models made by :func:`build_model`.
    """

    def __init__(self, embedding_vars: Mapping[str, Any], loss: Any,
                 metrics: Sequence[Mapping[str, Any]] | None = None, *,
                 objective: Objective | None = None, solver: str = "sgd",
                 hyperparameters: Mapping[str, Any] | None = None) -> None:
        if solver not in SOLVERS:
            raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}")
        if solver == "als" and objective is None:
            raise ValueError("solver='als' needs the model's Objective (use build_model)")
        self._embedding_vars = dict(embedding_vars)
        self._loss = loss
        self._metrics = [dict(m) for m in metrics] if metrics else []
        self._embeddings: dict[str, np.ndarray | None] = {k: None for k in embedding_vars}
        self._session: tf.Session | None = None
        self._objective = objective
        self._assign_ops: tuple[dict[str, Any], Any] | None = None
        self.solver = solver
        self.hyperparameters: dict[str, Any] = dict(hyperparameters or {})
        self.iteration = 0
        self._history_rows: list[dict[str, float]] = []
        self._last_results: list[dict[str, float]] = []
        self.train_ratings: pd.DataFrame | None = None
        self.test_ratings: pd.DataFrame | None = None

    # ------------------------------------------------------------------ state
    @property
    def embeddings(self) -> dict[str, np.ndarray | None]:
        """``{"u_id": (N, k) array, "a_id": (M, k) array}``; ``None`` before training."""
        return self._embeddings

    @property
    def history(self) -> pd.DataFrame:
        """Recorded metrics: ``iteration`` plus one column per metric and ``total_loss``."""
        columns = ["iteration", *self._metric_names(), "total_loss"]
        frame = pd.DataFrame(self._history_rows, columns=columns)
        return frame.astype({"iteration": np.int64})

    @property
    def graph(self) -> tf.Graph | None:
        return None if self._loss is None else self._loss.graph

    @property
    def loss(self) -> tf.Tensor | None:
        """The scalar loss tensor that training minimises; ``None`` for a model loaded
        without ratings."""
        return self._loss

    @property
    def metrics(self) -> list[dict[str, Any]]:
        """The metric tensors recorded in :attr:`history`, one dict per group (for
        :func:`build_model`'s models: the original's two groups)."""
        return [dict(group) for group in self._metrics]

    def _metric_names(self) -> list[str]:
        names: list[str] = []
        for group in self._metrics:
            names.extend(k for k in group if k not in names)
        return names

    def session(self) -> tf.Session:
        """The model's TensorFlow session, opened on first use (variables initialised, or
        set to the trained embeddings after :meth:`close`).

        Raises
        ------
        RuntimeError
            The model was loaded without ratings, so it has no graph.
        """
        if self._loss is None:
            raise RuntimeError(
                "this model was loaded without ratings, so it has embeddings but no graph to "
                "train; load it with CFModel.load(path, ratings=...) to train it further")
        if self._session is None:
            config = tf.ConfigProto(intra_op_parallelism_threads=SESSION_THREADS,
                                    inter_op_parallelism_threads=SESSION_THREADS,
                                    use_per_session_threads=True)
            self._session = tf.Session(graph=self.graph, config=config)
            with self.graph.as_default():
                self._session.run(tf.global_variables_initializer())
                self._session.run(tf.tables_initializer())
            if all(v is not None for v in self._embeddings.values()):
                # Reopened after close(): continue from the trained embeddings.
                self._assign_embeddings(self._embeddings)
        return self._session

    def close(self) -> None:
        """Release the TensorFlow session; embeddings and history stay, and a later
        ``train`` opens a new session that continues from the embeddings."""
        if self._session is not None:
            self._session.close()
            self._session = None

    def _read_embeddings(self) -> None:
        values = self._session.run(self._embedding_vars)
        self._embeddings = {k: np.asarray(v) for k, v in values.items()}

    def _assign_embeddings(self, values: Mapping[str, np.ndarray]) -> None:
        """Write arrays into the embedding variables (used by ALS and by ``load``)."""
        session = self.session()
        if self._assign_ops is None:
            with self.graph.as_default():
                feeds = {k: tf.placeholder(v.dtype.base_dtype, v.shape, name=f"assign_{k}")
                         for k, v in self._embedding_vars.items()}
                op = tf.group(*[v.assign(feeds[k]) for k, v in self._embedding_vars.items()])
            self._assign_ops = (feeds, op)
        feeds, op = self._assign_ops
        session.run(op, {feeds[k]: np.asarray(v) for k, v in values.items()})

    # --------------------------------------------------------------- metrics
    def _evaluate(self) -> list[dict[str, float]]:
        values = self._session.run((self._metrics, self._loss))
        groups, total = values
        results = [{k: float(v) for k, v in group.items()} for group in groups]
        row: dict[str, float] = {"iteration": self.iteration}
        for group in results:
            row.update(group)
        row["total_loss"] = float(total)
        if self._history_rows and self._history_rows[-1]["iteration"] == self.iteration:
            self._history_rows[-1] = row
        else:
            self._history_rows.append(row)
        self._last_results = results
        return results

    def _postfix(self) -> dict[str, str]:
        """The last recorded losses, short names, for the progress bar."""
        short = {"observed_loss": "obs", "regularization_loss": "reg", "gravity_loss": "grav",
                 "total_loss": "total", "test_error_observed": "test"}
        row = self._history_rows[-1]
        names = [n for n in short if n in row] or [n for n in row if n != "iteration"]
        return {short.get(n, n): f"{row[n]:.4g}" for n in names}

    # ------------------------------------------------------------------ train
    def train(self, num_iterations: int | None = None, learning_rate: float = 1.0,
              plot_results: bool = True, optimizer: Any = None, *,
              fast: bool | None = None, show_progress: bool = True) -> list[dict[str, float]]:
        """Train the embeddings, continuing from where the last call stopped.

        Parameters
        ----------
        num_iterations
            Gradient steps (``solver="sgd"``; default 100) or ALS sweeps
            (``solver="als"``; default 15).
        learning_rate
            Step size of the gradient solvers (ignored by ALS).
        plot_results
            Draw the recorded history with matplotlib, one subplot per metrics dict.
        optimizer
            ``None``: gradient descent on the fast compiled path. Otherwise a
            ``tf.compat.v1.train.Optimizer`` class (called with ``learning_rate``) or
            instance, run by the original's per-step loop.
        fast
            Force (``True``) or refuse (``False``) the fast gradient path; ``None`` picks it
            whenever ``optimizer`` is ``None`` and the model has an :class:`Objective`.
            ``fast=False`` without an optimizer runs the per-step loop with
            ``GradientDescentOptimizer`` (the reference).
        show_progress
            Show a tqdm bar with the loss terms.

        Returns
        -------
        list of dict
            The metrics at the last iteration in the original's shape, plain floats:
            ``[{train_error_observed, test_error_observed},
            {observed_loss, regularization_loss, gravity_loss}]``.

        Metrics are recorded in :attr:`history` at the first iteration of the model, at
        every multiple of 100 steps (every ALS sweep) and at the last iteration.
        """
        if num_iterations is None:
            num_iterations = DEFAULT_ITERATIONS[self.solver]
        if num_iterations < 0:
            raise ValueError("num_iterations must be >= 0")
        self.session()
        if self.solver == "als":
            if optimizer is not None or fast:
                raise ValueError("solver='als' takes no optimizer and has no fast option")
            step, record_every = self._als_runner(), RECORD_EVERY_ALS
        else:
            use_fast = fast if fast is not None else (
                optimizer is None and self._objective is not None)
            if use_fast and (optimizer is not None or self._objective is None):
                raise ValueError("the fast path is plain gradient descent on a model made by "
                                 "build_model; it takes no optimizer")
            step = (self._fast_runner(learning_rate) if use_fast
                    else self._per_step_runner(optimizer, learning_rate))
            record_every = RECORD_EVERY_SGD

        with self.graph.as_default():
            if not self._history_rows or self._history_rows[-1]["iteration"] != self.iteration:
                results = self._evaluate()
            else:
                results = self._last_results
            end = self.iteration + num_iterations
            bar = tqdm(total=num_iterations, disable=not show_progress, leave=True,
                       unit="sweep" if self.solver == "als" else "step")
            bar.set_postfix(self._postfix())
            try:
                while self.iteration < end:
                    target = min((self.iteration // record_every + 1) * record_every, end)
                    step(target - self.iteration)
                    bar.update(target - self.iteration)
                    self.iteration = target
                    results = self._evaluate()
                    bar.set_postfix(self._postfix())
            finally:
                bar.close()
            self._read_embeddings()
        if plot_results:
            self.plot()
        return [dict(group) for group in results]

    def _fast_runner(self, learning_rate: float) -> Callable[[int], None]:
        """Run n gradient-descent steps in the compiled kernel
        (:class:`~lastfm_rec.original.descent.Descent`), starting from the variables' values,
        and write the embeddings back into the variables (the metrics read them)."""
        from lastfm_rec.original.descent import Descent

        values = self._session.run(self._embedding_vars)
        descent = Descent(self._objective, values["u_id"], values["a_id"])

        def run(n: int) -> None:
            descent.run(n, learning_rate)
            U, V = descent.embeddings()
            self._assign_embeddings({"u_id": U, "a_id": V})
        return run

    def _per_step_runner(self, optimizer: Any, learning_rate: float) -> Callable[[int], None]:
        """The original's loop (:func:`~lastfm_rec.original.solvers.per_step_train_op`)."""
        train_op = per_step_train_op(self._session, self._loss, self._embedding_vars,
                                     optimizer, learning_rate)

        def run(n: int) -> None:
            for _ in range(n):
                self._session.run(train_op)
        return run

    def _als_runner(self) -> Callable[[int], None]:
        """Run n ALS sweeps (:func:`~lastfm_rec.original.solvers.als_sweeps`) and store the
        result."""
        sweep = als_sweeps(self._objective)

        def run(sweeps: int) -> None:
            values = self._session.run(self._embedding_vars)
            dtype = values["u_id"].dtype
            U, V = sweep(values["u_id"].astype(np.float64), values["a_id"].astype(np.float64),
                         sweeps)
            self._assign_embeddings({"u_id": U.astype(dtype), "a_id": V.astype(dtype)})
        return run

    # ------------------------------------------------------------------- plot
    def plot(self) -> None:
        """Plot the recorded history: one subplot per metrics dict, like the original
        (:func:`lastfm_rec.reports.plot_history`)."""
        from lastfm_rec.reports import plot_history

        plot_history(self.history, [list(g) for g in self._metrics] or [["total_loss"]],
                     "ALS sweep" if self.solver == "als" else "iteration")

    # -------------------------------------------------------------- save/load
    def save(self, path: str | os.PathLike) -> Path:
        """:func:`save_model` of this model; returns the path written."""
        return save_model(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike, ratings: pd.DataFrame | None = None) -> CFModel:
        """:func:`load_model`."""
        return load_model(path, ratings)


def save_model(model: CFModel, path: str | os.PathLike) -> Path:
    """Save a model's embeddings, hyperparameters and history as a model file
    (:mod:`lastfm_rec.files`), atomically.

    Returns the path written (``.npz`` is appended if it is missing).
    """
    if any(v is None for v in model.embeddings.values()):
        if model._session is None:
            raise RuntimeError("nothing to save: the model has not been trained")
        model._read_embeddings()
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    history = model.history
    meta = {"solver": model.solver, "iteration": model.iteration,
            "metric_groups": [list(g) for g in model._metrics]}
    arrays = {f"embedding_{k}": v for k, v in model.embeddings.items()}
    arrays.update({f"history_{c}": history[c].to_numpy() for c in history.columns})
    write_model_file(path, ModelFile(CFModel.__name__, model.hyperparameters, arrays, meta))
    return path


def load_model(path: str | os.PathLike, ratings: pd.DataFrame | None = None) -> CFModel:
    """Load a model written by :func:`save_model`.

    Without ``ratings`` the model has its embeddings, hyperparameters and history but no
    graph: it can recommend, and ``train`` raises a clear error. With the ``ratings`` it
    was built from, the graph is rebuilt with :func:`build_model` (same split), the
    embeddings are restored, and training continues where it stopped; ratings that do
    not match the saved fingerprint raise ``ValueError``. A file that is damaged, of
    another format or version, or holds another model raises
    :class:`lastfm_rec.files.ModelFileError`.
    """
    content = read_model_file(path)
    if content.model != CFModel.__name__:
        raise ModelFileError(content.source, f"holds a {content.model}, not a CFModel",
                             f"load it with {content.model}.load")
    embeddings = {k[len("embedding_"):]: v for k, v in content.arrays.items()
                  if k.startswith("embedding_")}
    history = {k[len("history_"):]: v for k, v in content.arrays.items()
               if k.startswith("history_")}
    hp, meta = content.params, content.meta
    if ratings is None:
        model = CFModel({k: None for k in embeddings}, None, None, hyperparameters=hp)
        model.solver = meta["solver"]
        model._metrics = [{k: None for k in g} for g in meta["metric_groups"]]
    else:
        if hp.get("data_fingerprint") not in (None, _fingerprint(ratings)):
            raise ValueError(f"{path}: the ratings differ from the ones the model was "
                             "trained on")
        build_args = {k: hp[k] for k in _BUILD_ARGS if k in hp}
        model = build_model(ratings, solver=meta["solver"], **build_args)
        model._assign_embeddings(embeddings)
    model._embeddings = {k: np.asarray(v) for k, v in embeddings.items()}
    model.iteration = int(meta["iteration"])
    model._history_rows = [
        {c: (int(history[c][i]) if c == "iteration" else float(history[c][i]))
         for c in history}
        for i in range(len(history.get("iteration", [])))]
    if model._history_rows:
        last = model._history_rows[-1]
        model._last_results = [{k: last[k] for k in g} for g in meta["metric_groups"]]
    return model


_BUILD_ARGS = ("embedding_dim", "regularization_coeff", "gravity_coeff", "init_stddev",
               "holdout_fraction", "seed", "n_users", "n_artists")


def _fingerprint(ratings: pd.DataFrame) -> str:
    """SHA-256 of the index and (u_id, a_id, w_mm) rows: the split depends on both."""
    rows = pd.util.hash_pandas_object(ratings[["u_id", "a_id", "w_mm"]], index=True)
    return hashlib.sha256(rows.to_numpy().tobytes()).hexdigest()


def build_model(ratings: pd.DataFrame, embedding_dim: int = 3,
                regularization_coeff: float = 1., gravity_coeff: float = 0.,
                init_stddev: float = 1., holdout_fraction: float = 0.1, seed: int = 42,
                n_users: int | None = None, n_artists: int | None = None,
                solver: str = "sgd") -> CFModel:
    """Build the matrix-factorisation model of the original notebook, in its own graph.

    Parameters
    ----------
    ratings
        Rows with ``u_id``, ``a_id`` and ``w_mm`` (see :func:`build_rating_sparse_tensor`).
    embedding_dim
        k, the embedding dimension.
    regularization_coeff, gravity_coeff
        λ_r and λ_g of the objective (module docstring).
    init_stddev
        Standard deviation of the normal initial embeddings.
    holdout_fraction
        Fraction of rows held out as the test set (``split_dataframe``); 0 keeps every row
        for training and reports the test error as NaN.
    seed
        Seeds the split, the graph and the initial embeddings.
    n_users, n_artists
        N and M; default to the largest id + 1.
    solver
        ``"sgd"`` or ``"als"`` (see :meth:`CFModel.train`).

    Returns
    -------
    CFModel
        Untrained; ``model.hyperparameters`` records these arguments.
    """
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}")
    if embedding_dim < 1:
        raise ValueError("embedding_dim must be >= 1")
    if len(ratings) == 0:
        raise ValueError("ratings are empty")
    n_users = int(ratings["u_id"].max()) + 1 if n_users is None else int(n_users)
    n_artists = int(ratings["a_id"].max()) + 1 if n_artists is None else int(n_artists)
    train, test = split_dataframe(ratings, holdout_fraction, seed)
    if len(train) == 0:
        raise ValueError("no training rows left after the split")
    train_indices, train_values = _ids_and_values(train, n_users, n_artists)
    objective = Objective(train_indices, train_values, n_users, n_artists,
                          float(regularization_coeff), float(gravity_coeff))

    graph = tf.Graph()
    graph.seed = seed
    with graph.as_default():
        tf.set_random_seed(seed)
        A_train = build_rating_sparse_tensor(train, n_users, n_artists)
        A_test = build_rating_sparse_tensor(test, n_users, n_artists)
        U = tf.Variable(tf.random_normal([n_users, embedding_dim], stddev=init_stddev, seed=1),
                        name="user_embeddings")
        V = tf.Variable(tf.random_normal([n_artists, embedding_dim], stddev=init_stddev,
                                         seed=2),
                        name="artist_embeddings")
        error_train = sparse_mean_square_error(A_train, U, V)
        error_test = (sparse_mean_square_error(A_test, U, V) if len(test)
                      else tf.constant(np.nan, dtype=tf.float32))
        gravity_loss = gravity_coeff * gravity(U, V)
        regularization_loss = regularization_coeff * regularization(U, V)
        total_loss = error_train + regularization_loss + gravity_loss
    losses = {"train_error_observed": error_train, "test_error_observed": error_test}
    loss_components = {"observed_loss": error_train,
                       "regularization_loss": regularization_loss,
                       "gravity_loss": gravity_loss}
    hyperparameters = {
        "embedding_dim": int(embedding_dim), "regularization_coeff": float(regularization_coeff),
        "gravity_coeff": float(gravity_coeff), "init_stddev": float(init_stddev),
        "holdout_fraction": float(holdout_fraction), "seed": int(seed),
        "n_users": n_users, "n_artists": n_artists, "solver": solver,
        "data_fingerprint": _fingerprint(ratings),
    }
    model = CFModel({"u_id": U, "a_id": V}, total_loss, [losses, loss_components],
                    objective=objective, solver=solver, hyperparameters=hyperparameters)
    model.train_ratings, model.test_ratings = train, test
    return model
