"""Graph-convolution recommenders on TensorFlow: LightGCN and its social variant SocialLGN.

LightGCN (He et al., SIGIR 2020) learns one layer-0 embedding per user and artist, propagates
them ``layers`` times over the symmetrically normalised user-artist graph
``Â = D^-1/2 A D^-1/2`` (no self loops, feature transforms or nonlinearities), averages layers
``0..L`` and scores by dot product; it is trained with BPR (one sampled negative per
positive), L2 on the batch's layer-0 embeddings divided by the batch size, and Adam, as the
reference code (``gusye1234/LightGCN-PyTorch``) does. SocialLGN (Liao et al., Information
Sciences 2022; ``leo0481/SocialLGN``) also propagates users over the normalised friend graph
and fuses the two user views at every layer (:class:`SocialLightGCNRecommender`).

This module owns the propagation matrices (:func:`normalized_adjacency`), the training loop
(epochs, Adam, the number of epochs chosen on a validation part carved from the training
rows) and the fold-in of new users. TensorFlow is imported inside ``fit`` only, so importing
the registry stays fast. Each sparse product is TensorFlow's CSR kernel
(``SparseMatrixMatMul``) with the gradient written out as ``Â g`` (``Â`` is symmetric). On
the real data (80% of the rows) and two cores, the three-layer propagation forward and back
for an epoch's 37 batches took 0.5 s, against 3.7 s with ``tf.sparse.sparse_dense_matmul``
and 1.2 s with TensorFlow's own gradient of the CSR product, which transposes ``Â`` and gave
different bits run to run; with the symmetric gradient the same seed gives the same bytes
with one thread or two. A whole LightGCN epoch (sampling, Adam) took about 1.5 s on a
machine shared with other jobs, a SocialLGN epoch about twice that.

On the literature protocol (0/1 input, global 80/20 row split seed 0; defaults: 64 factors,
3 layers, Adam 1e-3, batch 2048, L2 1e-4, 10% validation, patience 5 x 10 epochs),
``notebooks/08_graph_models.ipynb`` records: LightGCN's validation chose epoch 490 of 540 run
and scored test NDCG@10 0.2453 (0.2459 at the run's best test epoch, 520; the SocialLGN paper
reports 0.234 for LightGCN); SocialLGN with the friends chose epoch 580 of 630, 0.2249 (0.2272
at its best test epoch), below LightGCN here and below the 0.2566 its paper reports. On a
machine shared with other jobs the fits took about 22 and 29 minutes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp

from lastfm_rec.models.base import FactorRecommender, FitCallback, plain, scale_plays
from lastfm_rec.ops import check_csr, solver_threads, top_n

logger = logging.getLogger(__name__)

#: Standard deviation of the normal layer-0 embeddings (both reference codes use 0.1).
INIT_STDDEV = 0.1
#: Adam's constants, as ``torch.optim.Adam``'s defaults the reference codes train with.
ADAM_BETAS = (0.9, 0.999)
ADAM_EPSILON = 1e-8
#: Cut-off of the validation NDCG that chooses the number of epochs.
VALIDATION_K = 10
#: Users scored at once when the validation NDCG is computed (bounds the dense block).
_EVAL_USERS = 512


def normalized_adjacency(matrix: sp.spmatrix) -> sp.csr_matrix:
    """``D^-1/2 M D^-1/2`` of a symmetric 0/1 adjacency matrix ``M``, rows and columns of
    degree 0 left at 0 (float32 CSR).

    Parameters
    ----------
    matrix
        Square, symmetric, non-negative; any stored value counts as an edge of weight 1.

    Returns
    -------
    scipy.sparse.csr_matrix
        The normalised adjacency, float32, sorted indices.
    """
    binary = sp.csr_matrix(matrix, dtype=np.float64, copy=True)
    binary.eliminate_zeros()
    binary.data[:] = 1.0
    degree = np.asarray(binary.sum(axis=1)).ravel()
    scale = np.zeros_like(degree)
    np.power(degree, -0.5, out=scale, where=degree > 0)
    normalized = sp.csr_matrix(sp.diags(scale) @ binary @ sp.diags(scale), dtype=np.float32)
    normalized.sort_indices()
    return normalized


def bipartite_adjacency(user_items: sp.csr_matrix) -> sp.csr_matrix:
    """The ``(users + artists)`` square 0/1 adjacency of the user-artist graph: ``[[0, R],
    [Rᵀ, 0]]`` with ``R`` the 0/1 plays, users first."""
    binary = scale_plays(user_items, "binary")
    return sp.bmat([[None, binary], [binary.T, None]], format="csr")


def _carve(user_items: sp.csr_matrix, fraction: float,
           rng: np.random.Generator) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """``(train, validation)``: ``round(fraction * nnz)`` stored entries drawn uniformly
    from all of them (the papers' global row split) move to ``validation``."""
    coo = user_items.tocoo()
    held = np.zeros(coo.nnz, dtype=bool)
    held[rng.permutation(coo.nnz)[:round(fraction * coo.nnz)]] = True
    parts = []
    for keep in (~held, held):
        parts.append(sp.csr_matrix((coo.data[keep], (coo.row[keep], coo.col[keep])),
                                   shape=user_items.shape))
    return parts[0], parts[1]


def ndcg_at(user_vectors: np.ndarray, item_vectors: np.ndarray, trained: sp.csr_matrix,
            held_out: sp.csr_matrix, k: int = VALIDATION_K) -> float:
    """Mean NDCG@k over the rows of ``held_out`` with entries, ranking the dot products of
    ``user_vectors`` and ``item_vectors`` with each row's ``trained`` entries masked (log2
    discount, ideal DCG over ``min(|held out|, k)`` hits:
    :func:`lastfm_rec.evaluation.literature.literature_metrics`'s definition). Scores a block
    of users at a time, never the whole users x artists matrix."""
    users = np.flatnonzero(np.diff(held_out.indptr))
    if users.size == 0:
        return float("nan")
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    total = 0.0
    for start in range(0, users.size, _EVAL_USERS):
        block = users[start:start + _EVAL_USERS]
        part = (user_vectors[block] @ item_vectors.T).astype(np.float64)
        seen = trained[block]
        part[np.repeat(np.arange(block.size), np.diff(seen.indptr)), seen.indices] = -np.inf
        ids, _ = top_n(part, k)
        truth = held_out[block]
        hits = np.zeros(ids.shape)
        for row in range(block.size):
            hits[row] = np.isin(ids[row], truth.indices[truth.indptr[row]:truth.indptr[row + 1]])
        ideal = np.cumsum(discount)[np.minimum(np.diff(truth.indptr), k) - 1]
        total += float(((hits * discount).sum(axis=1) / ideal).sum())
    return total / users.size


def _negatives(users: np.ndarray, positives: sp.csr_matrix,
               rng: np.random.Generator) -> np.ndarray:
    """One artist per entry of ``users``, uniform over the artists that user did not play
    (redrawn until none is a positive; the reference codes do the same one at a time)."""
    n_items = positives.shape[1]
    keys = positives.tocoo()
    played = np.sort(keys.row.astype(np.int64) * n_items + keys.col)
    negatives = rng.integers(0, n_items, users.size)
    clash = np.arange(users.size)
    while clash.size:
        key = users[clash].astype(np.int64) * n_items + negatives[clash]
        found = np.searchsorted(played, key)
        hit = (found < played.size) & (played[np.minimum(found, played.size - 1)] == key)
        clash = clash[hit]
        negatives[clash] = rng.integers(0, n_items, clash.size)
    return negatives


def _tensorflow() -> Any:
    """TensorFlow 2 with the package's environment defaults
    (:mod:`lastfm_rec.original.tfcompat`) and at most :func:`lastfm_rec.ops.solver_threads`
    threads per kernel."""
    from lastfm_rec.original.tfcompat import tf as tf_v1  # sets the environment first

    tf = tf_v1.compat.v2
    try:
        tf.config.threading.set_intra_op_parallelism_threads(solver_threads())
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # the runtime already started in this process: keep its threads
        pass
    return tf


class LightGCNRecommender(FactorRecommender):
    """LightGCN on 0/1 plays (any play count is one positive), trained in epochs.

    Each epoch visits every training positive once in a seeded random order, each with one
    artist the user did not play drawn uniformly (the reference code instead draws as many
    users uniformly, then one positive each: same epoch size, more weight to light users).
    Each batch propagates the whole graph (``layers`` sparse products forward and back).

    With ``validation_fraction > 0``, that fraction of the training rows (drawn uniformly, as
    the papers split) is held out of the graph and the loss; every ``eval_every`` epochs the
    NDCG@10 of the held-out rows (training rows masked) is computed, and training stops
    after ``patience`` evaluations without a better one, or at ``epochs``. The layer-0
    embeddings of the best evaluation are kept; with ``refit=False`` (default) they are
    propagated over the graph of all training rows (the held-out rows' edges become
    neighbours at no training cost), with ``refit=True`` the model is trained again from the
    same seed on all rows for the chosen number of epochs. With ``validation_fraction=0`` it
    trains exactly ``epochs`` epochs on all rows (so does a matrix too small to hold a
    row out).

    Users and artists with no edge in the training graph keep zero embeddings (their
    layer-0 start is all they would have; sgd-mf and ALS leave them at zero too).
    ``recalculate_user=True`` (and ``partial_fit_users``) places a user from their row alone:
    layer 0 zero (a new user has no learned start), layer ``l`` the degree-normalised sum of
    their artists' layer ``l-1`` embeddings, averaged over ``0..L`` as for trained users;
    the graph's degrees stay those of training.

    Parameters
    ----------
    factors
        Embedding size.
    layers
        Propagation layers ``L`` (0 is BPR matrix factorisation).
    learning_rate
        Adam's step size.
    batch_size
        Positives (with their negatives) per Adam step.
    l2
        Weight ``λ`` of ``½ (|e_u|² + |e_pos|² + |e_neg|²) / batch`` on the layer-0 embeddings.
    epochs
        Most epochs (with a validation part), or exactly this many (without).
    validation_fraction
        Fraction of the training rows that chooses the number of epochs; 0 trains ``epochs``.
    eval_every
        Epochs between validation evaluations.
    patience
        Evaluations without a better validation NDCG@10 before training stops.
    refit
        After choosing the epoch, train again on all rows (True) or keep the chosen
        embeddings (False).
    random_state
        Seed of the layer-0 start, the validation rows, the order and the negatives.

    Attributes
    ----------
    best_epoch_ : numpy.ndarray
        The epoch whose embeddings were kept (0-d; ``epochs`` without validation).
    validation_curve_ : numpy.ndarray
        ``(evaluations, 2)``: epoch, validation NDCG@10 (empty without validation).
    test_curve_ : numpy.ndarray
        ``(evaluations, 2)``: epoch, NDCG@10 of the ``test_items`` given to :meth:`fit`
        (empty without them or without validation).
    loss_curve_ : numpy.ndarray
        Mean BPR loss plus L2 term of every epoch trained (of the refit, with ``refit``).
    item_layers_ : numpy.ndarray
        ``(layers, artists, factors)``: artist embeddings of layers ``0..L-1``, for fold-in.
    """

    name = "lightgcn"
    iterative = True
    fit_hint = "a smaller learning_rate"

    def __init__(self, factors: int = 64, layers: int = 3, learning_rate: float = 1e-3,
                 batch_size: int = 2048, l2: float = 1e-4, epochs: int = 1000,
                 validation_fraction: float = 0.1, eval_every: int = 10, patience: int = 5,
                 refit: bool = False, random_state: int = 42) -> None:
        if not 0 <= validation_fraction < 1:
            raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction}")
        for key, value, low in (("factors", factors, 1), ("layers", layers, 0),
                                ("batch_size", batch_size, 1), ("epochs", epochs, 1),
                                ("eval_every", eval_every, 1), ("patience", patience, 1)):
            if int(value) != value or value < low:
                raise ValueError(f"{key} must be an integer of at least {low}, got {value!r}")
        self.factors, self.layers, self.learning_rate = factors, layers, learning_rate
        self.batch_size, self.l2, self.epochs = batch_size, l2, epochs
        self.validation_fraction, self.eval_every = validation_fraction, eval_every
        self.patience, self.refit, self.random_state = patience, refit, random_state
        self._test_items: sp.csr_matrix | None = None  # set by fit for its duration

    # ------------------------------------------------------------------ the graph
    def _user_graph(self) -> sp.csr_matrix | None:
        """The normalised users x users graph the variant propagates over (None: none)."""
        return None

    def _fusion_start(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Initial values of the variant's fusion weights (none for LightGCN)."""
        return {}

    def _propagate(self, tf: Any, graph: Callable[[Any], Any],
                   friends: Callable[[Any], Any] | None, users: Any, items: Any,
                   fusion: dict[str, Any]) -> tuple[Any, Any, list[Any], list[Any]]:
        """``(final users, final artists, artist layers 0..L-1, per-layer norms)``: layer
        ``l+1 = Â`` layer ``l``, final = mean of layers ``0..L``. ``graph`` multiplies the
        stacked users-then-artists embeddings by ``Â``."""
        n_users = users.shape[0]
        layer = tf.concat([users, items], axis=0)
        total, item_layers = layer, []
        for _ in range(int(self.layers)):
            item_layers.append(layer[n_users:])
            layer = graph(layer)
            total = total + layer
        final = total / float(self.layers + 1)
        return final[:n_users], final[n_users:], item_layers, []

    # ------------------------------------------------------------------ training
    def fit(self, user_items: sp.spmatrix, show_progress: bool = True,
            callback: FitCallback | None = None,
            test_items: sp.spmatrix | None = None) -> LightGCNRecommender:
        """Learn from ``user_items`` (:meth:`Recommender.fit`).

        ``test_items``: held-out test rows (users x artists, the play matrix's shape) to
        *watch*, never to choose: at every validation evaluation their NDCG@10 is computed
        too (the embeddings of that epoch propagated over the graph of all training rows,
        training rows masked) and kept in ``test_curve_``. Its maximum is the figure a
        paper that picks its best epoch by test NDCG would print; the fitted model is the
        one validation chose either way.
        """
        self._test_items = None if test_items is None else check_csr(
            test_items, "test_items", convert=True)
        if self._test_items is not None and self._test_items.shape != user_items.shape:
            raise ValueError(f"test_items must have the shape of user_items {user_items.shape}, "
                             f"got {self._test_items.shape}")
        try:
            return super().fit(user_items, show_progress, callback)
        finally:
            self._test_items = None

    def _fit(self, user_items: sp.csr_matrix, show_progress: bool = False,
             callback: FitCallback | None = None) -> None:
        tf = _tensorflow()
        seeds = np.random.SeedSequence(int(self.random_state)).spawn(2)
        friends = self._user_graph()
        positives = scale_plays(user_items, "binary")
        train, validation = _carve(positives, float(self.validation_fraction),
                                   np.random.default_rng(seeds[1]))
        self.test_curve_ = np.zeros((0, 2))
        if validation.nnz:
            run = _Run(self, tf, train, friends, seeds[0], validation)
            if self._test_items is not None:
                run.watch(positives, self._test_items)
            run.train(int(self.epochs), show_progress, callback)
            self.validation_curve_ = np.array(run.curve, dtype=np.float64).reshape(-1, 2)
            self.test_curve_ = np.array(run.test_curve, dtype=np.float64).reshape(-1, 2)
            self.best_epoch_ = np.array(run.best_epoch)
            if self.refit:
                run = _Run(self, tf, positives, friends, seeds[0], None)
                run.train(int(self.best_epoch_), show_progress, callback)
            else:
                run.restore_best()
        else:
            run = _Run(self, tf, positives, friends, seeds[0], None)
            run.train(int(self.epochs), show_progress, callback)
            self.validation_curve_ = np.zeros((0, 2))
            self.best_epoch_ = np.array(int(self.epochs))
        self.loss_curve_ = np.array(run.losses, dtype=np.float64)
        user_factors, item_factors, item_layers, norms = run.embeddings(
            _Graphs(tf, bipartite_adjacency(positives), friends))
        self.user_factors, self.item_factors = _outside_graph_zeroed(
            user_factors, item_factors, positives, friends)
        self.item_layers_ = item_layers
        self._set_fusion({**run.fusion_values(), "layer_norms_": norms})

    def _set_fusion(self, values: dict[str, np.ndarray]) -> None:
        """Keep the variant's fitted fusion weights (LightGCN has none)."""

    # ------------------------------------------------------------------ fold-in
    def _user_layer(self, propagated: np.ndarray, layer: int) -> np.ndarray:
        """A new user's layer ``layer + 1`` from ``propagated`` (``Â``'s user rows times the
        artists' layer ``layer``): LightGCN takes it as it is."""
        return propagated

    def _fold_in(self, user_items: sp.csr_matrix) -> np.ndarray:
        binary = scale_plays(user_items, "binary")
        degree = np.diff(binary.indptr).astype(np.float64)
        user_scale = np.zeros_like(degree)
        np.power(degree, -0.5, out=user_scale, where=degree > 0)
        item_scale = np.zeros(self.n_items)
        np.power(self.item_listeners_.astype(np.float64), -0.5, out=item_scale,
                 where=self.item_listeners_ > 0)
        normalized = sp.diags(user_scale) @ binary @ sp.diags(item_scale)
        total = np.zeros((binary.shape[0], self.item_factors.shape[1]))
        for layer, items in enumerate(self.item_layers_):
            total += self._user_layer(normalized @ items.astype(np.float64), layer)
        return (total / (len(self.item_layers_) + 1)).astype(self.item_factors.dtype)

    def _state(self) -> dict[str, np.ndarray | sp.spmatrix]:
        return {**super()._state(), "item_layers_": self.item_layers_,
                "best_epoch_": self.best_epoch_, "validation_curve_": self.validation_curve_,
                "test_curve_": self.test_curve_, "loss_curve_": self.loss_curve_}

    def _shape_problem(self) -> str | None:
        expected = (int(self.layers), self.n_items, int(np.shape(self.item_factors)[-1]))
        if np.shape(self.item_layers_) != expected:
            return f"item_layers_ has shape {np.shape(self.item_layers_)}, not {expected}"
        return super()._shape_problem()


class SocialLightGCNRecommender(LightGCNRecommender):
    """SocialLGN: LightGCN whose users also propagate over the friend graph.

    At every layer, as ``leo0481/SocialLGN``'s ``SocialLGN.computer`` does: the social view
    ``s = Ŝ u_l`` (``Ŝ = D^-1/2 F D^-1/2`` of the friendships ``F``), the interaction view
    ``[r; i_{l+1}] = Â [u_l; i_l]``, and the fused user layer
    ``u_{l+1} = g / ‖g‖`` with ``g = W3 [tanh(W1 s); tanh(W2 r)] + b`` (``Graph_Comb``);
    artists take ``i_{l+1}`` unchanged. Final embeddings are the mean of layers ``0..L``.
    ``W1``, ``W2`` (no bias) and ``W3``, ``b`` start as ``torch.nn.Linear`` does
    (uniform in ``±1/sqrt(fan in)``), are trained by the same Adam and carry no L2 (the
    reference puts L2 on the layer-0 embeddings only).

    Where this departs from or pins down the sources:

    - ``‖g‖`` is the Frobenius norm of the whole users x factors matrix, as the reference code
      computes it (``output / output.norm(2)``), not a per-user norm; a new user folded in
      (``recalculate_user``) is divided by the norms of training (``layer_norms_``).
    - The friend graph is made symmetric (``F = max(F, Fᵀ)``, 0/1): Last.fm friendships are
      mutual, and the normalisation assumes an undirected graph.
    - A user folded in has no friends known (``recommend`` gets plays only): its social view
      is zero, so ``g = W3 [0; tanh(W2 r)] + b``.
    - Without ``user_friends`` (or for users without friends) the social view is zero and the
      fusion still applies: the model remains SocialLGN on an empty friend graph, not LightGCN.
    - Training as :class:`LightGCNRecommender` (one negative per positive, epochs chosen on
      validation).

    Parameters
    ----------
    user_friends
        Users x users friendships (CSR, rows in the play matrix's user order), or None.
    factors, layers, learning_rate, batch_size, l2, epochs, validation_fraction, eval_every,
    patience, refit, random_state
        As in :class:`LightGCNRecommender`.
    """

    name = "social-lightgcn"
    side_params = ("user_friends",)

    def __init__(self, user_friends: sp.csr_matrix | None = None, factors: int = 64,
                 layers: int = 3, learning_rate: float = 1e-3, batch_size: int = 2048,
                 l2: float = 1e-4, epochs: int = 1000, validation_fraction: float = 0.1,
                 eval_every: int = 10, patience: int = 5, refit: bool = False,
                 random_state: int = 42) -> None:
        super().__init__(factors=factors, layers=layers, learning_rate=learning_rate,
                         batch_size=batch_size, l2=l2, epochs=epochs,
                         validation_fraction=validation_fraction, eval_every=eval_every,
                         patience=patience, refit=refit, random_state=random_state)
        self.user_friends = user_friends

    def _user_graph(self) -> sp.csr_matrix:
        if self.user_friends is None:
            return sp.csr_matrix((self.n_users, self.n_users), dtype=np.float32)
        if self.user_friends.shape != (self.n_users,) * 2:
            raise ValueError(f"user_friends must be {self.n_users} x {self.n_users} (users of "
                             f"the play matrix), got {self.user_friends.shape[0]} x "
                             f"{self.user_friends.shape[1]}")
        friends = sp.csr_matrix(self.user_friends, dtype=np.float64)
        friends.eliminate_zeros()
        friends.data[:] = 1.0
        return normalized_adjacency(friends.maximum(friends.T))

    def _fusion_start(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        k = int(self.factors)
        start = {}
        for key, shape, fan_in in (("w_social", (k, k), k), ("w_interaction", (k, k), k),
                                   ("w_combine", (2 * k, k), 2 * k), ("bias", (k,), 2 * k)):
            bound = 1.0 / np.sqrt(fan_in)
            start[key] = rng.uniform(-bound, bound, shape).astype(np.float32)
        return start

    def _propagate(self, tf: Any, graph: Callable[[Any], Any],
                   friends: Callable[[Any], Any] | None, users: Any, items: Any,
                   fusion: dict[str, Any]) -> tuple[Any, Any, list[Any], list[Any]]:
        n_users = users.shape[0]
        total_users, total_items, item_layers, norms = users, items, [], []
        for _ in range(int(self.layers)):
            item_layers.append(items)
            social = friends(users)
            interaction = graph(tf.concat([users, items], axis=0))
            fused = _combine(tf, social, interaction[:n_users], fusion)
            norm = tf.norm(fused)
            norms.append(norm)
            users, items = fused / norm, interaction[n_users:]
            total_users, total_items = total_users + users, total_items + items
        scale = float(self.layers + 1)
        return total_users / scale, total_items / scale, item_layers, norms

    def _set_fusion(self, values: dict[str, np.ndarray]) -> None:
        self.w_social_, self.w_interaction_ = values["w_social"], values["w_interaction"]
        self.w_combine_, self.bias_ = values["w_combine"], values["bias"]
        self.layer_norms_ = values["layer_norms_"]

    def _user_layer(self, propagated: np.ndarray, layer: int) -> np.ndarray:
        k = propagated.shape[1]
        fused = np.tanh(propagated @ self.w_interaction_) @ self.w_combine_[k:] + self.bias_
        return fused / self.layer_norms_[layer]

    def _state(self) -> dict[str, np.ndarray | sp.spmatrix]:
        return {**super()._state(), "w_social_": self.w_social_,
                "w_interaction_": self.w_interaction_, "w_combine_": self.w_combine_,
                "bias_": self.bias_, "layer_norms_": self.layer_norms_}


def _combine(tf: Any, social: Any, interaction: Any, fusion: dict[str, Any]) -> Any:
    """SocialLGN's ``Graph_Comb`` before its norm: ``[tanh(s W1), tanh(r W2)] W3 + b``."""
    joined = tf.concat([tf.tanh(social @ fusion["w_social"]),
                        tf.tanh(interaction @ fusion["w_interaction"])], axis=1)
    return joined @ fusion["w_combine"] + fusion["bias"]


def _outside_graph_zeroed(users: np.ndarray, items: np.ndarray, positives: sp.csr_matrix,
                          friends: sp.csr_matrix | None) -> tuple[np.ndarray, np.ndarray]:
    """The final embeddings with users and artists that have no edge in the training graph
    set to 0 (their random layer-0 start is all they would have)."""
    graph_users = np.diff(positives.indptr) > 0
    if friends is not None:
        graph_users |= np.diff(friends.indptr) > 0
    users[~graph_users] = 0.0
    items[np.bincount(positives.indices, minlength=positives.shape[1]) == 0] = 0.0
    return users, items


class _Graphs:
    """The propagation matrices as TensorFlow constants and the products by them.

    The CSR handle is built in each call of :meth:`products` (inside the traced step): a
    handle captured from outside a ``tf.function`` loses its shape, which
    ``SparseMatrixMatMul`` needs.
    """

    def __init__(self, tf: Any, adjacency: sp.csr_matrix,
                 friends: sp.csr_matrix | None) -> None:
        self.tf, self.friends = tf, friends
        self.parts = [self._constants(normalized_adjacency(adjacency))]
        if friends is not None:
            self.parts.append(self._constants(friends))

    def _constants(self, matrix: sp.csr_matrix) -> tuple[Any, Any, Any]:
        coo = matrix.tocoo()  # from sorted CSR: row-major order, as the CSR conversion needs
        tf = self.tf
        return (tf.constant(np.c_[coo.row, coo.col].astype(np.int64)),
                tf.constant(coo.data.astype(np.float32)),
                tf.constant(np.array(coo.shape, dtype=np.int64)))

    def products(self) -> list[Callable[[Any], Any]]:
        """One ``x -> M x`` per matrix, for use inside a ``tf.function``."""
        return [self._product(*part) for part in self.parts]

    def _product(self, indices: Any, values: Any, shape: Any) -> Callable[[Any], Any]:
        tf = self.tf
        handle = tf.raw_ops.SparseTensorToCSRSparseMatrix(indices=indices, values=values,
                                                          dense_shape=shape)

        @tf.custom_gradient
        def product(dense: Any) -> Any:
            # M is symmetric: the gradient Mᵀ g is M g, with no transposed copy of M.
            return tf.raw_ops.SparseMatrixMatMul(a=handle, b=dense), \
                lambda upstream: tf.raw_ops.SparseMatrixMatMul(a=handle, b=upstream)

        return product


class _Run:
    """One training run: variables, Adam, the epochs and, with a validation part, the
    early stop."""

    def __init__(self, model: LightGCNRecommender, tf: Any, train: sp.csr_matrix,
                 friends: sp.csr_matrix | None, seed: np.random.SeedSequence,
                 validation: sp.csr_matrix | None) -> None:
        self.model, self.tf, self.train_rows, self.validation = model, tf, train, validation
        init_seed, order_seed = seed.spawn(2)
        init = np.random.default_rng(init_seed)
        self.order = np.random.default_rng(order_seed)
        n_users, n_items = train.shape
        k = int(model.factors)
        start = {"users": init.normal(0.0, INIT_STDDEV, (n_users, k)).astype(np.float32),
                 "items": init.normal(0.0, INIT_STDDEV, (n_items, k)).astype(np.float32),
                 **model._fusion_start(init)}
        self.variables = {key: tf.Variable(value, name=key) for key, value in start.items()}
        self.moments = {key: (tf.Variable(tf.zeros_like(value)), tf.Variable(tf.zeros_like(value)))
                        for key, value in start.items()}
        self.step_count = tf.Variable(0.0)
        self.graphs = _Graphs(tf, bipartite_adjacency(train), friends)
        ids = tf.TensorSpec([None], tf.int32)
        # One trace per run: the last, shorter batch must not trace the step again.
        self.step = tf.function(self._step, input_signature=[ids, ids, ids])
        coo = train.tocoo()
        self.pairs = np.c_[coo.row, coo.col].astype(np.int32)
        self.losses: list[float] = []
        self.curve: list[tuple[int, float]] = []
        self.test_curve: list[tuple[int, float]] = []
        self.watched: tuple[_Graphs, sp.csr_matrix, sp.csr_matrix] | None = None
        self.best_epoch, self.best_ndcg, self.best_values = 0, -np.inf, None

    def _forward(self, graphs: list[Callable[[Any], Any]]) -> tuple[Any, ...]:
        fusion = {key: value for key, value in self.variables.items()
                  if key not in ("users", "items")}
        return self.model._propagate(self.tf, graphs[0], graphs[1] if len(graphs) > 1 else None,
                                     self.variables["users"], self.variables["items"], fusion)

    def _step(self, users: Any, positives: Any, negatives: Any) -> Any:
        tf = self.tf
        with tf.GradientTape() as tape:
            final_users, final_items, _, _ = self._forward(self.graphs.products())
            user = tf.gather(final_users, users)
            margin = tf.reduce_sum(user * (tf.gather(final_items, negatives)
                                           - tf.gather(final_items, positives)), axis=1)
            start_users, start_items = self.variables["users"], self.variables["items"]
            penalty = 0.5 * (tf.reduce_sum(tf.gather(start_users, users) ** 2)
                             + tf.reduce_sum(tf.gather(start_items, positives) ** 2)
                             + tf.reduce_sum(tf.gather(start_items, negatives) ** 2))
            batch = tf.cast(tf.shape(users)[0], tf.float32)
            loss = tf.reduce_mean(tf.nn.softplus(margin)) + plain(self.model.l2) * penalty / batch
        keys = list(self.variables)
        gradients = tape.gradient(loss, [self.variables[key] for key in keys])
        self._adam(keys, gradients)
        return loss

    def _adam(self, keys: list[str], gradients: list[Any]) -> None:
        """One step of Adam as ``torch.optim.Adam`` takes it (bias-corrected moments,
        epsilon added to the root), every parameter updated densely."""
        tf = self.tf
        beta1, beta2 = ADAM_BETAS
        self.step_count.assign_add(1.0)
        correction1 = 1.0 - beta1 ** self.step_count
        correction2 = 1.0 - beta2 ** self.step_count
        rate = plain(self.model.learning_rate)
        for key, gradient in zip(keys, gradients, strict=True):
            gradient = tf.convert_to_tensor(gradient)
            first, second = self.moments[key]
            first.assign(beta1 * first + (1.0 - beta1) * gradient)
            second.assign(beta2 * second + (1.0 - beta2) * gradient * gradient)
            self.variables[key].assign_sub(
                rate * (first / correction1) / (tf.sqrt(second / correction2) + ADAM_EPSILON))

    def _epoch(self) -> float:
        order = self.order.permutation(self.pairs.shape[0])
        users, positives = self.pairs[order, 0], self.pairs[order, 1]
        negatives = _negatives(users, self.train_rows, self.order).astype(np.int32)
        size, total = int(self.model.batch_size), 0.0
        for start in range(0, users.size, size):
            batch = slice(start, start + size)
            total += float(self.step(users[batch], positives[batch], negatives[batch])) \
                * users[batch].size
        return total / max(users.size, 1)

    def train(self, epochs: int, show_progress: bool, callback: FitCallback | None) -> None:
        """Up to ``epochs`` epochs; with a validation part, stop after ``patience``
        evaluations without a better NDCG@10."""
        from tqdm.auto import tqdm

        model, started, waited = self.model, time.perf_counter(), 0
        with tqdm(total=epochs, desc=model.name, unit="epoch", disable=not show_progress) as bar:
            for epoch in range(1, epochs + 1):
                loss = self._epoch()
                self.losses.append(loss)
                postfix = {"loss": f"{loss:.4f}"}
                if self.validation is not None and (epoch % int(model.eval_every) == 0
                                                    or epoch == epochs):
                    ndcg = self._validate()
                    self.curve.append((epoch, ndcg))
                    postfix["val_ndcg@10"] = f"{ndcg:.4f}"
                    if self.watched is not None:
                        self.test_curve.append((epoch, self._score_watched()))
                    if ndcg > self.best_ndcg:
                        self.best_epoch, self.best_ndcg, waited = epoch, ndcg, 0
                        self.best_values = {key: value.numpy()
                                            for key, value in self.variables.items()}
                    else:
                        waited += 1
                bar.set_postfix(postfix)
                bar.update()
                if callback is not None:
                    callback(epoch, time.perf_counter() - started, loss)
                if not np.isfinite(loss) or waited >= int(model.patience):
                    break
        if self.validation is not None:
            logger.info("%s: validation NDCG@%d %.4f at epoch %d of %d", model.name,
                        VALIDATION_K, self.best_ndcg, self.best_epoch, len(self.losses))

    def _validate(self) -> float:
        users, items, _, _ = self.embeddings(self.graphs)
        users, items = _outside_graph_zeroed(users, items, self.train_rows, self.graphs.friends)
        return ndcg_at(users, items, self.train_rows, self.validation)

    def watch(self, positives: sp.csr_matrix, test_items: sp.csr_matrix) -> None:
        """Also score ``test_items`` at each evaluation, as the fitted model would be: over
        the graph of all training rows ``positives``, with those rows masked."""
        graphs = _Graphs(self.tf, bipartite_adjacency(positives), self.graphs.friends)
        self.watched = (graphs, positives, test_items)

    def _score_watched(self) -> float:
        graphs, positives, test_items = self.watched
        users, items, _, _ = self.embeddings(graphs)
        users, items = _outside_graph_zeroed(users, items, positives, graphs.friends)
        return ndcg_at(users, items, positives, test_items)

    def restore_best(self) -> None:
        """Put back the layer-0 embeddings and weights of the best evaluation."""
        if self.best_values is not None:
            for key, value in self.best_values.items():
                self.variables[key].assign(value)

    def fusion_values(self) -> dict[str, np.ndarray]:
        """The fusion weights (the social variant's), as numpy arrays."""
        return {key: value.numpy() for key, value in self.variables.items()
                if key not in ("users", "items")}

    def embeddings(self, graphs: _Graphs) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                   np.ndarray]:
        """Final user and artist embeddings, artist layers ``0..L-1`` and the fusion norms,
        propagated over ``graphs`` (float32 numpy). Run eagerly: one pass costs less than
        tracing it."""
        users, items, layers, norms = self._forward(graphs.products())
        k = int(self.model.factors)
        stacked = np.stack([layer.numpy() for layer in layers]) if layers else \
            np.zeros((0, items.shape[0], k), dtype=np.float32)
        return users.numpy(), items.numpy(), stacked, \
            np.array([float(norm) for norm in norms], dtype=np.float32)
