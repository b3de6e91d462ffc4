"""Every registered recommender through one interface test on a block ("checkerboard")
matrix, as the ``implicit`` library tests its models, plus the registry and error paths."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
import scipy.sparse as sp
from model_registry import use_extra

from lastfm_rec import models
from lastfm_rec.models.als import ALSRecommender, tag_rows
from lastfm_rec.models.base import Recommender
from lastfm_rec.models.ease import ease_weights
from lastfm_rec.models.popularity import PopularityRecommender
from lastfm_rec.ops import memoised, reuse_results, reused_seconds, top_n

BLOCKS, USERS_PER_BLOCK, ITEMS_PER_BLOCK = 3, 12, 6
N_USERS, N_ITEMS = BLOCKS * USERS_PER_BLOCK, BLOCKS * ITEMS_PER_BLOCK

# Settings for a 36 x 18 matrix: the registry defaults are tuned for 1892 x 17632.
SMALL = {
    "als": {"factors": 6, "regularization": 0.1, "alpha": 1.0, "iterations": 20},
    "sgd-mf": {"embedding_dim": 6, "num_iterations": 300},
    "hybrid": {"als__factors": 6, "als__regularization": 0.1, "als__alpha": 1.0},
    "spark-als": {"factors": 6, "regularization": 0.01, "alpha": 1.0, "iterations": 10},
    "lightgcn": {"factors": 6, "layers": 2, "learning_rate": 0.05, "epochs": 40,
                 "eval_every": 10, "patience": 2},
    "social-lightgcn": {"factors": 6, "layers": 2, "learning_rate": 0.05, "epochs": 40,
                        "eval_every": 10, "patience": 2},
}


def block_of_user(u):
    return np.asarray(u) // USERS_PER_BLOCK


def block_items(b):
    return np.arange(b * ITEMS_PER_BLOCK, (b + 1) * ITEMS_PER_BLOCK)


def checkerboard():
    """Users of block b play every artist of block b; each misses one (``missing[u]``)."""
    rng = np.random.default_rng(0)
    rows, cols, missing = [], [], []
    for u in range(N_USERS):
        items = block_items(block_of_user(u))
        gone = items[u % ITEMS_PER_BLOCK]
        missing.append(gone)
        kept = items[items != gone]
        rows += [u] * kept.size
        cols += list(kept)
    counts = rng.integers(1, 200, len(rows)).astype(np.float64)
    train = sp.csr_matrix((counts, (rows, cols)), shape=(N_USERS, N_ITEMS))
    return train, np.array(missing)


def side_data():
    """Tags: each block's artists share 3 tags. Friends: users of a block, in a ring."""
    tag_rows = np.repeat(np.arange(N_ITEMS), 3)
    tag_cols = (np.arange(N_ITEMS) // ITEMS_PER_BLOCK * 3)[:, None] + np.arange(3)
    tags = sp.csr_matrix((np.full(tag_rows.size, 2.0), (tag_rows, tag_cols.ravel())),
                         shape=(N_ITEMS, 3 * BLOCKS))
    u = np.arange(N_USERS)
    v = block_of_user(u) * USERS_PER_BLOCK + (u + 1) % USERS_PER_BLOCK
    friends = sp.csr_matrix((np.ones(u.size), (u, v)), shape=(N_USERS, N_USERS))
    return tags, ((friends + friends.T) > 0).astype(np.float64).tocsr()


def cases() -> dict[str, tuple[str, dict]]:
    """label -> (registered name, parameters): every registered model, plus the hybrid and
    the social LightGCN with side data and sgd-mf with the original's similar-users fold-in."""
    found = {name: (name, dict(SMALL.get(name, {}))) for name in models.available()}
    tags, friends = side_data()
    found["hybrid+side"] = ("hybrid", {**SMALL["hybrid"], "item_tags": tags,
                                       "user_friends": friends, "rp3_weight": 0.5,
                                       "social_weight": 0.2, "binary_als_weight": 0.4})
    found["social-lightgcn+friends"] = ("social-lightgcn", {**SMALL["social-lightgcn"],
                                                            "user_friends": friends})
    found["sgd-mf+similar-users"] = ("sgd-mf", {**SMALL["sgd-mf"], "fold_in": "similar-users"})
    return found


@pytest.fixture(scope="module")
def train_missing():
    return checkerboard()


@pytest.fixture(scope="module", params=list(cases()))
def fitted(request, train_missing):
    name, params = cases()[request.param]
    use_extra(name, request)
    return models.create(name, **params).fit(train_missing[0])


def test_held_out_item_comes_first(fitted, train_missing):
    train, missing = train_missing
    ids, scores = fitted.recommend(np.arange(N_USERS), train, N=1)
    assert ids.shape == scores.shape == (N_USERS, 1)
    if fitted.personalised:
        assert (ids[:, 0] == missing).all(), f"{fitted!r} missed {np.sum(ids[:, 0] != missing)}"
    else:  # not personalised: only the interface is checked; short rows are padded with -1
        ids, scores = fitted.recommend(np.arange(N_USERS), train, N=N_ITEMS)
        assert ids.shape == (N_USERS, N_ITEMS)
        assert ((ids >= 0).sum(axis=1) == N_ITEMS - ITEMS_PER_BLOCK + 1).all()
        assert np.isneginf(scores[ids < 0]).all()


def test_filter_already_liked_items(fitted, train_missing):
    train, _ = train_missing
    for u in (0, 17, 35):
        ids, _ = fitted.recommend(u, train[u], N=N_ITEMS)
        assert not np.isin(ids, train[u].indices).any()
        assert ids.size == N_ITEMS - train[u].nnz
        everything, _ = fitted.recommend(u, train[u], N=N_ITEMS, filter_already_liked_items=False)
        assert np.isin(train[u].indices, everything).all()


def test_batched_equals_single(fitted, train_missing):
    train, _ = train_missing
    users = np.array([3, 14, 30, 7])
    ids, scores = fitted.recommend(users, train[users], N=5)
    assert ids.dtype == np.int32
    for row, u in enumerate(users):
        one_ids, one_scores = fitted.recommend(int(u), train[u], N=5)
        np.testing.assert_array_equal(one_ids, ids[row])
        np.testing.assert_allclose(one_scores, scores[row], rtol=1e-5)


def test_similar_items_returns_block(fitted):
    for item in (0, 8, 17):
        ids, _ = fitted.similar_items(item, N=ITEMS_PER_BLOCK)
        assert ids[0] == item
        assert set(ids) == set(block_items(item // ITEMS_PER_BLOCK))
    batch, _ = fitted.similar_items(np.array([0, 8]), N=3)
    assert batch.shape == (2, 3) and batch[0, 0] == 0 and batch[1, 0] == 8


def test_recalculate_user_for_unseen_row(fitted):
    likes = block_items(1)[:3]  # a new user who likes half of block 1
    row = sp.csr_matrix((np.full(3, 50.0), (np.zeros(3, int), likes)), shape=(1, N_ITEMS))
    ids, _ = fitted.recommend(N_USERS + 5, row, N=3, recalculate_user=True)
    assert ids.size == 3 and not np.isin(ids, likes).any()
    if fitted.personalised:
        assert set(ids) == set(block_items(1)[3:])
    batch, _ = fitted.recommend(np.array([N_USERS + 5] * 2), sp.vstack([row, row]).tocsr(), N=3,
                                recalculate_user=True)
    np.testing.assert_array_equal(batch[0], ids)
    np.testing.assert_array_equal(batch[1], ids)


def test_embedding_access(fitted, train_missing):
    train, _ = train_missing
    items = fitted.item_vectors()
    users = fitted.user_vectors(train[:3])
    if items is None:
        assert users is None
        return
    assert items.shape[0] == N_ITEMS and users.shape == (3, items.shape[1])
    ids, _ = fitted.recommend(np.arange(3), train[:3], N=3, recalculate_user=True)
    scores = users @ items.T
    for row in range(3):
        scores[row, train[row].indices] = -np.inf
        np.testing.assert_array_equal(np.argsort(-scores[row], kind="stable")[:3], ids[row])


def test_save_load_round_trip(fitted, train_missing, tmp_path):
    train, _ = train_missing
    path = tmp_path / "model.npz"
    fitted.save(path)
    loaded = Recommender.load(path)
    assert type(loaded) is type(fitted) and repr(loaded) == repr(fitted)
    users = np.arange(N_USERS)
    for a, b in zip(fitted.recommend(users, train, N=4), loaded.recommend(users, train, N=4),
                    strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    np.testing.assert_array_equal(fitted.similar_items(4, N=5)[0], loaded.similar_items(4, N=5)[0])
    row = train[2]
    np.testing.assert_array_equal(fitted.recommend(99, row, N=3, recalculate_user=True)[0],
                                  loaded.recommend(99, row, N=3, recalculate_user=True)[0])


def test_items_and_filter_items(fitted, train_missing):
    train, _ = train_missing
    only = np.array([1, 7, 12, 13])
    ids, scores = fitted.recommend(0, train[0], N=10, items=only)
    assert set(ids) == {1, 7, 12, 13} and ids[-1] == 1  # 1 is already played: ranked last
    assert scores[-1] == -np.finfo(np.float32).max
    ids, _ = fitted.recommend(0, train[0], N=N_ITEMS, filter_items=np.array([7, 8]))
    assert not np.isin([7, 8], ids).any()


# --------------------------------------------------------------------------- registry, errors

def test_registry():
    factories = models.available()
    assert {"popularity", "item-knn", "als", "hybrid"} <= set(factories)
    for name, factory in factories.items():
        model = factory()
        assert isinstance(model, Recommender) and model.name == name
        assert model.get_params() == models.create(name).get_params()
    assert models.create("als", factors=8).factors == 8
    for name, tuned in models.TUNED.items():  # the defaults are the tuned settings
        assert {k: models.create(name).get_params()[k] for k in tuned} == tuned
    with pytest.raises(ValueError, match=r"unknown model 'nope'; available: .*popularity"):
        models.create("nope")


def test_errors(train_missing):
    train, _ = train_missing
    model = models.create("item-knn")
    with pytest.raises(RuntimeError, match="call fit"):
        model.recommend(0, train[0])
    with pytest.raises(ValueError, match="CSR"):
        model.fit(train.toarray())
    model.fit(train)
    with pytest.raises(ValueError, match="one row per user"):
        model.recommend(np.array([0, 1]), train[0])
    with pytest.raises(ValueError, match="out of range"):
        model.recommend(N_USERS, train[0])
    with pytest.raises(ValueError, match="columns"):
        model.recommend(0, train[0][:, :5])
    with pytest.raises(ValueError, match="N must be"):
        model.recommend(0, train[0], N=0)
    with pytest.raises(ValueError, match="itemid out of range"):
        model.similar_items(N_ITEMS)
    with pytest.raises(ValueError, match="non-negative"):
        models.create("popularity").fit(-train)


class NaNForOddUsers(PopularityRecommender):
    """Popularity whose scores of odd user ids hold a NaN, as a broken model's would."""

    name = "nan-for-odd-users"

    def _score(self, userids, user_items, recalculate_user):
        scores = np.array(super()._score(userids, user_items, recalculate_user))
        scores[userids % 2 == 1, 4] = np.nan
        return scores


def test_nan_scores_raise_naming_the_model_and_the_users(train_missing):
    train, _ = train_missing
    model = NaNForOddUsers().fit(train)
    users = np.arange(6)
    for score in (lambda: model.recommend(users, train[users]),
                  lambda: model.score_items(users, train[users], recalculate_user=True)):
        with pytest.raises(ValueError, match=r"^nan-for-odd-users scored NaN for user id\(s\) "
                                             r"1, 3, 5: .*refit the model") as error:
            score()
        assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match=r"user id\(s\) 7:"):
        model.recommend(7, train[7])
    many = np.arange(1, 2 * 13, 2)
    with pytest.raises(ValueError, match=r"1, 3, .*, 19 and 3 more:"):
        model.recommend(many, train[many])
    ids, scores = model.recommend(2, train[2], N=3)  # even users score normally
    assert ids.size == 3 and np.isfinite(scores).all()


def test_top_n_breaks_ties_at_the_cut_by_lower_id() -> None:
    # argpartition alone picks CPU-dependent members of a tie at the cut; the result must be
    # the stable order (score descending, then id) on every machine.
    rng = np.random.default_rng(3)
    for _ in range(200):
        width = int(rng.integers(1, 40))
        n = int(rng.integers(1, width + 1))
        scores = rng.integers(-3, 4, size=(int(rng.integers(1, 5)), width)).astype(float)
        scores[rng.random(scores.shape) < 0.2] = -np.inf
        ids, values = top_n(scores.copy(), n)
        expected = np.argsort(-scores, kind="stable", axis=1)[:, :n]
        expected_values = np.take_along_axis(scores, expected, axis=1)
        np.testing.assert_array_equal(ids, np.where(np.isneginf(expected_values), -1, expected))
        np.testing.assert_array_equal(values, expected_values)


# ----------------------------------------------------- reuse, EASE, tag-aware ALS

def test_memoised_computes_once_per_input_inside_reuse_results_only() -> None:
    calls = []

    def compute() -> np.ndarray:
        calls.append(1)
        return np.arange(3.0)

    key = np.ones((2, 2))
    memoised("k", compute, key)
    memoised("k", compute, key)
    assert len(calls) == 2  # outside a block nothing is kept
    with reuse_results():
        first = memoised("k", compute, key, {"a": 1})
        first[0] = 99.0  # a caller changing its result must not change the stored one
        again = memoised("k", compute, key.copy(), {"a": 1})
        memoised("k", compute, key, {"a": 2})
        memoised("k", compute, sp.csr_matrix(key))
    assert len(calls) == 5 and again[0] == 0.0
    memoised("k", compute, key, {"a": 1})
    assert len(calls) == 6  # forgotten when the block ends


def test_reused_seconds_count_the_first_computations_time() -> None:
    def slow() -> int:
        time.sleep(0.05)
        return 1

    before = reused_seconds()
    with reuse_results():
        memoised("slow", slow, 1)
        assert reused_seconds() == before  # computed, not reused
        memoised("slow", slow, 1)
    assert reused_seconds() - before >= 0.05


@pytest.mark.parametrize("users", [60, 10])  # more rows than artists, and fewer (Woodbury)
def test_ease_weights_equal_the_general_inverse_and_reject_a_singular_system(users) -> None:
    rng = np.random.default_rng(4)
    x = sp.csr_matrix((rng.random((users, 25)) < 0.3).astype(np.float64))
    vectors = sp.csr_matrix(rng.random((25, 4)))
    for weight in (2.0, 0.0):
        gram = (x.T @ x).toarray() + weight * (vectors @ vectors.T).toarray()
        inverse = np.linalg.inv(gram + 5.0 * np.eye(25))
        expected = -inverse / np.diag(inverse)
        np.fill_diagonal(expected, 0.0)
        for dtype, tolerance in ((np.float64, 1e-6), (np.float32, 1e-5)):
            got = ease_weights(x, 5.0, vectors, weight, dtype=dtype)
            np.testing.assert_allclose(got, expected, atol=tolerance)
    with pytest.raises(np.linalg.LinAlgError, match="larger l2"):
        ease_weights(sp.csr_matrix((3, 4)), 0.0)
    with pytest.raises(np.linalg.LinAlgError, match="larger l2"):
        ease_weights(sp.csr_matrix((5, 4)), 0.0)


def test_tag_rows_keep_tags_on_enough_artists_with_log_counts() -> None:
    tags = sp.csr_matrix(np.array([[3, 1], [1, 0], [1, 0], [1, 0], [2, 0], [0, 0]], float))
    rows = tag_rows(tags, 2.0)
    assert rows.shape == (1, 6)  # tag 1 is on one artist only
    np.testing.assert_allclose(rows.toarray()[0], 2.0 * np.log1p([3, 1, 1, 1, 2, 0]))


def test_als_with_tags_learns_from_them_and_keeps_one_row_per_user() -> None:
    rng = np.random.default_rng(5)
    plays = sp.csr_matrix((rng.random((30, 20)) < 0.3) * rng.integers(1, 50, (30, 20)),
                          dtype=np.float64)
    tags = sp.csr_matrix((rng.random((20, 8)) < 0.5).astype(np.float64))
    small = {"factors": 4, "regularization": 0.1, "iterations": 5}
    plain_fit = ALSRecommender(**small).fit(plays, show_progress=False)
    ignored = ALSRecommender(**small, item_tags=tags).fit(plays, show_progress=False)
    tagged = ALSRecommender(**small, item_tags=tags, tag_weight=2.0).fit(plays,
                                                                       show_progress=False)
    np.testing.assert_array_equal(ignored.item_factors, plain_fit.item_factors)
    assert tagged.user_factors.shape == plain_fit.user_factors.shape == (30, 4)
    assert not np.allclose(tagged.item_factors, plain_fit.item_factors)
    with pytest.raises(ValueError, match="item_tags has 19 rows"):
        ALSRecommender(**small, item_tags=tags[:19], tag_weight=1.0).fit(plays)


def test_solvers_never_take_more_threads_than_they_were_given() -> None:
    from threadpoolctl import threadpool_limits

    from lastfm_rec.ops import solver_threads

    with threadpool_limits(1):
        assert solver_threads() == 1
    with threadpool_limits(2):
        assert solver_threads() == min(2, os.cpu_count() or 1)


@pytest.mark.parametrize("factors", [8, 64])
def test_als_gives_the_same_bytes_on_one_thread_and_two(factors: int) -> None:
    from threadpoolctl import threadpool_limits

    plays = sp.random(300, 200, density=0.05, format="csr",
                      random_state=np.random.default_rng(7))
    plays.data = np.ceil(plays.data * 50)
    fits = []
    for threads in (1, 2):
        with threadpool_limits(threads):
            model = ALSRecommender(factors=factors, iterations=5).fit(plays)
            assert model._implicit_model().num_threads == min(threads, os.cpu_count() or 1)
            fits.append((model.user_factors.copy(), model.item_factors.copy(),
                         model.recommend(np.arange(10), plays[:10], N=5,
                                         recalculate_user=True)))
    for one, two in zip(*fits, strict=True):
        np.testing.assert_array_equal(one, two)


def test_a_reused_als_fit_folds_new_users_in() -> None:
    plays = sp.random(30, 20, density=0.3, format="csr", random_state=np.random.default_rng(1))
    with reuse_results():
        first = ALSRecommender(factors=4, iterations=2).fit(plays, show_progress=False)
        reused = ALSRecommender(factors=4, iterations=2).fit(plays, show_progress=False)
        ids, _ = reused.recommend(np.arange(3), plays[:3], N=5, recalculate_user=True)
    np.testing.assert_array_equal(reused.item_factors, first.item_factors)
    assert ids.shape == (3, 5)


@pytest.mark.parametrize("size", [1, 7, 512, 513, 1100])
@pytest.mark.parametrize("order", ["C", "F"])
def test_the_inverse_is_mirrored_in_place_as_a_whole_copy_would(size: int, order: str) -> None:
    from lastfm_rec.models.ease import _mirror_upper

    square = np.asarray(np.random.default_rng(size).random((size, size), dtype=np.float32),
                        order=order)
    expected = np.triu(square) + np.triu(square, 1).T
    mirrored = _mirror_upper(square)
    assert mirrored is square
    np.testing.assert_array_equal(mirrored, expected)
