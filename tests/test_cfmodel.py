"""The matrix-factorisation model: objective terms, solvers, reproducibility, save/load.

Everything runs on tiny seeded matrices (a few hundred ratings), so the file stays fast.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from lastfm_rec.files import ModelFileError, read_model_file
from lastfm_rec.models import create

cf = pytest.importorskip("lastfm_rec.original.cfmodel")
tf = cf.tf

ROOT = Path(__file__).resolve().parents[1]
N_USERS, N_ARTISTS, RANK = 30, 40, 2
HYPER = {"embedding_dim": 3, "regularization_coeff": 0.1, "gravity_coeff": 1.0,
         "init_stddev": 0.5}


def low_rank_ratings(seed: int = 0, density: float = 0.5) -> pd.DataFrame:
    """Observed entries of a rank-2 matrix with values in [0, 1], ids in shuffled order."""
    rng = np.random.default_rng(seed)
    truth = rng.random((N_USERS, RANK)) @ rng.random((RANK, N_ARTISTS))
    truth /= truth.max()
    mask = rng.random((N_USERS, N_ARTISTS)) < density
    mask[:, 0] = mask[0, :] = True  # every user and artist has a rating
    u, a = np.nonzero(mask)
    order = rng.permutation(u.size)
    return pd.DataFrame({"u_id": u[order], "a_id": a[order], "w_mm": truth[u, a][order]})


@pytest.fixture(scope="module")
def ratings() -> pd.DataFrame:
    return low_rank_ratings()


def run_in_graph(build):
    """Build tensors with ``build()`` in a fresh graph and evaluate them."""
    graph = tf.Graph()
    with graph.as_default():
        fetches = build()
        with tf.Session(graph=graph) as session:
            return session.run(fetches)


def objective_numpy(frame: pd.DataFrame, U: np.ndarray, V: np.ndarray, lam_r: float,
                    lam_g: float) -> dict[str, float]:
    u, a, w = frame["u_id"].to_numpy(), frame["a_id"].to_numpy(), frame["w_mm"].to_numpy()
    U, V = U.astype(np.float64), V.astype(np.float64)
    mse = np.mean((w - np.sum(U[u] * V[a], axis=1)) ** 2)
    reg = lam_r * (np.sum(U ** 2) / len(U) + np.sum(V ** 2) / len(V))
    grav = lam_g * np.sum((U @ V.T) ** 2) / (len(U) * len(V))
    return {"observed_loss": mse, "regularization_loss": reg, "gravity_loss": grav,
            "total_loss": mse + reg + grav}


# ---------------------------------------------------------------------- objective terms


def test_sparse_tensor_is_canonical(ratings):
    def build():
        sparse = cf.build_rating_sparse_tensor(ratings, N_USERS, N_ARTISTS)
        return sparse.indices, sparse.values, sparse.dense_shape

    indices, values, shape = run_in_graph(build)
    assert list(shape) == [N_USERS, N_ARTISTS]
    assert values.dtype == np.float32
    keys = indices[:, 0] * N_ARTISTS + indices[:, 1]
    assert np.all(np.diff(keys) > 0)  # row-major sorted, no repeats
    dense = np.zeros((N_USERS, N_ARTISTS))
    dense[ratings["u_id"], ratings["a_id"]] = ratings["w_mm"]
    np.testing.assert_allclose(values, dense[indices[:, 0], indices[:, 1]], rtol=1e-6)


def test_sparse_tensor_rejects_bad_input(ratings):
    with pytest.raises(ValueError, match="u_id"):
        cf.build_rating_sparse_tensor(ratings, N_USERS - 1, N_ARTISTS)
    with pytest.raises(ValueError, match="more than once"):
        cf.build_rating_sparse_tensor(pd.concat([ratings, ratings.head(1)]),
                                      N_USERS, N_ARTISTS)
    with pytest.raises(ValueError, match="w_mm"):
        cf.build_rating_sparse_tensor(ratings.drop(columns="w_mm"), N_USERS, N_ARTISTS)


def test_objective_terms_match_numpy(ratings):
    rng = np.random.default_rng(3)
    U = rng.normal(size=(N_USERS, 4)).astype(np.float32)
    V = rng.normal(size=(N_ARTISTS, 4)).astype(np.float32)
    expected = objective_numpy(ratings, U, V, 1.0, 1.0)

    def build():
        sparse = cf.build_rating_sparse_tensor(ratings, N_USERS, N_ARTISTS)
        empty = cf.build_rating_sparse_tensor(ratings.head(0), N_USERS, N_ARTISTS)
        return (cf.sparse_mean_square_error(sparse, U, V), cf.regularization(U, V),
                cf.gravity(U, V), cf.sparse_mean_square_error(empty, U, V))

    mse, reg, grav, empty_mse = run_in_graph(build)
    assert mse == pytest.approx(expected["observed_loss"], rel=1e-5)
    assert reg == pytest.approx(expected["regularization_loss"], rel=1e-5)
    assert grav == pytest.approx(expected["gravity_loss"], rel=1e-5)
    # gravity is the mean squared prediction over all pairs: sum((UᵀU)∘(VᵀV)) = ||UVᵀ||²
    assert grav == pytest.approx(np.mean((U.astype(float) @ V.T.astype(float)) ** 2),
                                 rel=1e-5)
    assert np.isnan(empty_mse)


def test_hand_gradient_matches_autodiff(ratings):
    model = cf.build_model(ratings, **HYPER)
    objective = model._objective
    U, V = model._embedding_vars["u_id"], model._embedding_vars["a_id"]
    with model.graph.as_default():
        auto = tf.gradients(model.loss, [U, V])
        hand = objective.gradients(U.read_value(), V.read_value())
    session = model.session()
    auto_vals, hand_vals = session.run((auto, hand))
    for a, h in zip(auto_vals, hand_vals, strict=True):
        np.testing.assert_allclose(h, a, rtol=1e-4, atol=1e-7)
    model.close()


# ---------------------------------------------------------------------- training


def test_metrics_shape_history_and_decreasing_loss(ratings):
    model = cf.build_model(ratings, **HYPER)
    assert model.embeddings == {"u_id": None, "a_id": None}
    results = model.train(250, learning_rate=5.0, plot_results=False, show_progress=False)
    assert [list(group) for group in results] == [list(cf.LOSS_NAMES),
                                                  list(cf.LOSS_COMPONENTS)]
    assert all(type(v) is float for group in results for v in group.values())
    history = model.history
    assert list(history.columns) == ["iteration", *cf.METRIC_NAMES]
    assert history["iteration"].tolist() == [0, 100, 200, 250]
    assert np.all(np.diff(history["total_loss"]) < 0)
    last = history.iloc[-1]
    assert last["observed_loss"] == results[1]["observed_loss"]
    parts = last[list(cf.LOSS_COMPONENTS)].sum()
    assert last["total_loss"] == pytest.approx(parts, rel=1e-5)
    # The reported metrics describe the returned embeddings.
    train = model.train_ratings
    expected = objective_numpy(train, model.embeddings["u_id"], model.embeddings["a_id"],
                               HYPER["regularization_coeff"], HYPER["gravity_coeff"])
    for name in (*cf.LOSS_COMPONENTS, "total_loss"):
        assert last[name] == pytest.approx(expected[name], rel=1e-4, abs=1e-7)
    assert model.embeddings["u_id"].shape == (N_USERS, 3)
    assert model.embeddings["a_id"].shape == (N_ARTISTS, 3)
    assert model.embeddings["u_id"].dtype == np.float32
    assert len(model.train_ratings) + len(model.test_ratings) == len(ratings)
    model.close()


def test_low_rank_matrix_is_recovered(ratings):
    gd = cf.build_model(ratings, embedding_dim=RANK, regularization_coeff=0.,
                        init_stddev=0.5, seed=1)
    start = gd.train(0, plot_results=False, show_progress=False)[0]["train_error_observed"]
    gd_error = gd.train(600, learning_rate=20.0, plot_results=False,
                        show_progress=False)[0]["train_error_observed"]
    assert gd_error < 5e-3 < start
    als = cf.build_model(ratings, embedding_dim=RANK, regularization_coeff=0.,
                         init_stddev=0.5, seed=1, solver="als")
    errors = als.train(30, plot_results=False, show_progress=False)[0]
    assert errors["train_error_observed"] < 1e-6
    assert errors["test_error_observed"] < 1e-4  # held-out entries of the same rank-2 matrix
    gd.close()
    als.close()


def test_fast_path_matches_reference_loop(ratings):
    def final_loss(**train_args):
        model = cf.build_model(ratings, **HYPER)
        model.train(300, learning_rate=5.0, plot_results=False, show_progress=False, **train_args)
        loss = model.history["total_loss"].iloc[-1]
        embeddings = model.embeddings
        model.close()
        return loss, embeddings

    fast, fast_emb = final_loss()
    reference, ref_emb = final_loss(fast=False)
    explicit, _ = final_loss(optimizer=tf.train.GradientDescentOptimizer)
    assert fast == pytest.approx(reference, rel=5e-3)
    assert fast == pytest.approx(reference, rel=1e-4)  # in fact the same steps
    assert explicit == reference
    np.testing.assert_allclose(fast_emb["u_id"], ref_emb["u_id"], atol=1e-4)


def skewed_ratings(seed: int = 3) -> pd.DataFrame:
    """Degrees from 1 to 60, popular and unrated artists, users without ratings."""
    rng = np.random.default_rng(seed)
    n_users, n_artists = 80, 120
    degrees = np.minimum(rng.zipf(1.6, n_users), 60)
    degrees[:3] = (60, 45, 33)
    popularity = 1. / np.arange(1, n_artists + 1) ** 1.1
    pairs = [(u, a) for u, d in enumerate(degrees)
             for a in rng.choice(n_artists - 5, size=d, replace=False,
                                 p=popularity[:-5] / popularity[:-5].sum())]
    u, a = np.array(pairs).T
    return pd.DataFrame({"u_id": u, "a_id": a, "w_mm": rng.random(len(u))})


def test_fast_path_matches_reference_on_skewed_degrees():
    """Skewed degrees, users and artists without training entries: the same loss as the
    original's loop, and the same bytes twice."""
    ratings = skewed_ratings()
    args = dict(HYPER, n_users=85, n_artists=125, seed=5)

    def train(**train_args):
        model = cf.build_model(ratings, **args)
        model.train(200, learning_rate=20.0, plot_results=False, show_progress=False,
                    **train_args)
        model.close()
        return model.history["total_loss"], model.embeddings

    fast, fast_emb = train()
    _, again_emb = train()
    reference, ref_emb = train(fast=False)
    assert fast.iloc[-1] < 0.5 * fast.iloc[0]
    assert fast.iloc[-1] == pytest.approx(reference.iloc[-1], rel=1e-4)
    for key in ("u_id", "a_id"):
        np.testing.assert_allclose(fast_emb[key], ref_emb[key], atol=1e-4)
        np.testing.assert_array_equal(fast_emb[key], again_emb[key])


def train_fast(ratings: pd.DataFrame, steps: int, learning_rate: float, chunks=None,
               **build_args) -> tuple[float, dict[str, np.ndarray]]:
    """Final total loss and embeddings after ``steps`` fast-path steps (in ``train`` calls of
    ``chunks`` steps when given)."""
    model = cf.build_model(ratings, **build_args)
    for n in chunks or [steps]:
        model.train(n, learning_rate=learning_rate, plot_results=False, show_progress=False)
    assert model.iteration == steps
    model.close()
    return model.history["total_loss"].iloc[-1], model.embeddings


def train_reference(ratings: pd.DataFrame, steps: int, learning_rate: float,
                    **build_args) -> tuple[float, dict[str, np.ndarray]]:
    model = cf.build_model(ratings, **build_args)
    model.train(steps, learning_rate=learning_rate, plot_results=False, show_progress=False,
                fast=False)
    model.close()
    return model.history["total_loss"].iloc[-1], model.embeddings


@pytest.mark.parametrize("dim", [1, 3, 17])
def test_fast_path_any_dimension_and_empty_rows(dim):
    """k other than 10 (the kernel is compiled per k), users and artists without entries."""
    ratings = skewed_ratings()
    args = dict(HYPER, embedding_dim=dim, n_users=85, n_artists=125, seed=5)
    fast, fast_emb = train_fast(ratings, 150, 10.0, **args)
    reference, ref_emb = train_reference(ratings, 150, 10.0, **args)
    assert fast == pytest.approx(reference, rel=1e-4)
    for key in ("u_id", "a_id"):
        assert fast_emb[key].shape[1] == dim
        np.testing.assert_allclose(fast_emb[key], ref_emb[key], atol=1e-4)
    # The comparison covers rows without entries: they move by regularisation and gravity.
    assert 84 not in set(ratings["u_id"]) and 124 not in set(ratings["a_id"])


@pytest.mark.parametrize("terms", [{"gravity_coeff": 0.0}, {"regularization_coeff": 0.0},
                                   {"gravity_coeff": 0.0, "regularization_coeff": 0.0}])
def test_fast_path_without_gravity_or_regularisation(ratings, terms):
    args = dict(HYPER, **terms)
    fast, fast_emb = train_fast(ratings, 200, 5.0, **args)
    reference, ref_emb = train_reference(ratings, 200, 5.0, **args)
    assert fast == pytest.approx(reference, rel=1e-4)
    for key in ("u_id", "a_id"):
        np.testing.assert_allclose(fast_emb[key], ref_emb[key], atol=1e-4)


def test_fast_path_chunks_give_the_same_bytes(ratings):
    """Stopping and resuming (new kernel state, Gram matrices recomputed) changes nothing;
    two runs in one process give the same bytes."""
    _, whole = train_fast(ratings, 230, 5.0, **HYPER)
    _, again = train_fast(ratings, 230, 5.0, **HYPER)
    _, pieces = train_fast(ratings, 230, 5.0, chunks=[30, 150, 1, 49], **HYPER)
    for key in ("u_id", "a_id"):
        assert whole[key].dtype == np.float32
        assert whole[key].tobytes() == again[key].tobytes()
        assert whole[key].tobytes() == pieces[key].tobytes()


def test_descent_matches_one_hand_step(ratings):
    """One kernel step is U - rate·dU, V - rate·dV with the graph's hand-derived gradient."""
    from lastfm_rec.original.descent import Descent

    model = cf.build_model(ratings, **HYPER)
    objective = model._objective
    U, V = model._embedding_vars["u_id"], model._embedding_vars["a_id"]
    with model.graph.as_default():
        grads = objective.gradients(U.read_value(), V.read_value())
    (U0, V0), (dU, dV) = model.session().run(((U, V), grads))
    model.close()
    descent = Descent(objective, U0, V0)
    descent.run(1, 0.5)
    U1, V1 = descent.embeddings()
    np.testing.assert_allclose(U1, U0 - 0.5 * dU, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(V1, V0 - 0.5 * dV, rtol=1e-5, atol=1e-6)
    descent.run(0, 0.5)
    np.testing.assert_array_equal(descent.embeddings()[0], U1)
    with pytest.raises(ValueError, match="n_steps"):
        descent.run(-1, 0.5)
    with pytest.raises(ValueError, match="embeddings must be"):
        Descent(objective, U0[:, :2], V0)


def test_cfmodel_from_any_graph_uses_per_step_loop(ratings):
    """The original's constructor shape: variables, a loss and metrics of one graph."""
    graph = tf.Graph()
    with graph.as_default():
        tf.set_random_seed(0)
        sparse = cf.build_rating_sparse_tensor(ratings, N_USERS, N_ARTISTS)
        U = tf.Variable(tf.random_normal([N_USERS, 2], stddev=0.5, seed=1))
        V = tf.Variable(tf.random_normal([N_ARTISTS, 2], stddev=0.5, seed=2))
        loss = cf.sparse_mean_square_error(sparse, U, V)
    model = cf.CFModel({"u_id": U, "a_id": V}, loss, [{"mse": loss}])
    results = model.train(150, learning_rate=20.0, plot_results=False, show_progress=False)
    assert list(model.history.columns) == ["iteration", "mse", "total_loss"]
    assert results[0]["mse"] < model.history["mse"].iloc[0]
    with pytest.raises(ValueError, match="fast path"):
        model.train(1, fast=True, show_progress=False)
    model.close()


def test_custom_optimizer_runs_per_step(ratings):
    model = cf.build_model(ratings, **HYPER)
    model.train(120, learning_rate=0.05, optimizer=tf.train.AdamOptimizer,
                plot_results=False, show_progress=False)
    losses = model.history["total_loss"]
    assert model.history["iteration"].tolist() == [0, 100, 120]
    assert losses.iloc[-1] < losses.iloc[0]
    with pytest.raises(ValueError, match="fast path"):
        model.train(10, optimizer=tf.train.AdamOptimizer, fast=True, show_progress=False)
    model.close()


def test_als_reaches_gradient_descent_loss(ratings):
    gd = cf.build_model(ratings, **HYPER)
    gd.train(300, learning_rate=5.0, plot_results=False, show_progress=False)
    als = cf.build_model(ratings, solver="als", **HYPER)
    als.train(plot_results=False, show_progress=False)  # default: 15 sweeps
    als_history = als.history
    assert als_history["iteration"].tolist() == list(range(16))
    # Each half-step is an exact minimisation, so the loss never goes up.
    assert np.all(np.diff(als_history["total_loss"]) <= 1e-6)
    assert als_history["total_loss"].iloc[-1] <= gd.history["total_loss"].iloc[-1]
    # Same starting point and the same metric formulas as gradient descent.
    assert als_history.iloc[0].equals(gd.history.iloc[0])
    expected = objective_numpy(als.train_ratings, als.embeddings["u_id"],
                               als.embeddings["a_id"], HYPER["regularization_coeff"],
                               HYPER["gravity_coeff"])
    assert als_history["total_loss"].iloc[-1] == pytest.approx(expected["total_loss"],
                                                               rel=1e-4)
    gd.close()
    als.close()


def test_als_is_stationary_point(ratings):
    """At the ALS fixed point the gradient of the full objective vanishes."""
    model = cf.build_model(ratings, solver="als", **HYPER)
    model.train(200, plot_results=False, show_progress=False)
    U, V = model._embedding_vars["u_id"], model._embedding_vars["a_id"]
    with model.graph.as_default():
        grads = tf.gradients(model.loss, [U, V])
    grad_u, grad_v = model._session.run(grads)
    scale = np.abs(model.embeddings["u_id"]).max() / N_USERS
    assert np.abs(grad_u).max() < 1e-3 * scale + 1e-6
    assert np.abs(grad_v).max() < 1e-5
    model.close()


def test_train_twice_continues(ratings):
    once = cf.build_model(ratings, **HYPER)
    once.train(300, learning_rate=5.0, plot_results=False, show_progress=False)
    twice = cf.build_model(ratings, **HYPER)
    twice.train(150, learning_rate=5.0, plot_results=False, show_progress=False)
    twice.close()  # a new session continues from the embeddings
    twice.train(150, learning_rate=5.0, plot_results=False, show_progress=False)
    assert twice.iteration == 300
    assert twice.history["iteration"].tolist() == [0, 100, 150, 200, 300]
    for key in ("u_id", "a_id"):
        np.testing.assert_array_equal(twice.embeddings[key], once.embeddings[key])
    once.close()
    twice.close()


def test_no_holdout_reports_nan_test_error(ratings):
    model = cf.build_model(ratings, holdout_fraction=0.0, **HYPER)
    results = model.train(5, plot_results=False, show_progress=False)
    assert np.isnan(results[0]["test_error_observed"])
    assert len(model.train_ratings) == len(ratings) and model.test_ratings.empty
    model.close()


def test_plot_results_draws_one_subplot_per_metrics_dict(ratings):
    plt = pytest.importorskip("matplotlib.pyplot")
    plt.switch_backend("Agg")
    plt.close("all")
    model = cf.build_model(ratings, **HYPER)
    assert isinstance(model.train(120, plot_results=True, show_progress=False), list)
    axes = plt.gcf().axes
    assert len(axes) == 2
    assert {line.get_label() for line in axes[1].get_lines()} == set(cf.LOSS_COMPONENTS)
    plt.close("all")
    model.close()


def test_build_model_validates(ratings):
    with pytest.raises(ValueError, match="solver"):
        cf.build_model(ratings, solver="adam")
    with pytest.raises(ValueError, match="holdout_fraction"):
        cf.build_model(ratings, holdout_fraction=1.0)
    model = cf.build_model(ratings, n_users=N_USERS + 5, **HYPER)
    assert model.hyperparameters["n_users"] == N_USERS + 5
    assert model.train(1, plot_results=False, show_progress=False)
    assert model.embeddings["u_id"].shape == (N_USERS + 5, 3)
    model.close()


# ---------------------------------------------------------------------- reproducibility


def test_same_seed_same_embeddings_different_seed_differs(ratings):
    def embeddings(seed, solver="sgd"):
        model = cf.build_model(ratings, seed=seed, solver=solver, **HYPER)
        model.train(2 if solver == "als" else 120, learning_rate=5.0, plot_results=False,
                    show_progress=False)
        model.close()
        return model.embeddings

    first, second, other = embeddings(7), embeddings(7), embeddings(8)
    for key in ("u_id", "a_id"):
        np.testing.assert_array_equal(first[key], second[key])
        assert not np.allclose(first[key], other[key])
    als_a, als_b = embeddings(7, "als"), embeddings(7, "als")
    np.testing.assert_array_equal(als_a["u_id"], als_b["u_id"])


CHILD = textwrap.dedent("""
    import hashlib, sys
    sys.path.insert(0, {root!r})
    sys.path.insert(0, {tests!r})
    from test_cfmodel import HYPER, low_rank_ratings
    from lastfm_rec.original.cfmodel import build_model
    digest = hashlib.sha256()
    for solver, n in (("sgd", 150), ("als", 3)):
        model = build_model(low_rank_ratings(), solver=solver, seed=11, **HYPER)
        model.train(n, learning_rate=5.0, plot_results=False, show_progress=False)
        for key in ("u_id", "a_id"):
            digest.update(model.embeddings[key].tobytes())
        digest.update(model.history.to_numpy().tobytes())
    print(digest.hexdigest())
""")


def test_reproducible_across_processes():
    code = CHILD.format(root=str(ROOT), tests=str(ROOT / "tests"))
    children = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, cwd=ROOT)
                for _ in range(2)]
    outputs = []
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        outputs.append(out.strip().splitlines()[-1])
    assert len(outputs[0]) == 64
    assert outputs[0] == outputs[1]  # bitwise-identical embeddings and histories


# ---------------------------------------------------------------------- save / load


def test_save_load_round_trip(ratings, tmp_path):
    model = cf.build_model(ratings, **HYPER)
    model.train(200, learning_rate=5.0, plot_results=False, show_progress=False)
    path = model.save(tmp_path / "model")
    assert path.name == "model.npz"
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]  # no temporary file left
    content = read_model_file(path)  # the package's model file, read without pickles
    assert content.model == "CFModel" and content.params == model.hyperparameters
    assert "embedding_u_id" in content.arrays

    loaded = cf.CFModel.load(path)
    for key in ("u_id", "a_id"):
        np.testing.assert_array_equal(loaded.embeddings[key], model.embeddings[key])
    pd.testing.assert_frame_equal(loaded.history, model.history)
    assert loaded.hyperparameters == model.hyperparameters
    assert loaded.iteration == 200 and loaded.solver == "sgd"
    with pytest.raises(RuntimeError, match="ratings"):
        loaded.train(10, show_progress=False)

    # With the ratings, training resumes exactly where the saved model stopped.
    resumed = cf.CFModel.load(path, ratings=ratings)
    resumed.train(100, learning_rate=5.0, plot_results=False, show_progress=False)
    model.train(100, learning_rate=5.0, plot_results=False, show_progress=False)
    for key in ("u_id", "a_id"):
        np.testing.assert_array_equal(resumed.embeddings[key], model.embeddings[key])
    pd.testing.assert_frame_equal(resumed.history, model.history)

    other = ratings.assign(w_mm=ratings["w_mm"] * 0.5)
    with pytest.raises(ValueError, match="differ"):
        cf.CFModel.load(path, ratings=other)
    model.close()
    resumed.close()


def test_save_load_als_model(ratings, tmp_path):
    model = cf.build_model(ratings, solver="als", **HYPER)
    model.train(3, plot_results=False, show_progress=False)
    loaded = cf.CFModel.load(model.save(tmp_path / "als.npz"))
    assert loaded.solver == "als" and loaded.iteration == 3
    np.testing.assert_array_equal(loaded.embeddings["a_id"], model.embeddings["a_id"])
    resumed = cf.CFModel.load(tmp_path / "als.npz", ratings=ratings)
    assert resumed.train(2, plot_results=False, show_progress=False)
    assert resumed.history["iteration"].tolist() == [0, 1, 2, 3, 4, 5]
    model.close()
    resumed.close()


def test_load_refuses_another_models_file(tmp_path):
    path = tmp_path / "popularity.npz"
    create("popularity").fit(sp.csr_matrix(np.eye(3))).save(path)
    with pytest.raises(ModelFileError) as error:
        cf.CFModel.load(path)
    assert str(error.value) == (f"{path}: holds a PopularityRecommender, not a CFModel; load it "
                                "with PopularityRecommender.load")
