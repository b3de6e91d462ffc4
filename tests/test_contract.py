"""The ``implicit`` 0.7 ``RecommenderBase`` contract, run on every registered model.

The cases follow ``implicit``'s own base-class tests (``tests/recommender_base_test.py``:
the checkerboard, batches, ``recalculate_user``, ``similar_items``/``similar_users`` with
filters and candidates, zero-length rows and columns, dtypes, non-CSR input, ``items=`` with
liked candidates last, out-of-range ids) plus what this package promises on top (float32
scores, non-increasing scores, save/load by path and open file, an unfitted model saved,
``ModelFitError``, the fit callback, ``partial_fit_*`` or ``NotImplementedError``).
The cases are one mixin, :class:`RecommenderContract`; :class:`TestRegisteredModels` runs it
on every name of :func:`lastfm_rec.models.available`, so a newly registered model is covered
automatically. The non-personalised baselines (``personalised = False``) skip only
the ranking-quality assertions they cannot meet by design.
"""

from __future__ import annotations

import copy
import io
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from implicit.evaluation import precision_at_k
from implicit.recommender_base import ModelFitError as ImplicitModelFitError
from implicit.recommender_base import RecommenderBase
from implicit.utils import ParameterWarning
from model_registry import SMALL, registered, use_extra

from lastfm_rec import models
from lastfm_rec.models.base import FactorRecommender, ModelFitError, Recommender
from lastfm_rec.ops import FILTERED_SCORE

NAMES = registered()
SIZE = 50


def checker_board(size: int, seed: int = 0) -> sp.csr_matrix:
    """``implicit``'s checkerboard with play counts: even users played every even artist, odd
    users every odd one, each user's own id (the diagonal) held out."""
    rng = np.random.default_rng(seed)
    plays = np.zeros((size, size))
    for user in range(size):
        plays[user, user % 2::2] = rng.integers(1, 100, plays[user, user % 2::2].size)
    np.fill_diagonal(plays, 0)
    return sp.csr_matrix(plays)


def build(name: str) -> Recommender:
    return models.create(name, **SMALL.get(name, {}))


def fit(name: str, matrix: sp.spmatrix) -> Recommender:
    return build(name).fit(matrix, show_progress=False)


@pytest.fixture(scope="module")
def board() -> sp.csr_matrix:
    return checker_board(SIZE)


def non_increasing(scores: np.ndarray) -> bool:
    return bool(np.all(np.diff(np.atleast_2d(scores), axis=1) <= 0))


def assert_same_ranking(ids: np.ndarray, scores: np.ndarray, other_ids: np.ndarray,
                        other_scores: np.ndarray) -> None:
    """Equal scores, and equal ids wherever the score is not tied within float rounding.

    A batch (matrix-matrix product) and a single user (matrix-vector) can round the same
    score differently in its last bit, which reorders artists whose exact scores tie (as
    exact ALS gives artists with identical columns of the checkerboard).
    """
    np.testing.assert_allclose(other_scores, scores, rtol=1e-5, atol=1e-6)
    tied = np.isclose(scores[:, None], scores[None, :], rtol=1e-5, atol=1e-6).sum(axis=1) > 1
    np.testing.assert_array_equal(other_ids[~tied], ids[~tied])


class RecommenderContract:
    """Mixin: ``implicit``'s ``RecommenderBase`` contract as this package promises it.

    A test class inheriting it provides a ``name`` fixture (a registered model name); the
    mixin builds the model with ``model_registry.SMALL`` settings, fits it on the
    checkerboard once for the class and runs every case on that fit; only the cases about
    fitting itself (other inputs, a callback, a poisoned fit) fit again. A case that changes
    the model works on a copy. ``personalised = False`` models skip only the ranking-quality
    assertions.
    """

    @pytest.fixture(scope="class", autouse=True)
    @classmethod
    def extra(cls, name, request) -> None:
        use_extra(name, request)

    @pytest.fixture(scope="class")
    @classmethod
    def fitted(cls, name, board) -> Recommender:
        return fit(name, board)

    # ----------------------------------------------------------------------- recommend

    def test_held_out_item_first(self, fitted, board):
        """Each user's held-out artist (their own id) is the top recommendation."""
        for user in range(SIZE):
            ids, scores = fitted.recommend(user, board[user], N=1)
            assert ids.shape == scores.shape == (1,)
            if fitted.personalised:
                assert ids[0] == user, f"{fitted!r}: user {user} got {ids[0]}"
        ids, _ = fitted.recommend(0, board[0], N=10000)  # more than there are: what is left
        assert 0 < len(ids) <= SIZE - board[0].nnz
        ids, _ = fitted.recommend(0, board[0], N=1, filter_items=[0])
        assert 0 not in ids

    def test_types_and_order(self, fitted, board):
        assert isinstance(fitted, RecommenderBase)
        ids, scores = fitted.recommend(np.arange(SIZE), board, N=5)
        assert ids.dtype == np.int32 and scores.dtype == np.float32
        assert non_increasing(scores)
        ids, scores = fitted.similar_items(np.arange(5), N=5)
        assert ids.dtype == np.int32 and scores.dtype == np.float32 and non_increasing(scores)

    def test_batch_matches_single(self, fitted, board):
        users = np.arange(SIZE)
        for liked in (True, False):
            ids, scores = fitted.recommend(users, board[users], N=5,
                                           filter_already_liked_items=liked)
            for user in users:
                one_ids, one_scores = fitted.recommend(user, board[user], N=5,
                                                       filter_already_liked_items=liked)
                assert_same_ranking(ids[user], scores[user], one_ids, one_scores)
        ids, _ = fitted.recommend(np.array([2, 3, 4]), board[[2, 3, 4]], N=1, filter_items=[0])
        assert 0 not in ids

    def test_recalculate_user(self, fitted, board):
        users = np.arange(SIZE)
        batch_ids, _ = fitted.recommend(users, board, N=1, recalculate_user=True)
        if not fitted.personalised:  # random orders by the id itself: only the shape is checked
            assert batch_ids.shape == (SIZE, 1)
            return
        for user in users:  # implicit passes id 0: a folded-in user is known by the row alone
            ids, _ = fitted.recommend(0, board[user], N=1, recalculate_user=True)
            assert ids[0] == batch_ids[user, 0] == user

    def test_implicit_precision_at_k(self, fitted, board):
        precision = precision_at_k(fitted, board, sp.csr_matrix(np.eye(SIZE)), K=1,
                                   show_progress=False)
        if fitted.personalised:
            assert precision == 1
        else:
            assert 0 <= precision < 1

    def test_items_keep_liked_candidates_last(self, fitted, board):
        selected = np.array([1, 2, 3, 4, 5, 6])  # user 0 played 2, 4 and 6
        ids, scores = fitted.recommend(0, board[0], items=selected, N=20)
        assert len(ids) == len(selected) and set(ids) == set(selected)
        assert set(ids[3:]) == {2, 4, 6} and (scores[3:] == FILTERED_SCORE).all()
        assert non_increasing(scores)
        rng = np.random.default_rng(1)
        for user in range(0, SIZE, 7):
            chosen = rng.choice(SIZE, 10, replace=False).tolist()
            ids, _ = fitted.recommend(user, board[user], items=chosen,
                                      filter_already_liked_items=False)
            assert set(ids) == set(chosen)
            for wrong in ([-1, -3, -5], [51, 300, 200]):
                with pytest.raises(IndexError):
                    fitted.recommend(user, board[user], items=chosen + wrong)
        ids, _ = fitted.recommend(np.arange(SIZE), board, items=np.arange(10) * 3)
        for row in ids:
            assert set(row) == set(np.arange(10) * 3)
        with pytest.raises(ValueError, match="not both"):
            fitted.recommend(0, board[0], items=[1, 2], filter_items=[3])

    def test_out_of_range_ids(self, fitted, board):
        with pytest.raises(IndexError):
            fitted.recommend(SIZE, board[0])
        with pytest.raises(IndexError):
            fitted.recommend(0, board[0], filter_items=[SIZE])
        with pytest.raises(IndexError):
            fitted.similar_items(SIZE)
        with pytest.raises(IndexError):
            fitted.similar_items(-1)

    def test_recommend_needs_csr(self, fitted, board):
        for other in (board.tocsc(), board.tocoo(), board.toarray()):
            with pytest.raises(ValueError, match="CSR"):
                fitted.recommend(np.arange(SIZE), other)

    # ------------------------------------------------------------ similar items

    def test_similar_items(self, fitted, board):
        for item in range(SIZE):
            ids, scores = fitted.similar_items(item, N=10)
            assert ids[0] == item and (ids % 2 == item % 2).all() and non_increasing(scores)
            again = fitted.similar_items(item, N=10, item_users=board.T.tocsr()[item])
            # item_users only counts when recalculating
            np.testing.assert_array_equal(ids, again[0])
        ids, _ = fitted.similar_items(np.arange(SIZE), N=10)
        assert ids.shape == (SIZE, 10) and (ids[:, 0] == np.arange(SIZE)).all()
        assert (ids % 2 == (np.arange(SIZE) % 2)[:, None]).all()

    def test_similar_items_recalculated(self, fitted, board):
        try:
            ids, _ = fitted.similar_items(np.arange(SIZE), N=10, recalculate_item=True,
                                          item_users=board.T.tocsr())
        except NotImplementedError:
            return
        assert ids.shape == (SIZE, 10) and (ids[:, 0] == np.arange(SIZE)).all()
        assert (ids % 2 == (np.arange(SIZE) % 2)[:, None]).all()

    def test_similar_items_filter_and_candidates(self, fitted):
        ids, _ = fitted.similar_items(np.arange(SIZE), N=10, filter_items=np.arange(10) * 5)
        assert not (ids % 5 == 0).any()
        ids, _ = fitted.similar_items(np.arange(SIZE), N=10, items=np.arange(10))
        for row in ids:
            assert set(row) == set(range(10))

    def test_zero_length_row_and_column(self, name):
        plays = checker_board(SIZE).toarray()
        plays[[42, 49]] = 0
        plays[:, [42, 49]] = 0
        model = fit(name, sp.csr_matrix(plays))
        for item in range(40):  # an artist nobody played is similar to nothing ...
            ids, _ = model.similar_items(item, 10)
            assert 42 not in ids and 49 not in ids
        for item in (42, 49):  # ... but first in its own list
            assert model.similar_items(item, N=5)[0][0] == item
        ids, _ = model.recommend(42, sp.csr_matrix(plays)[42], N=3)
        assert len(ids) == 3

    # ------------------------------------------------------------ similar users

    def test_similar_users(self, fitted):
        try:
            ids, scores = fitted.similar_users(np.arange(SIZE), N=10)
        except NotImplementedError:
            assert not fitted.personalised
            return
        assert ids.shape == (SIZE, 10) and (ids[:, 0] == np.arange(SIZE)).all()
        np.testing.assert_allclose(scores[:, 0], 1.0, atol=1e-4)
        assert (ids % 2 == (np.arange(SIZE) % 2)[:, None]).all() and non_increasing(scores)
        one_ids, one_scores = fitted.similar_users(3, N=10)
        assert_same_ranking(ids[3], scores[3], one_ids, one_scores)
        ids, _ = fitted.similar_users(np.arange(SIZE), N=10, filter_users=np.arange(10) * 5)
        assert not (ids % 5 == 0).any()
        ids, _ = fitted.similar_users(np.arange(SIZE), N=10, users=np.arange(10))
        for row in ids:
            assert set(row) == set(range(10))
        with pytest.raises(IndexError):
            fitted.similar_users(SIZE)

    # ------------------------------------------------------------------ fitting

    def test_dtypes_and_formats_fit_alike(self, name, fitted, board):
        reference = fitted.recommend(np.arange(SIZE), board, N=3)[0]
        same = fit(name, board.astype(np.float32)).recommend(np.arange(SIZE), board, N=3)[0]
        np.testing.assert_array_equal(reference, same)
        for other in (board.tocoo(), board.tolil()):
            with pytest.warns(ParameterWarning, match="CSR"):
                model = fit(name, other)
            np.testing.assert_array_equal(model.recommend(np.arange(SIZE), board, N=3)[0],
                                          reference)

    def test_score_items_is_the_block_recommend_ranks(self, fitted, board):
        model = fitted
        users = np.arange(6)
        block = model.score_items(users, board[users])
        assert block.shape == (6, SIZE) and block.dtype == np.float64
        ids, scores = model.recommend(users, board[users], N=SIZE,
                                      filter_already_liked_items=False)
        ranked = ids >= 0  # an artist the model cannot score (-inf) is left out
        np.testing.assert_array_equal(
            scores[ranked], np.take_along_axis(block, np.maximum(ids, 0), axis=1)[ranked]
            .astype(np.float32))
        assert (ranked.sum(axis=1) == np.isfinite(block).sum(axis=1)).all()
        np.testing.assert_allclose(model.score_items(4, board[4]), block[4], rtol=1e-5,
                                   atol=1e-6)
        folded = model.score_items(np.array([SIZE]), board[[4]], recalculate_user=True)
        assert folded.shape == (1, SIZE) and not np.isnan(folded).any()
        with pytest.raises(IndexError, match="recalculate_user=True"):
            model.score_items(SIZE, board[4])

    def test_fit_callback(self, name, board):
        calls = []
        build(name).fit(board, show_progress=False, callback=lambda *args: calls.append(args))
        assert calls, "the callback was never called"
        iteration, elapsed, loss = calls[-1]
        assert isinstance(iteration, int) and elapsed >= 0 and isinstance(loss, float)

    def test_diverged_fit_raises(self, name, fitted, board, monkeypatch):
        """NaN left in any learned array ends the fit with ModelFitError (also implicit's)."""
        learned = [v.data if sp.issparse(v) else np.asarray(v)
                   for v in fitted._state().values()]
        if not any(np.issubdtype(v.dtype, np.floating) for v in learned):
            return  # nothing learned (popularity, random)
        model_cls = type(build(name))
        original = model_cls._fit

        def poisoned(self, *args, **kwargs):
            original(self, *args, **kwargs)
            for value in self._state().values():
                values = value.data if sp.issparse(value) else value
                if np.issubdtype(np.asarray(values).dtype, np.floating) and np.size(values):
                    np.asarray(values).flat[0] = np.nan
                    return

        monkeypatch.setattr(model_cls, "_fit", poisoned)
        model = build(name)
        with pytest.raises(ImplicitModelFitError, match=rf"{name} diverged: .*try ") as error:
            model.fit(board, show_progress=False)
        assert isinstance(error.value, ModelFitError)

    def test_partial_fit_users_or_not_implemented(self, fitted, board):
        model = copy.deepcopy(fitted)  # partial fits change the model
        try:
            model.partial_fit_users(np.array([SIZE]), board[[4]])  # a new user who plays as 4
        except NotImplementedError:
            assert not isinstance(model, FactorRecommender)  # no per-user state to update
            return
        assert model.n_users == SIZE + 1
        np.testing.assert_array_equal(model.recommend(SIZE, board[4], N=1)[0],
                                      model.recommend(4, board[4], N=1)[0])

    def test_partial_fit_items_or_not_implemented(self, fitted, board):
        model = copy.deepcopy(fitted)
        try:
            model.partial_fit_items(np.array([SIZE]), board.T.tocsr()[[6]])  # a copy of artist 6
        except NotImplementedError:
            return
        assert model.n_items == SIZE + 1
        assert model.similar_items(SIZE, N=2)[0][1] % 2 == 0  # like artist 6: an even one

    # ------------------------------------------------------------------- saving

    def test_save_load_path_and_file(self, fitted, board, tmp_path):
        users = np.arange(SIZE)
        expected = fitted.recommend(users, board, N=4)
        buffer = io.BytesIO()
        fitted.save(buffer)
        buffer.seek(0)
        fitted.save(tmp_path / "model.npz")
        for loaded in (Recommender.load(buffer), type(fitted).load(tmp_path / "model.npz"),
                       Recommender.load(str(tmp_path / "model"))):  # ".npz" appended, as implicit
            assert type(loaded) is type(fitted) and loaded.get_params() == fitted.get_params()
            for a, b in zip(expected, loaded.recommend(users, board, N=4), strict=True):
                np.testing.assert_allclose(a, b, rtol=1e-6)
            np.testing.assert_array_equal(fitted.similar_items(4, N=5)[0],
                                          loaded.similar_items(4, N=5)[0])
        assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]  # no temporary file left

    def test_unfitted_model_saves(self, name, tmp_path):
        model = build(name)
        model.save(tmp_path / "unfitted.npz")
        loaded = Recommender.load(tmp_path / "unfitted.npz")
        assert type(loaded) is type(model) and loaded.get_params() == model.get_params()
        with pytest.raises(RuntimeError, match="call fit"):
            loaded.recommend(0, sp.csr_matrix((1, 3)))


class TestRegisteredModels(RecommenderContract):
    """The contract on every registered model (a new registration is covered)."""

    @pytest.fixture(scope="class", params=NAMES)
    @classmethod
    def name(cls, request) -> str:
        return request.param


def test_sgd_mf_divergence_is_reported(board):
    with pytest.raises(ModelFitError, match=r"sgd-mf diverged.*learning_rate"):
        models.create("sgd-mf", embedding_dim=4, num_iterations=100,
                      learning_rate=1e4).fit(board, show_progress=False)


def test_sgd_mf_gives_unplayed_artists_zero_vectors():
    plays = checker_board(SIZE).toarray()
    plays[:, 7] = 0
    model = fit("sgd-mf", sp.csr_matrix(plays))
    assert not model.item_vectors()[7].any()
    ids, scores = model.similar_items(3, N=SIZE)
    assert scores[list(ids).index(7)] == 0  # cosine 0: not a neighbour of anything


def test_no_warnings_on_csr_fit(board):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ParameterWarning)
        fit("item-knn", board)
