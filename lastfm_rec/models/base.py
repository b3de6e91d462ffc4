"""The shared recommender interface: ``implicit`` 0.7's ``RecommenderBase``, drop-in.

:class:`Recommender` owns everything but scoring: input checks with one-line errors,
batching, filtering already liked items, top-N selection (:func:`lastfm_rec.ops.top_n`),
``similar_items``/``similar_users``, parameters kept as scikit-learn keeps them
(``get_params``/``set_params``; a model built from other models, :attr:`Recommender.parts`,
takes their settings under nested names such as ``als__factors``), the check of the fitted
arrays (NaN or infinite values: :class:`ModelFitError` after ``fit``,
:class:`~lastfm_rec.files.ModelFileError` after ``load``), the NaN check of scores and
``save``/``load`` in the package's model file format (:mod:`lastfm_rec.files`; paths or open
files). A model supplies ``_fit`` (learn from a float64 CSR of play counts), ``_score`` (dense
scores for a batch of users, public as :meth:`Recommender.score_items`) and optionally
``_item_scores`` (similarities for ``similar_items``), ``_user_scores`` (for
``similar_users``) and ``_state``/``_set_state`` (the arrays to save).

Semantics shared with ``implicit`` (checked by ``tests/test_contract.py`` on every registered
model): ``recommend(..., items=candidates)`` returns every candidate, already liked ones last
with score ``-3.4e38`` (the lowest float32); scores are float32 and ids int32; ids out of
range raise ``IndexError``; ``fit`` converts COO/LIL/CSC input to CSR with
``implicit.utils.ParameterWarning``; a model that cannot do something by nature raises
``NotImplementedError``. Models are registered as virtual subclasses of ``implicit``'s
``RecommenderBase``.

Top-N selection, unit rows and the CSR check exist once, in :mod:`lastfm_rec.ops`.
"""

from __future__ import annotations

import inspect
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, ClassVar

import numpy as np
import scipy.sparse as sp
from implicit.recommender_base import ModelFitError as ImplicitModelFitError
from implicit.recommender_base import RecommenderBase

from lastfm_rec.files import ModelFile, ModelFileError, read_model_file, write_model_file
from lastfm_rec.ops import FILTERED_SCORE, check_csr, normalize_rows, profiled, top_n

_CLASSES: dict[str, type[Recommender]] = {}
#: With ``items=``, a candidate the model cannot score (EASE's rare artists): ranked after
#: every scored candidate, before the already liked ones (:data:`FILTERED_SCORE`).
UNSCORED = float(np.nextafter(np.float32(FILTERED_SCORE), np.float32(0)))
_BATCH = 256
#: Upper bound on the entries of the dense users x artists float64 score block that
#: :meth:`Recommender.recommend` scores at once: 2**25 entries, 256 MiB
#: (see :func:`users_per_batch`).
BLOCK_ENTRIES = 1 << 25

#: ``callback(iteration, elapsed_seconds, loss)``, as ``implicit`` calls it once per epoch.
FitCallback = Callable[[int, float, float], Any]


def users_per_batch(n_items: int) -> int:
    """Users that :meth:`Recommender.recommend` scores per batch for a catalogue of
    ``n_items`` artists.

    Scores are a dense batch x ``n_items`` float64 block, held about three times at once
    (the scores, their negated copy and the ``argpartition`` result), so the batch shrinks
    as the catalogue grows: 256 users up to 131,072 artists, then
    ``BLOCK_ENTRIES // n_items`` (at least one).

    Parameters
    ----------
    n_items
        Artists the model scores.

    Returns
    -------
    int
        ``max(1, min(256, BLOCK_ENTRIES // n_items))``.
    """
    return max(1, min(_BATCH, BLOCK_ENTRIES // max(n_items, 1)))


class ModelFitError(ImplicitModelFitError):
    """A fit that left NaN or infinite values in the learned arrays (the model diverged).

    A subclass of ``implicit.recommender_base.ModelFitError``, so code catching
    ``implicit``'s error catches this one too.
    """


class IdOutOfRangeError(IndexError, ValueError):
    """A user or artist id outside the fitted model: an ``IndexError`` as in ``implicit``
    (and a ``ValueError``, as this package raised before)."""


def plain(value: Any) -> Any:
    """A numpy scalar as the Python number it holds (parameters must stay JSON-able)."""
    return value.item() if isinstance(value, np.generic) else value


class Recommender:
    """Base class: ``fit``, ``recommend``, ``similar_items``, ``similar_users``,
    ``save``/``load``, ``get_params``/``set_params``.

    Attributes set by :meth:`fit`: ``n_users``, ``n_items``, ``train_`` (the training
    matrix, float64) and ``item_listeners_`` (users per item in it). ``train_`` is None for a
    model fitted from rows that never came to this process
    (:meth:`~lastfm_rec.models.spark_als.SparkALSRecommender.fit_frame`), and for one loaded
    from a file saved without them.
    """

    name: ClassVar[str] = ""
    #: False for models whose ranking ignores the user (popularity, random).
    personalised: ClassVar[bool] = True
    #: True for models trained in epochs: their ``_fit`` takes ``show_progress``/``callback``.
    iterative: ClassVar[bool] = False
    #: Constructor arguments holding side data (matrices): saved as arrays, not in JSON.
    side_params: ClassVar[tuple[str, ...]] = ()
    #: What to try when a fit diverges (the end of the :class:`ModelFitError` message).
    fit_hint: ClassVar[str] = "checking user_items for extreme or non-finite play counts"
    #: Models this one is built from (name -> class). Part ``name``'s settings are this
    #: model's parameters ``<name>__<setting>`` (scikit-learn's nested names; the part's side
    #: data is this model's), kept as an unfitted model in attribute ``name``.
    parts: ClassVar[dict[str, type[Recommender]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _CLASSES[cls.__name__] = cls

    # ------------------------------------------------------------------ parameters
    @classmethod
    def _param_names(cls) -> list[str]:
        return [key for key, parameter in inspect.signature(cls.__init__).parameters.items()
                if key != "self" and parameter.kind not in (parameter.VAR_POSITIONAL,
                                                            parameter.VAR_KEYWORD)]

    @classmethod
    def _part_param_names(cls) -> list[str]:
        """The parts' settings, as ``<part>__<setting>``."""
        return [f"{name}__{key}" for name, part in cls.parts.items()
                for key in part._plain_param_names()]

    @classmethod
    def _plain_param_names(cls) -> list[str]:
        """Constructor parameters but the side data, the parts' settings included."""
        own = [key for key in cls._param_names() if key not in cls.side_params]
        return own + cls._part_param_names()

    @classmethod
    def _unknown_params(cls, keys: list[str]) -> ValueError:
        """The one-line error for parameter names ``cls`` does not take (with the nested name
        where a key is a part's setting written with one underscore, as in ``als_factors``)."""
        nested = []
        for key in keys:
            for name, part in cls.parts.items():
                setting = key.removeprefix(f"{name}_")
                if setting != key and setting in part._plain_param_names():
                    nested.append(f"{name}__{setting}")
        if nested:
            hint = f": a part's settings are named <part>__<setting>, use {', '.join(nested)}"
        else:
            hint = f"; valid: {', '.join(cls._param_names() + cls._part_param_names())}"
        return ValueError(f"{cls.__name__} has no parameter(s) {', '.join(keys)}{hint}")

    @classmethod
    def _part_settings(cls, params: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """``{part: {setting: value}}`` from ``<part>__<setting>`` keyword arguments (what a
        model with :attr:`parts` takes besides its own parameters)."""
        settings: dict[str, dict[str, Any]] = {name: {} for name in cls.parts}
        unknown = []
        for key, value in params.items():
            name, _, setting = key.partition("__")
            if name in cls.parts and setting in cls.parts[name]._plain_param_names():
                settings[name][setting] = value
            else:
                unknown.append(key)
        if unknown:
            raise cls._unknown_params(sorted(unknown))
        return settings

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Every constructor parameter (side-data matrices included), numpy scalars as Python
        numbers, as scikit-learn's ``get_params`` returns them.

        A model made of :attr:`parts` adds each part's settings under scikit-learn's nested
        names (``als__factors``), whatever ``deep`` is: the parts are built from these
        settings, never passed in, so every value stays a plain number or string.
        """
        del deep
        params = {key: plain(getattr(self, key)) for key in self._param_names()}
        for name in self.parts:
            params.update({f"{name}__{key}": value
                           for key, value in getattr(self, name).saved_params().items()})
        return params

    def set_params(self, **params: Any) -> Recommender:
        """Change constructor parameters, or a part's settings by their nested names
        (``set_params(als__factors=64)``), validated as the constructor does; returns self.

        Takes effect at the next :meth:`fit`.
        """
        unknown = sorted(set(params) - set(self.get_params()))
        if unknown:
            raise self._unknown_params(unknown)
        checked = type(self)(**{**self.get_params(), **params})
        for key in {key.partition("__")[0] for key in params}:
            setattr(self, key, getattr(checked, key))
        return self

    def saved_params(self) -> dict[str, Any]:
        """The parameters that are plain values (all but the side data): JSON in a saved
        file's manifest and part of the serving cache key."""
        return {k: v for k, v in self.get_params().items() if k not in self.side_params}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.saved_params().items())
        return f"{type(self).__name__}({args})"

    # ------------------------------------------------------------------ fitting
    def fit(self, user_items: sp.spmatrix, show_progress: bool = True,
            callback: FitCallback | None = None) -> Recommender:
        """Learn from ``user_items``: a users x artists sparse matrix of play counts.

        Parameters
        ----------
        user_items
            CSR matrix (other scipy.sparse formats are converted with a warning, as
            ``implicit`` does). Explicitly stored zeros are not plays.
        show_progress
            Show a progress bar while training (models trained in epochs: ALS, the hybrid's
            ALS part, sgd-mf).
        callback
            Called as ``callback(iteration, elapsed_seconds, loss)`` after each epoch of a
            model trained in epochs (``loss`` NaN where the model does not compute it), and
            once with iteration 0 after a closed-form fit.

        Raises
        ------
        ModelFitError
            The learned arrays hold NaN or infinite values: the message names the model and
            what to try.
        """
        matrix = check_csr(user_items, "user_items", convert=True).astype(np.float64)
        matrix.eliminate_zeros()
        if matrix.nnz and matrix.data.min() < 0:
            raise ValueError("user_items must hold non-negative play counts")
        self.n_users, self.n_items = matrix.shape
        self.item_listeners_ = np.bincount(matrix.indices, minlength=self.n_items)
        self.train_ = matrix
        self._cosine_items = self._cosine_users = None
        started = time.perf_counter()
        try:
            with profiled(f"fit {self.name or type(self).__name__}"):
                if self.iterative:
                    self._fit(matrix, show_progress=show_progress, callback=callback)
                else:
                    self._fit(matrix)
        except ImplicitModelFitError as error:
            if isinstance(error, ModelFitError):
                raise
            raise ModelFitError(self._diverged("its factors")) from error
        self._check_fit()
        if callback is not None and not self.iterative:
            callback(0, time.perf_counter() - started, float("nan"))
        return self

    def _fit(self, user_items: sp.csr_matrix, **options: Any) -> None:
        raise NotImplementedError

    def _diverged(self, what: str) -> str:
        return (f"{self.name or type(self).__name__} diverged: {what} hold NaN or infinite "
                f"values after fit; try {self.fit_hint}")

    def _check_fit(self) -> None:
        """Raise :class:`ModelFitError` if a learned array holds NaN or infinite values."""
        key = self._nonfinite_array()
        if key is not None:
            raise ModelFitError(self._diverged(key))

    def _nonfinite_array(self) -> str | None:
        """The name of the first learned array (:meth:`_state`) holding NaN or infinite
        values, or ``None``: checked after :meth:`fit` and after :meth:`load`."""
        for key, value in self._state().items():
            values = value.data if sp.issparse(value) else np.asarray(value)
            if np.issubdtype(values.dtype, np.floating) and not np.isfinite(values).all():
                return key
        return None

    def _shape_problem(self) -> str | None:
        """What in the learned arrays contradicts ``n_users`` x ``n_items``, or ``None``:
        checked after :meth:`load` (``fit`` makes the arrays to match)."""
        if np.shape(self.item_listeners_) != (self.n_items,):
            return f"item_listeners_ has shape {np.shape(self.item_listeners_)}, not " \
                   f"({self.n_items},)"
        return None

    def partial_fit_users(self, userids: np.ndarray, user_items: sp.csr_matrix) -> None:
        """Update (or add) the given users from their rows; only models that can."""
        raise NotImplementedError(f"{self.name} cannot update users incrementally: refit it")

    def partial_fit_items(self, itemids: np.ndarray, item_users: sp.csr_matrix) -> None:
        """Update (or add) the given artists from their listeners; only models that can."""
        raise NotImplementedError(f"{self.name} cannot update artists incrementally: refit it")

    # ------------------------------------------------------------------ scoring hooks
    def _score(self, userids: np.ndarray, user_items: sp.csr_matrix,
               recalculate_user: bool) -> np.ndarray:
        """Dense ``(len(userids), n_items)`` scores; higher is better."""
        raise NotImplementedError

    def _item_scores(self, itemids: np.ndarray) -> np.ndarray:
        """Dense ``(len(itemids), n_items)`` similarities; default: co-listening cosine."""
        if getattr(self, "_cosine_items", None) is None:
            binary = self.train_.T.tocsr()
            binary.data[:] = 1.0
            self._cosine_items = normalize_rows(binary)
        columns = self._cosine_items
        return np.asarray((columns[itemids] @ columns.T).todense())

    def _user_scores(self, userids: np.ndarray) -> np.ndarray:
        """Dense ``(len(userids), n_users)`` similarities; default: co-listening cosine."""
        if not self.personalised:
            raise NotImplementedError(f"{self.name} ranks artists the same way for everyone: "
                                      "it has no notion of similar users")
        if getattr(self, "_cosine_users", None) is None:
            binary = self.train_.copy()
            binary.data[:] = 1.0
            self._cosine_users = normalize_rows(binary)
        rows = self._cosine_users
        return np.asarray((rows[userids] @ rows.T).todense())

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
            Leave out artists with a nonzero entry in the user's row (with ``items``: rank
            them last instead, as ``implicit`` does).
        filter_items
            Artist ids to leave out for every user.
        recalculate_user
            Compute the user's representation from ``user_items`` instead of the one learnt
            in training (how a new user gets recommendations).
        items
            Rank only these artist ids (not together with ``filter_items``). Every candidate
            is returned (up to ``N``); already liked ones come last with score ``-3.4e38``,
            after any the model cannot score (:data:`UNSCORED`).

        Returns
        -------
        tuple
            ``(ids, scores)``, best first; ids int32, scores float32 as in ``implicit``. For
            one user, 1-D arrays of up to ``N`` entries (fewer when fewer artists are left
            after filtering); for a batch, 2-D arrays with ``min(N, artists)`` columns, short
            rows padded with id ``-1`` and score ``-inf``.

        Raises
        ------
        IndexError
            A ``userid`` (without ``recalculate_user``), ``items`` or ``filter_items`` id out
            of range.
        ValueError
            The model scored NaN for a user (the message names the users and what to do), or
            the input is malformed.
        """
        single, userids, matrix = self._query(userid, user_items, recalculate_user)
        if N < 1:
            raise ValueError(f"N must be at least 1, got {N}")
        candidates = self._candidates(items, filter_items)
        blocked = None if filter_items is None else _check_ids(filter_items, "filter_items",
                                                                self.n_items)
        width = self.n_items if candidates is None else candidates.size
        all_ids = np.full((userids.size, min(N, width)), -1, dtype=np.int32)
        all_scores = np.full(all_ids.shape, -np.inf, dtype=np.float32)
        batch = users_per_batch(self.n_items)
        for start in range(0, userids.size, batch):
            rows = slice(start, start + batch)
            part = matrix[rows]
            scores = self._checked_scores(userids[rows], part, recalculate_user)
            if candidates is not None:  # artists the model cannot score: after scored ones
                scores[np.isneginf(scores)] = UNSCORED
            if filter_already_liked_items:
                liked_rows = np.repeat(np.arange(part.shape[0]), np.diff(part.indptr))
                liked = part.data != 0  # an explicitly stored zero is not a play
                scores[liked_rows[liked], part.indices[liked]] = -np.inf
            if blocked is not None:
                scores[:, blocked] = -np.inf
            all_ids[rows], all_scores[rows] = _rank(scores, N, candidates)
        return _single(all_ids, all_scores) if single else (all_ids, all_scores)

    def score_items(self, userid: int | np.ndarray, user_items: sp.csr_matrix,
                    recalculate_user: bool = False) -> np.ndarray:
        """Every artist's score for one user or a batch: the block :meth:`recommend` ranks.

        Parameters
        ----------
        userid, user_items, recalculate_user
            As in :meth:`recommend`.

        Returns
        -------
        numpy.ndarray
            float64, higher is better: ``(n_items,)`` for one user, ``(len(userid),
            n_items)`` for a batch. Nothing is filtered (already liked artists keep their
            score); ``-inf`` marks an artist the model cannot score (EASE's rare artists).

        Raises
        ------
        ValueError
            The model scored NaN for a user, or the input is malformed.
        """
        single, userids, matrix = self._query(userid, user_items, recalculate_user)
        scores = self._checked_scores(userids, matrix, recalculate_user)
        return scores[0] if single else scores

    def _query(self, userid: int | np.ndarray, user_items: sp.csr_matrix,
               recalculate_user: bool) -> tuple[bool, np.ndarray, sp.csr_matrix]:
        """``(one user?, userids as a 1-D array, user_items as float64 CSR)``, checked."""
        self._check_fitted()
        single = np.ndim(userid) == 0
        userids = np.atleast_1d(np.asarray(userid))
        if userids.ndim != 1 or not np.issubdtype(userids.dtype, np.integer):
            raise ValueError("userid must be an integer or a 1-D array of integers")
        matrix = check_csr(user_items, "user_items").astype(np.float64)
        if matrix.shape[0] != userids.size:
            raise ValueError(f"user_items has {matrix.shape[0]} rows but {userids.size} userids "
                             "were given: pass one row per user (e.g. user_items[userids])")
        if matrix.shape[1] != self.n_items:
            raise ValueError(f"user_items has {matrix.shape[1]} columns, the model "
                             f"{self.n_items} artists")
        if not recalculate_user:
            _check_ids(userids, "userid", self.n_users,
                       "; for a new user pass recalculate_user=True")
        return single, userids, matrix

    def _checked_scores(self, userids: np.ndarray, user_items: sp.csr_matrix,
                        recalculate_user: bool) -> np.ndarray:
        """``_score`` as a float64 array of our own; a one-line ``ValueError`` on NaN."""
        scores = np.array(self._score(userids, user_items, recalculate_user), dtype=np.float64)
        broken = np.isnan(scores).any(axis=1)
        if broken.any():
            raise ValueError(f"{self.name or type(self).__name__} scored NaN for user id(s) "
                             f"{_listed(userids[broken])}: check those rows of user_items for "
                             f"NaN or infinite play counts, or refit the model (try "
                             f"{self.fit_hint})")
        return scores

    def _candidates(self, items: Any, filter_items: Any) -> np.ndarray | None:
        if items is None:
            return None
        if filter_items is not None:
            raise ValueError("pass either items or filter_items, not both")
        return _check_ids(items, "items", self.n_items)

    def similar_items(self, itemid: int | np.ndarray, N: int = 10,
                      recalculate_item: bool = False, item_users: sp.csr_matrix | None = None,
                      filter_items: np.ndarray | None = None,
                      items: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The ``N`` artists most similar to ``itemid``, the item itself first (as in
        ``implicit``; also an artist nobody played).

        Each model uses its own notion of similarity (factor cosine, its item-item weights);
        popularity and random fall back to the cosine of co-listening. Batched like
        :meth:`recommend` when ``itemid`` is an array. ``item_users`` is used only with
        ``recalculate_item=True``, which models without artist fold-in refuse with
        ``NotImplementedError``. ``items`` restricts the answer to those candidates (every
        one returned up to ``N``); ``filter_items`` leaves artists out.
        """
        self._check_fitted()
        single = np.ndim(itemid) == 0
        itemids = np.atleast_1d(np.asarray(itemid))
        if N < 1:
            raise ValueError(f"N must be at least 1, got {N}")
        if recalculate_item:
            if item_users is None:
                raise ValueError("recalculate_item=True needs item_users (one row per itemid)")
            scores = self._recalculated_item_scores(
                check_csr(item_users, "item_users").astype(np.float64))
        else:
            itemids = _check_ids(itemids, "itemid", self.n_items)
            scores = self_first(np.array(self._item_scores(itemids), dtype=np.float64), itemids)
        return self._similar(scores, single, N, filter_items, items, self.n_items)

    def _recalculated_item_scores(self, item_users: sp.csr_matrix) -> np.ndarray:
        raise NotImplementedError(f"{self.name} cannot recompute an artist from item_users "
                                  "(recalculate_item)")

    def similar_users(self, userid: int | np.ndarray, N: int = 10,
                      filter_users: np.ndarray | None = None,
                      users: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The ``N`` users most similar to ``userid``, the user itself first.

        Embedding models use the cosine of user embeddings, the others the cosine of the
        users' training rows (co-listening); popularity and random raise
        ``NotImplementedError`` (their ranking ignores the user). ``users`` restricts the
        answer, ``filter_users`` leaves users out, as in ``implicit``.
        """
        self._check_fitted()
        single = np.ndim(userid) == 0
        userids = _check_ids(np.atleast_1d(np.asarray(userid)), "userid", self.n_users)
        if N < 1:
            raise ValueError(f"N must be at least 1, got {N}")
        scores = self_first(np.array(self._user_scores(userids), dtype=np.float64), userids)
        return self._similar(scores, single, N, filter_users, users, self.n_users)

    def _similar(self, scores: np.ndarray, single: bool, N: int, filtered: Any, only: Any,
                 limit: int) -> tuple[np.ndarray, np.ndarray]:
        if only is not None and filtered is not None:
            raise ValueError("pass either the candidates or the ids to filter, not both")
        candidates = None if only is None else _check_ids(only, "items/users", limit)
        scores[np.isnan(scores)] = -np.inf
        if filtered is not None:
            scores[:, _check_ids(filtered, "filter ids", limit)] = -np.inf
        ids, values = _rank(scores, N, candidates)
        return _single(ids, values) if single else (ids, values)

    # ------------------------------------------------------------------ saving
    def _state(self) -> dict[str, np.ndarray | sp.spmatrix]:
        """The fitted arrays to save (besides the shape, ``train_`` and ``item_listeners_``)."""
        return {}

    def _set_state(self, state: dict[str, np.ndarray | sp.csr_matrix]) -> None:
        for key, value in state.items():
            setattr(self, key, value)

    def save(self, file: str | os.PathLike | IO[bytes]) -> None:
        """Write parameters and fitted arrays as a model file (:mod:`lastfm_rec.files`).

        ``file`` is a path (written exactly there, atomically) or an open binary file. An
        unfitted model saves its parameters only, as in ``implicit``; :meth:`load` gives
        it back unfitted.
        """
        write_model_file(file, self.model_file())

    def model_file(self) -> ModelFile:
        """What :meth:`save` writes: the class name, :meth:`saved_params`, the side data and
        fitted arrays (``arr:<name>``, or ``csr:<name>:data|indices|indptr|shape`` for a
        sparse one; no ``train_`` when it is None), and ``meta["shape"]``, the fitted users x
        artists (``None`` unfitted)."""
        fitted = getattr(self, "n_items", None) is not None
        state = {f"side_{k}": getattr(self, k) for k in self.side_params
                 if getattr(self, k) is not None}
        if fitted:
            if self.train_ is not None:
                state["train_"] = self.train_
            state.update(item_listeners_=self.item_listeners_, **self._state())
        shape = [int(self.n_users), int(self.n_items)] if fitted else None
        return ModelFile(type(self).__name__, self.saved_params(), _pack(state),
                         {"shape": shape})

    @classmethod
    def load(cls, file: str | os.PathLike | IO[bytes]) -> Recommender:
        """Read a model written by :meth:`save` (the class is restored from the file).

        ``file`` is a path (``path + ".npz"`` is tried when ``path`` does not exist, as
        ``implicit`` appends it) or an open binary file.

        Raises
        ------
        lastfm_rec.files.ModelFileError
            The file is damaged, of another format or version, holds another class, or
            its arrays fail the checks of :meth:`fit` (NaN or infinite values) or contradict
            the fitted shape: one line naming the file and what to do.
        """
        if not hasattr(file, "read") and not Path(file).exists() \
                and Path(f"{file}.npz").exists():
            file = f"{file}.npz"
        return cls.from_model_file(read_model_file(file))

    @classmethod
    def from_model_file(cls, content: ModelFile) -> Recommender:
        """The model in ``content`` (as :func:`~lastfm_rec.files.read_model_file` returns
        it), checked as :meth:`load` describes."""
        model_cls = _CLASSES.get(content.model)
        if model_cls is None or not issubclass(model_cls, cls):
            raise ModelFileError(content.source, f"holds a {content.model}, not a "
                                 f"{cls.__name__}", f"load it with {content.model}.load")
        try:
            model = model_cls._restored(content)
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            raise ModelFileError(content.source, "cannot rebuild the model "
                                 f"({type(exc).__name__}: {' '.join(str(exc).split())})") \
                from exc
        if getattr(model, "n_items", None) is not None:
            key = model._nonfinite_array()
            problem = f"{key} holds NaN or infinite values" if key else model._shape_problem()
            if problem:
                raise ModelFileError(content.source, problem)
        return model

    @classmethod
    def _restored(cls, content: ModelFile) -> Recommender:
        state = _unpack(content.arrays)
        side = {k: state.pop(f"side_{k}") for k in cls.side_params if f"side_{k}" in state}
        # set_params takes whatever get_params gave (nested names included), as in sklearn.
        model = cls(**side).set_params(**content.params)
        if content.meta.get("shape") is not None:
            model.n_users, model.n_items = (int(v) for v in content.meta["shape"])
            model.item_listeners_ = state.pop("item_listeners_")
            model.train_ = None  # replaced by the file's, when it has one
            model._set_state(state)
        return model


# ``isinstance(model, implicit.recommender_base.RecommenderBase)`` holds for every model.
RecommenderBase.register(Recommender)


def _pack(state: dict[str, Any]) -> dict[str, np.ndarray]:
    """Arrays and sparse matrices as the ``arr:``/``csr:`` arrays of a model file."""
    arrays: dict[str, np.ndarray] = {}
    for key, value in state.items():
        if sp.issparse(value):
            value = sp.csr_matrix(value)
            arrays[f"csr:{key}:data"] = value.data
            arrays[f"csr:{key}:indices"] = value.indices
            arrays[f"csr:{key}:indptr"] = value.indptr
            arrays[f"csr:{key}:shape"] = np.array(value.shape)
        else:
            arrays[f"arr:{key}"] = np.asarray(value)
    return arrays


def _unpack(arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """The ``arr:``/``csr:`` arrays of a model file as arrays and CSR matrices."""
    state: dict[str, Any] = {}
    for key, value in arrays.items():
        kind, _, rest = key.partition(":")
        if kind == "arr":
            state[rest] = value
        elif kind == "csr" and rest.endswith(":data"):
            base = rest[: -len(":data")]
            state[base] = sp.csr_matrix(
                (value, arrays[f"csr:{base}:indices"], arrays[f"csr:{base}:indptr"]),
                shape=tuple(arrays[f"csr:{base}:shape"]))
    return state


def _check_ids(ids: Any, what: str, limit: int, hint: str = "") -> np.ndarray:
    """``ids`` as int64 ids in ``0..limit-1``; :class:`IdOutOfRangeError` otherwise."""
    ids = np.asarray(ids).ravel()
    if ids.size and not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"{what} must be integer ids, got {ids.dtype}")
    ids = ids.astype(np.int64)
    if ids.size and (ids.min() < 0 or ids.max() >= limit):
        raise IdOutOfRangeError(f"{what} out of range 0..{limit - 1}{hint}")
    return ids


def _listed(ids: np.ndarray, shown: int = 10) -> str:
    """``ids`` as ``"3, 17, 20"``, the first ``shown`` and how many more after them."""
    text = ", ".join(str(int(i)) for i in ids[:shown])
    return text + (f" and {ids.size - shown} more" if ids.size > shown else "")


def _rank(scores: np.ndarray, N: int,
          candidates: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Top ``N`` of float64 ``scores`` (filtered entries ``-inf``), as int32 ids and float32
    scores. With ``candidates``, every candidate is ranked and kept: filtered ones get
    :data:`~lastfm_rec.ops.FILTERED_SCORE` and come last (ties to the lower id)."""
    if candidates is None:
        ids, values = top_n(scores, N)
    else:
        part = scores[:, candidates]
        ids, values = top_n(np.where(np.isneginf(part), FILTERED_SCORE, part), N)
        ids = candidates[ids].astype(np.int32)
    return ids, values.astype(np.float32)


def _single(ids: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keep = ids[0] >= 0
    return ids[0][keep], values[0][keep]


def ids_and_rows(ids: np.ndarray, rows: sp.csr_matrix,
                 name: str) -> tuple[np.ndarray, sp.csr_matrix]:
    """Ids and their rows for ``partial_fit_*``: one CSR row per id, no negative id."""
    ids = np.asarray(ids, dtype=np.int64).ravel()
    matrix = check_csr(rows, name).astype(np.float64)
    if ids.size != matrix.shape[0]:
        raise ValueError(f"{name} has {matrix.shape[0]} rows for {ids.size} ids: pass one "
                         "row per id")
    if ids.size and ids.min() < 0:
        raise IndexError(f"negative id in the ids given with {name}")
    return ids, matrix


def grown(factors: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """``factors`` with zero rows appended up to the largest id (a copy)."""
    missing = int(ids.max(initial=-1)) + 1 - factors.shape[0]
    return np.vstack([factors, np.zeros((max(missing, 0), factors.shape[1]), factors.dtype)])


class FactorRecommender(Recommender):
    """A model that scores by dot products of user and artist embeddings.

    A subclass sets ``user_factors`` (users x k) and ``item_factors`` (artists x k) in
    ``_fit`` and supplies ``_fold_in`` (embeddings of users from their rows alone, for
    ``recalculate_user=True``). Artists (and users) are similar by the cosine of their
    embeddings.
    """

    def _fold_in(self, user_items: sp.csr_matrix) -> np.ndarray:
        raise NotImplementedError

    def partial_fit_users(self, userids: np.ndarray, user_items: sp.csr_matrix) -> None:
        """Solve the given users' embeddings from their rows with the artist embeddings
        fixed (the fold-in of ``recalculate_user``), as ``implicit``'s
        ``partial_fit_users``; ids past the last user extend the model."""
        self._check_fitted()
        userids, matrix = ids_and_rows(userids, user_items, "user_items")
        self.user_factors = grown(self.user_factors, userids)
        self.user_factors[userids] = self._fold_in(matrix)
        self.n_users = self.user_factors.shape[0]
        self._cosine_users = None

    def item_vectors(self) -> np.ndarray:
        self._check_fitted()
        return self.item_factors

    def user_vectors(self, user_items: sp.csr_matrix) -> np.ndarray:
        self._check_fitted()
        return self._fold_in(check_csr(user_items, "user_items").astype(np.float64))

    def _score(self, userids: np.ndarray, user_items: sp.csr_matrix,
               recalculate_user: bool) -> np.ndarray:
        vectors = self._fold_in(user_items) if recalculate_user else self.user_factors[userids]
        # Multiply in the factors' own precision: no float64 copy of the artist factors.
        items = self.item_factors
        return (np.asarray(vectors, dtype=items.dtype) @ items.T).astype(np.float64)

    def _item_scores(self, itemids: np.ndarray) -> np.ndarray:
        unit = normalize_rows(np.asarray(self.item_factors, dtype=np.float64))
        return unit[itemids] @ unit.T

    def _user_scores(self, userids: np.ndarray) -> np.ndarray:
        unit = normalize_rows(np.asarray(self.user_factors, dtype=np.float64))
        return unit[userids] @ unit.T

    def _state(self) -> dict[str, np.ndarray | sp.spmatrix]:
        return {"user_factors": self.user_factors, "item_factors": self.item_factors}

    def _shape_problem(self) -> str | None:
        users, items = np.shape(self.user_factors), np.shape(self.item_factors)
        if len(users) != 2 or len(items) != 2 or users != (self.n_users, items[1]) \
                or items[0] != self.n_items:
            return (f"factors of shapes {users} and {items} for {self.n_users} users x "
                    f"{self.n_items} artists")
        return super()._shape_problem()


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
        return np.asarray(self.similarity_[itemids].todense())

    def _state(self) -> dict[str, np.ndarray | sp.spmatrix]:
        return {"similarity_": self.similarity_}

    def _shape_problem(self) -> str | None:
        if self.similarity_.shape != (self.n_items, self.n_items):
            return (f"similarity_ has shape {self.similarity_.shape} for {self.n_items} "
                    "artists")
        return super()._shape_problem()


def self_first(scores: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Make each row's own id (``ids[row]``) its best entry, so ``similar_items`` and
    ``similar_users`` list the query first (as ``implicit`` does), also for an artist nobody
    played. A row whose own score already beats every other is left as it is; otherwise the
    own score becomes just above the row's best (at least 0)."""
    rows = np.arange(ids.size)
    finite = np.where(np.isfinite(scores), scores, -np.inf)
    own = finite[rows, ids].copy()
    finite[rows, ids] = -np.inf
    others = finite.max(axis=1, initial=-np.inf)
    bump = own <= others
    best = np.maximum(others, 0.0)
    scores[rows[bump], ids[bump]] = best[bump] + np.maximum(np.abs(best[bump]) * 1e-6, 1e-9)
    return scores


def check_item_tags(model: Recommender) -> None:
    """Raise a one-line ``ValueError`` unless ``model.item_tags`` (when given) has one row
    per artist of the play matrix it is being fitted on."""
    if model.item_tags is not None and model.item_tags.shape[0] != model.n_items:
        raise ValueError(f"item_tags has {model.item_tags.shape[0]} rows, the play matrix "
                         f"{model.n_items} artists")


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
