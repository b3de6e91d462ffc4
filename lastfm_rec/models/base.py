"""The shared recommender interface, following the ``implicit`` library's conventions.

:class:`Recommender` owns everything but scoring: input checks with one-line errors,
batching, filtering already liked items, top-N selection with ``argpartition``,
``similar_items``, and ``save``/``load`` through ``np.savez`` (no pickles). A model supplies
``_fit`` (learn from a float64 CSR of play counts), ``_score`` (dense scores for a batch of
users) and optionally ``_item_scores`` (similarities for ``similar_items``) and
``_state``/``_set_state`` (the arrays to save).
"""

from __future__ import annotations

import inspect
import json
import os
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

_CLASSES: dict[str, type[Recommender]] = {}
_BATCH = 256
#: Upper bound on the dense batch x artists score block (float64 entries): 256 MiB.
_BLOCK_ENTRIES = 1 << 25


class Recommender:
    """Base class: ``fit``, ``recommend``, ``similar_items``, ``save``/``load``.

    Attributes set by :meth:`fit`: ``n_users``, ``n_items``, ``train_`` (the training
    matrix, float64) and ``item_listeners_`` (users per item in it).
    """

    name: ClassVar[str] = ""
    #: False for models whose ranking ignores the user (popularity, random).
    personalised: ClassVar[bool] = True
    #: Constructor arguments holding side data (matrices): saved as arrays, not parameters.
    side_params: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _CLASSES[cls.__name__] = cls

    # ------------------------------------------------------------------ parameters
    def get_params(self) -> dict[str, Any]:
        """Constructor parameters that are plain values (numbers, strings, booleans, None)."""
        params = {}
        for key, parameter in inspect.signature(type(self).__init__).parameters.items():
            if key == "self" or key in self.side_params or parameter.kind in (
                    parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                continue
            value = getattr(self, key, None)
            if value is None or isinstance(value, bool | int | float | str):
                params[key] = value
        return params

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # ------------------------------------------------------------------ fitting
    def fit(self, user_items: sp.csr_matrix, show_progress: bool = False) -> Recommender:
        """Learn from ``user_items``: a users x artists CSR matrix of play counts."""
        del show_progress  # accepted for compatibility with implicit
        matrix = _as_float_csr(user_items, "user_items").copy()
        matrix.eliminate_zeros()
        if matrix.nnz and matrix.data.min() < 0:
            raise ValueError("user_items must hold non-negative play counts")
        self.n_users, self.n_items = matrix.shape
        self.item_listeners_ = np.bincount(matrix.indices, minlength=self.n_items)
        self.train_ = matrix
        self._cosine_items = None
        self._fit(matrix)
        return self

    def _fit(self, user_items: sp.csr_matrix) -> None:
        raise NotImplementedError

    def _score(self, userids: np.ndarray, user_items: sp.csr_matrix,
               recalculate_user: bool) -> np.ndarray:
        """Dense ``(len(userids), n_items)`` scores; higher is better."""
        raise NotImplementedError

    def _item_scores(self, itemids: np.ndarray) -> np.ndarray:
        """Dense ``(len(itemids), n_items)`` similarities; default: co-listening cosine."""
        columns = self._cosine_columns()
        return np.asarray((columns[itemids] @ columns.T).todense())

    def _cosine_columns(self) -> sp.csr_matrix:
        if getattr(self, "_cosine_items", None) is None:
            binary = self.train_.T.tocsr()
            binary.data[:] = 1.0
            norms = np.sqrt(np.asarray(binary.sum(axis=1)).ravel())
            self._cosine_items = sp.diags(1.0 / np.maximum(norms, 1e-12)) @ binary
        return self._cosine_items

    def item_vectors(self) -> np.ndarray | None:
        """Artist embeddings (one row per artist) for embedding models, else None."""
        return None

    def user_vectors(self, user_items: sp.csr_matrix) -> np.ndarray | None:
        """Embeddings of the users whose rows are ``user_items``, folded in as
        ``recommend(..., recalculate_user=True)`` does; None for models without embeddings."""
        return None

    def _check_fitted(self) -> None:
        if getattr(self, "n_items", None) is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit() first")

    # ------------------------------------------------------------------ recommending
    def recommend(self, userid: int | np.ndarray, user_items: sp.csr_matrix, N: int = 10,
                  filter_already_liked_items: bool = True,
                  filter_items: np.ndarray | None = None, recalculate_user: bool = False,
                  items: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-``N`` artists for one user or a batch of users.

        Parameters
        ----------
        userid
            A user index, or an array of them. With ``recalculate_user=True`` the ids may be
            anything (new users): only ``user_items`` is used.
        user_items
            CSR matrix with one row per user in ``userid`` (their play counts): the artists to
            filter and, for fold-in, the listening to recommend from.
        N
            How many artists to return.
        filter_already_liked_items
            Leave out artists with a nonzero entry in the user's row.
        filter_items
            Artist ids to leave out for every user.
        recalculate_user
            Compute the user's representation from ``user_items`` instead of the one learnt
            in training (how a new user gets recommendations).
        items
            Rank only these artist ids.

        Returns
        -------
        tuple
            ``(ids, scores)``, best first; ids are int32 as in ``implicit``. For one user,
            1-D arrays of up to ``N`` entries (fewer when fewer artists are left after
            filtering); for a batch, 2-D arrays with ``N`` columns, short rows padded with
            id ``-1`` and score ``-inf``.
        """
        self._check_fitted()
        single = np.ndim(userid) == 0
        userids = np.atleast_1d(np.asarray(userid))
        if userids.ndim != 1 or not np.issubdtype(userids.dtype, np.integer):
            raise ValueError("userid must be an integer or a 1-D array of integers")
        matrix = _as_float_csr(user_items, "user_items")
        if matrix.shape[0] != userids.size:
            raise ValueError(f"user_items has {matrix.shape[0]} rows but {userids.size} userids "
                             "were given: pass one row per user (e.g. user_items[userids])")
        if matrix.shape[1] != self.n_items:
            raise ValueError(f"user_items has {matrix.shape[1]} columns, the model "
                             f"{self.n_items} artists")
        if not recalculate_user and userids.size and (
                userids.min() < 0 or userids.max() >= self.n_users):
            raise ValueError(f"userid out of range 0..{self.n_users - 1}; for a new user pass "
                             "recalculate_user=True")
        if N < 1:
            raise ValueError(f"N must be at least 1, got {N}")
        columns = None if items is None else self._check_ids(items, "items")
        if columns is not None and filter_items is not None:
            raise ValueError("pass either items or filter_items, not both")
        blocked = None if filter_items is None else self._check_ids(filter_items, "filter_items")

        width = self.n_items if columns is None else columns.size
        n = min(N, width)
        all_ids = np.full((userids.size, n), -1, dtype=np.int32)
        all_scores = np.full((userids.size, n), -np.inf)
        # Scores are a dense batch x artists block: shrink the batch as the catalogue grows.
        batch = max(1, min(_BATCH, _BLOCK_ENTRIES // max(self.n_items, 1)))
        for start in range(0, userids.size, batch):
            rows = slice(start, start + batch)
            part = matrix[rows]
            scores = np.array(self._score(userids[rows], part, recalculate_user),
                              dtype=np.float64)
            scores[np.isnan(scores)] = -np.inf
            if filter_already_liked_items:
                liked_rows = np.repeat(np.arange(part.shape[0]), np.diff(part.indptr))
                liked = part.data != 0  # an explicitly stored zero is not a play
                scores[liked_rows[liked], part.indices[liked]] = -np.inf
            if blocked is not None:
                scores[:, blocked] = -np.inf
            if columns is not None:
                scores = scores[:, columns]
            ids, values = _top_n(scores, n)
            if columns is not None:
                ids = np.where(ids >= 0, columns[np.maximum(ids, 0)], -1)
            all_ids[rows], all_scores[rows] = ids, values
        if single:
            keep = all_ids[0] >= 0
            return all_ids[0][keep], all_scores[0][keep]
        return all_ids, all_scores

    def similar_items(self, itemid: int | np.ndarray, N: int = 10,
                      filter_items: np.ndarray | None = None,
                      items: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The ``N`` artists most similar to ``itemid`` (itself included, as in ``implicit``).

        Each model uses its own notion of similarity (factor cosine, its item-item weights);
        popularity and random fall back to the cosine of co-listening. Batched like
        :meth:`recommend` when ``itemid`` is an array.
        """
        self._check_fitted()
        single = np.ndim(itemid) == 0
        itemids = self._check_ids(np.atleast_1d(np.asarray(itemid)), "itemid")
        if N < 1:
            raise ValueError(f"N must be at least 1, got {N}")
        columns = None if items is None else self._check_ids(items, "items")
        blocked = None if filter_items is None else self._check_ids(filter_items, "filter_items")
        scores = np.array(self._item_scores(itemids), dtype=np.float64)
        scores[np.isnan(scores)] = -np.inf
        if blocked is not None:
            scores[:, blocked] = -np.inf
        if columns is not None:
            scores = scores[:, columns]
        ids, values = _top_n(scores, min(N, scores.shape[1]))
        if columns is not None:
            ids = np.where(ids >= 0, columns[np.maximum(ids, 0)], -1)
        if single:
            keep = ids[0] >= 0
            return ids[0][keep], values[0][keep]
        return ids, values

    def _check_ids(self, ids: Any, what: str) -> np.ndarray:
        ids = np.asarray(ids).ravel()
        if not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(f"{what} must be integer artist ids")
        if ids.size and (ids.min() < 0 or ids.max() >= self.n_items):
            raise ValueError(f"{what} out of range 0..{self.n_items - 1}")
        return ids.astype(np.int64)

    # ------------------------------------------------------------------ saving
    def _state(self) -> dict[str, np.ndarray | sp.spmatrix]:
        """The fitted arrays to save (besides the shape, ``train_`` and ``item_listeners_``)."""
        return {}

    def _set_state(self, state: dict[str, np.ndarray | sp.csr_matrix]) -> None:
        for key, value in state.items():
            setattr(self, key, value)

    def save(self, path: str | os.PathLike) -> None:
        """Write parameters and fitted arrays to ``path`` with ``np.savez`` (no pickles)."""
        self._check_fitted()
        arrays: dict[str, np.ndarray] = {
            "__class__": np.array(type(self).__name__),
            "__params__": np.array(json.dumps(self.get_params())),
            "__shape__": np.array([self.n_users, self.n_items]),
            "__listeners__": np.asarray(self.item_listeners_),
        }
        for key, value in {"train_": self.train_, **self._state()}.items():
            if sp.issparse(value):
                value = sp.csr_matrix(value)
                arrays[f"csr:{key}:data"] = value.data
                arrays[f"csr:{key}:indices"] = value.indices
                arrays[f"csr:{key}:indptr"] = value.indptr
                arrays[f"csr:{key}:shape"] = np.array(value.shape)
            else:
                arrays[f"arr:{key}"] = np.asarray(value)
        with open(path, "wb") as handle:  # keep the exact path (savez appends .npz to names)
            np.savez(handle, **arrays)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Recommender:
        """Read a model written by :meth:`save` (the class is restored from the file)."""
        with np.load(path, allow_pickle=False) as stored:
            files = {key: stored[key] for key in stored.files}
        name = str(files.pop("__class__"))
        model_cls = _CLASSES.get(name)
        if model_cls is None or not issubclass(model_cls, cls):
            raise ValueError(f"{path} holds a {name}, not a {cls.__name__}")
        model = model_cls(**json.loads(str(files.pop("__params__"))))
        model.n_users, model.n_items = (int(v) for v in files.pop("__shape__"))
        model.item_listeners_ = files.pop("__listeners__")
        state: dict[str, Any] = {}
        for key, value in files.items():
            kind, _, rest = key.partition(":")
            if kind == "arr":
                state[rest] = value
            elif kind == "csr" and rest.endswith(":data"):
                base = rest[: -len(":data")]
                state[base] = sp.csr_matrix(
                    (value, files[f"csr:{base}:indices"], files[f"csr:{base}:indptr"]),
                    shape=tuple(files[f"csr:{base}:shape"]))
        model._set_state(state)
        return model


class FactorRecommender(Recommender):
    """A model that scores by dot products of user and artist embeddings.

    A subclass sets ``user_factors`` (users x k) and ``item_factors`` (artists x k) in
    ``_fit`` and supplies ``_fold_in`` (embeddings of users from their rows alone, for
    ``recalculate_user=True``). Artists are similar by the cosine of their embeddings.
    """

    def _fold_in(self, user_items: sp.csr_matrix) -> np.ndarray:
        raise NotImplementedError

    def item_vectors(self) -> np.ndarray:
        self._check_fitted()
        return self.item_factors

    def user_vectors(self, user_items: sp.csr_matrix) -> np.ndarray:
        self._check_fitted()
        return self._fold_in(_as_float_csr(user_items, "user_items"))

    def _score(self, userids: np.ndarray, user_items: sp.csr_matrix,
               recalculate_user: bool) -> np.ndarray:
        vectors = self._fold_in(user_items) if recalculate_user else self.user_factors[userids]
        # Multiply in the factors' own precision: no float64 copy of the artist factors.
        items = self.item_factors
        return (np.asarray(vectors, dtype=items.dtype) @ items.T).astype(np.float64)

    def _item_scores(self, itemids: np.ndarray) -> np.ndarray:
        factors = np.asarray(self.item_factors, dtype=np.float64)
        unit = factors / np.maximum(np.linalg.norm(factors, axis=1, keepdims=True), 1e-12)
        return unit[itemids] @ unit.T

    def _state(self) -> dict[str, np.ndarray | sp.spmatrix]:
        return {"user_factors": self.user_factors, "item_factors": self.item_factors}


class ItemSimilarityRecommender(Recommender):
    """A model that scores a user by summing item-item similarities of their artists.

    A subclass sets ``similarity_`` (sparse artists x artists) in ``_fit`` and has a
    ``scaling`` of play counts (:func:`scale_plays`).
    """

    scaling: str = "binary"

    def _score(self, userids: np.ndarray, user_items: sp.csr_matrix,
               recalculate_user: bool) -> np.ndarray:
        return np.asarray((scale_plays(user_items, self.scaling) @ self.similarity_).todense())

    def _item_scores(self, itemids: np.ndarray) -> np.ndarray:
        scores = np.asarray(self.similarity_[itemids].todense())
        return self_first(scores, itemids)

    def _state(self) -> dict[str, np.ndarray | sp.spmatrix]:
        return {"similarity_": self.similarity_}


def self_first(scores: np.ndarray, itemids: np.ndarray) -> np.ndarray:
    """Give each item in ``itemids`` a score just above its row's best, so ``similar_items``
    lists the item itself first (as ``implicit`` does)."""
    rows = np.arange(itemids.size)
    finite = np.where(np.isfinite(scores), scores, -np.inf)
    best = finite.max(axis=1, initial=0.0)
    scores[rows, itemids] = best + np.maximum(np.abs(best) * 1e-6, 1e-9)
    return scores


def _as_float_csr(matrix: Any, name: str) -> sp.csr_matrix:
    if not sp.issparse(matrix) or matrix.format != "csr":
        raise ValueError(f"{name} must be a scipy.sparse CSR matrix, got {type(matrix).__name__}")
    if matrix.dtype != np.float64:
        matrix = matrix.astype(np.float64)
    return sp.csr_matrix(matrix)


def _top_n(scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Top ``n`` columns per row, best first, ties to the lower id; ``-inf`` entries -> -1.

    ``argpartition`` alone picks an arbitrary subset of the scores tied at the cut (which
    one depends on the CPU's SIMD sort), so rows with more ties at the cut than places left
    take the lowest ids among them: the same answer on every machine.
    """
    if n < scores.shape[1]:
        part = np.argpartition(-scores, n - 1, axis=1)[:, :n]
        cut = np.take_along_axis(scores, part, axis=1).min(axis=1, keepdims=True)
        above = (scores > cut).sum(axis=1)
        for row in np.flatnonzero((scores == cut).sum(axis=1) > n - above):
            tied = np.flatnonzero(scores[row] == cut[row])[: n - above[row]]
            part[row] = np.concatenate([np.flatnonzero(scores[row] > cut[row]), tied])
    else:
        part = np.broadcast_to(np.arange(scores.shape[1]), scores.shape).copy()
    values = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -values), axis=1) if part.size else part
    ids = np.take_along_axis(part, order, axis=1)
    values = np.take_along_axis(values, order, axis=1)
    ids = np.where(np.isneginf(values), -1, ids)
    return ids.astype(np.int32), values  # int32 ids, as implicit returns (and its evaluation needs)


def scale_plays(user_items: sp.csr_matrix, scaling: str) -> sp.csr_matrix:
    """``"binary"`` (1 for any play), ``"log1p"`` (log(1 + plays)) or ``"raw"`` play counts."""
    scaled = sp.csr_matrix(user_items, dtype=np.float64, copy=True)
    if scaling == "binary":
        scaled.data[:] = 1.0
    elif scaling == "log1p":
        scaled.data = np.log1p(scaled.data)
    elif scaling != "raw":
        raise ValueError(f"unknown scaling {scaling!r}; use 'binary', 'log1p' or 'raw'")
    return scaled
