"""The graph models' own claims (``lastfm_rec.models.lightgcn``), on small seeded data:
the propagation matrix, the layer mean, SocialLGN's fusion, BPR training, the epoch chosen on
validation, seeding, and the friend graph's use and checks."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from notebook_runs import QUICK, QUICK_RUN

from lastfm_rec import models
from lastfm_rec.evaluation import tuning
from lastfm_rec.evaluation.literature import literature_metrics
from lastfm_rec.evaluation.splits import random_split
from lastfm_rec.models.lightgcn import (
    LightGCNRecommender,
    SocialLightGCNRecommender,
    _Graphs,
    _tensorflow,
    bipartite_adjacency,
    ndcg_at,
    normalized_adjacency,
)
from lastfm_rec.ops import top_n
from lastfm_rec.reports import read_results

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "08_graph_models.ipynb"
N_USERS, N_ITEMS = 30, 20
FAST = {"factors": 6, "layers": 2, "learning_rate": 0.05, "batch_size": 64}


def plays(seed: int = 0) -> sp.csr_matrix:
    """Two taste groups (users and artists split in halves), about 40% of in-group pairs
    played, a few plays across; counts 1-50."""
    rng = np.random.default_rng(seed)
    group_users = np.arange(N_USERS) < N_USERS // 2
    group_items = np.arange(N_ITEMS) < N_ITEMS // 2
    same = group_users[:, None] == group_items[None, :]
    played = rng.random((N_USERS, N_ITEMS)) < np.where(same, 0.4, 0.03)
    return sp.csr_matrix(played * rng.integers(1, 50, played.shape), dtype=np.float64)


def friends(seed: int) -> sp.csr_matrix:
    """Symmetric random friendships, about 3 per user."""
    rng = np.random.default_rng(seed)
    upper = sp.triu(sp.random(N_USERS, N_USERS, density=0.1, random_state=rng), k=1)
    return ((upper + upper.T) > 0).astype(np.float64).tocsr()


def test_propagation_matrix_is_the_symmetric_normalisation():
    matrix = plays().tolil()
    matrix[:, 3] = 0  # an artist nobody played: a node of degree 0 stays at 0
    matrix = matrix.tocsr()
    matrix.eliminate_zeros()
    adjacency = bipartite_adjacency(matrix).toarray()
    assert adjacency.shape == (N_USERS + N_ITEMS,) * 2 and set(np.unique(adjacency)) == {0, 1}
    np.testing.assert_array_equal(adjacency, adjacency.T)
    assert not adjacency.diagonal().any()  # no self loops
    degree = adjacency.sum(axis=1)
    inverse_root = np.where(degree > 0, 1 / np.sqrt(np.maximum(degree, 1)), 0.0)
    expected = inverse_root[:, None] * adjacency * inverse_root[None, :]
    np.testing.assert_allclose(normalized_adjacency(adjacency).toarray(), expected, rtol=1e-6)
    assert not normalized_adjacency(adjacency).toarray()[N_USERS + 3].any()


def test_final_embedding_is_the_mean_of_the_layers():
    tf = _tensorflow()
    matrix = plays()
    model = LightGCNRecommender(layers=3)
    rng = np.random.default_rng(1)
    users, items = rng.normal(size=(N_USERS, 4)), rng.normal(size=(N_ITEMS, 4))
    product = _Graphs(tf, bipartite_adjacency(matrix), None).products()[0]
    final_users, final_items, item_layers, _ = model._propagate(
        tf, product, None, tf.constant(users, tf.float32), tf.constant(items, tf.float32), {})
    a_hat = normalized_adjacency(bipartite_adjacency(matrix)).toarray().astype(np.float64)
    layer, layers = np.vstack([users, items]), []
    for _ in range(4):
        layers.append(layer)
        layer = a_hat @ layer
    mean = np.mean(layers, axis=0)
    np.testing.assert_allclose(final_users.numpy(), mean[:N_USERS], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(final_items.numpy(), mean[N_USERS:], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.stack([x.numpy() for x in item_layers]),
                               np.stack([x[N_USERS:] for x in layers[:3]]), rtol=1e-4, atol=1e-5)


def test_social_layers_fuse_both_views_as_sociallgn():
    """Per layer: s = Ŝ u, [r; i'] = Â [u; i], u' = g / ‖g‖_F with
    g = [tanh(s W1), tanh(r W2)] W3 + b; final = mean of the layers."""
    tf = _tensorflow()
    matrix, friendships = plays(), friends(3)
    model = SocialLightGCNRecommender(factors=4, layers=2)
    rng = np.random.default_rng(2)
    users, items = rng.normal(size=(N_USERS, 4)), rng.normal(size=(N_ITEMS, 4))
    fusion = model._fusion_start(rng)
    products = _Graphs(tf, bipartite_adjacency(matrix),
                       normalized_adjacency(friendships)).products()
    final_users, final_items, _, norms = model._propagate(
        tf, products[0], products[1], tf.constant(users, tf.float32),
        tf.constant(items, tf.float32), {k: tf.constant(v) for k, v in fusion.items()})
    a_hat = normalized_adjacency(bipartite_adjacency(matrix)).toarray().astype(np.float64)
    s_hat = normalized_adjacency(friendships).toarray().astype(np.float64)
    all_users, all_items, expected_norms = [users], [items], []
    for _ in range(2):
        social = s_hat @ users
        interaction = a_hat @ np.vstack([users, items])
        fused = np.hstack([np.tanh(social @ fusion["w_social"]),
                           np.tanh(interaction[:N_USERS] @ fusion["w_interaction"])]) \
            @ fusion["w_combine"] + fusion["bias"]
        expected_norms.append(np.linalg.norm(fused))
        users, items = fused / np.linalg.norm(fused), interaction[N_USERS:]
        all_users.append(users)
        all_items.append(items)
    np.testing.assert_allclose(final_users.numpy(), np.mean(all_users, axis=0), rtol=1e-4,
                               atol=1e-5)
    np.testing.assert_allclose(final_items.numpy(), np.mean(all_items, axis=0), rtol=1e-4,
                               atol=1e-5)
    np.testing.assert_allclose([float(n) for n in norms], expected_norms, rtol=1e-4)


def test_validation_ndcg_is_the_literature_ndcg():
    train, held_out = random_split(plays(), 0.3, seed=1)
    rng = np.random.default_rng(3)
    users, items = rng.normal(size=(N_USERS, 5)), rng.normal(size=(N_ITEMS, 5))
    scores = users @ items.T
    scores[train.nonzero()] = -np.inf
    rows = np.flatnonzero(np.diff(held_out.indptr))
    ranked, _ = top_n(scores[rows], 10)
    expected = literature_metrics(ranked, held_out[rows], K=(10,))["ndcg@10"]
    assert ndcg_at(users, items, train, held_out) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("model_cls", [LightGCNRecommender, SocialLightGCNRecommender])
def test_bpr_loss_decreases(model_cls):
    model = model_cls(**FAST, epochs=25, validation_fraction=0).fit(plays(), show_progress=False)
    losses = model.loss_curve_
    assert losses.shape == (25,) and int(model.best_epoch_) == 25
    # Each epoch draws new negatives: the curve is noisy at the end, falling on average.
    assert losses[:5].mean() > losses[5:10].mean() > losses[10:15].mean()
    assert losses[-5:].mean() < 0.5 * losses[0]


def test_epochs_chosen_on_validation_are_recorded():
    model = LightGCNRecommender(**FAST, epochs=200, eval_every=5, patience=3,
                                validation_fraction=0.2)
    calls = []
    model.fit(plays(), show_progress=False, callback=lambda *args: calls.append(args))
    curve, best = model.validation_curve_, int(model.best_epoch_)
    assert curve.shape[1] == 2 and (curve[:, 0] % 5 == 0).all()
    assert best == int(curve[np.argmax(curve[:, 1]), 0])  # the first best evaluation
    epochs_run = len(model.loss_curve_)
    assert epochs_run == int(curve[-1, 0]) == len(calls)
    assert epochs_run < 200, "patience never stopped the run"
    assert epochs_run == best + 3 * 5  # stopped after 3 evaluations without a better one
    assert [call[0] for call in calls] == list(range(1, epochs_run + 1))
    buffer = io.BytesIO()
    model.save(buffer)
    buffer.seek(0)
    loaded = models.Recommender.load(buffer)
    assert int(loaded.best_epoch_) == best
    np.testing.assert_array_equal(loaded.validation_curve_, curve)


@pytest.mark.parametrize("model_cls", [LightGCNRecommender, SocialLightGCNRecommender])
def test_watched_test_rows_are_scored_but_choose_nothing(model_cls):
    """``test_items`` give the papers' figure (best test epoch) beside validation's choice;
    the test curve at the chosen epoch is the fitted model's own test NDCG@10."""
    train, test = random_split(plays(), 0.25, seed=2)
    side = {"user_friends": friends(5)} if model_cls is SocialLightGCNRecommender else {}
    settings = {**FAST, **side, "epochs": 60, "eval_every": 5, "patience": 3}
    watched = model_cls(**settings).fit(train, show_progress=False, test_items=test)
    plain_fit = model_cls(**settings).fit(train, show_progress=False)
    np.testing.assert_array_equal(watched.user_factors, plain_fit.user_factors)
    assert plain_fit.test_curve_.shape == (0, 2)
    curve, test_curve = watched.validation_curve_, watched.test_curve_
    np.testing.assert_array_equal(test_curve[:, 0], curve[:, 0])
    best = int(watched.best_epoch_)
    at_best = test_curve[test_curve[:, 0] == best, 1]
    users = np.flatnonzero(np.diff(test.indptr))
    ranked = watched.recommend(users, train[users], N=10, filter_already_liked_items=True)[0]
    expected = literature_metrics(ranked, test[users], K=(10,))["ndcg@10"]
    assert at_best == pytest.approx([expected], abs=1e-6)
    assert test_curve[:, 1].max() >= at_best[0]
    with pytest.raises(ValueError, match="test_items must have the shape"):
        model_cls(**settings).fit(train, show_progress=False, test_items=test[:5])


def test_refit_trains_the_chosen_epochs_on_all_rows():
    settings = {**FAST, "epochs": 60, "eval_every": 5, "patience": 2}
    kept = LightGCNRecommender(**settings).fit(plays(), show_progress=False)
    refitted = LightGCNRecommender(**settings, refit=True).fit(plays(), show_progress=False)
    assert int(refitted.best_epoch_) == int(kept.best_epoch_)
    assert len(refitted.loss_curve_) == int(kept.best_epoch_)
    assert not np.allclose(refitted.user_factors, kept.user_factors)


@pytest.mark.parametrize("name", ["lightgcn", "social-lightgcn"])
def test_same_seed_same_scores(name):
    side = {"user_friends": friends(4)} if name == "social-lightgcn" else {}
    settings = {**FAST, "epochs": 20, "eval_every": 5, **side}
    matrix = plays()
    users = np.arange(N_USERS)

    def scores(seed):
        model = models.create(name, **settings, random_state=seed)
        return model.fit(matrix, show_progress=False).score_items(users, matrix)

    first = scores(7)
    np.testing.assert_array_equal(first, scores(7))  # bit for bit on one machine
    assert not np.allclose(first, scores(8))


def test_social_variant_uses_the_friend_graph():
    matrix = plays()
    users = np.arange(N_USERS)
    settings = {**FAST, "epochs": 15, "validation_fraction": 0}
    scored = [SocialLightGCNRecommender(user_friends=graph, **settings)
              .fit(matrix, show_progress=False).score_items(users, matrix)
              for graph in (friends(5), friends(6), None)]
    assert not np.allclose(scored[0], scored[1])
    assert not np.allclose(scored[0], scored[2])


def test_social_variant_refuses_a_friend_matrix_of_the_wrong_shape():
    model = SocialLightGCNRecommender(user_friends=sp.identity(N_USERS + 1, format="csr"),
                                      **FAST, epochs=1)
    with pytest.raises(ValueError, match=r"user_friends must be 30 x 30 .*got 31 x 31") as error:
        model.fit(plays(), show_progress=False)
    assert "\n" not in str(error.value)


def test_fold_in_propagates_the_row_over_the_artist_layers():
    """A folded-in user: layer 0 zero, layer l = Σ_i e_i^(l-1) / sqrt(d_u d_i) over their
    artists (training degrees), averaged over layers 0..L; close to the trained user."""
    matrix = plays()
    model = LightGCNRecommender(**FAST, epochs=40, validation_fraction=0).fit(
        matrix, show_progress=False)
    binary = (matrix > 0).astype(np.float64).toarray()
    degree_items = binary.sum(axis=0)
    weights = binary / np.sqrt(binary.sum(axis=1))[:, None] \
        / np.sqrt(np.where(degree_items > 0, degree_items, np.inf))[None, :]
    expected = sum(weights @ layer for layer in model.item_layers_) / (FAST["layers"] + 1)
    np.testing.assert_allclose(model.user_vectors(matrix), expected, rtol=1e-5, atol=1e-6)
    trained = model.recommend(np.arange(N_USERS), matrix, N=3)[0]
    folded = model.recommend(np.arange(N_USERS), matrix, N=3, recalculate_user=True)[0]
    overlap = [len(set(a) & set(b)) for a, b in zip(trained, folded, strict=True)]
    assert np.mean(overlap) > 2.2  # of 3: the learned start moves little of the ranking


def test_bad_settings_raise_one_line_errors():
    with pytest.raises(ValueError, match="validation_fraction must be in"):
        LightGCNRecommender(validation_fraction=1.0)
    with pytest.raises(ValueError, match="layers must be an integer of at least 0"):
        LightGCNRecommender(layers=-1)


def test_graph_models_stay_out_of_the_default_study():
    assert {"lightgcn", "social-lightgcn"} <= set(models.available())
    assert {"lightgcn", "social-lightgcn"} == models.SLOW
    assert models.side_params("social-lightgcn") == ("user_friends",)
    assert tuning.study_models() == ["random", "popularity", "item-knn", "rp3beta", "als",
                                     "ease", "hybrid", "sgd-mf"]


# --------------------------------------------------------------------------- notebook 08

def check_epoch_choices(results: dict) -> None:
    """Each graph run read both ways from one curve: validation's epoch is the curve's
    first best validation score and the fitted model's test NDCG@10 is the test curve
    there; the papers' epoch is the test curve's best."""
    for name, run in results["graph_runs"].items():
        curve = {key: np.array(values) for key, values in results["graph_curves"][name].items()}
        assert run["validation_epoch"] == curve["epoch"][np.argmax(curve["validation"])]
        assert run["test_epoch"] == curve["epoch"][np.argmax(curve["test"])]
        assert run["epochs_run"] == curve["epoch"][-1]
        at_choice = curve["test"][curve["epoch"] == run["validation_epoch"]]
        assert run["ndcg@10"] == pytest.approx(at_choice[0], abs=1e-6)
        assert run["ndcg@10 at test epoch"] == pytest.approx(curve["test"].max(), abs=1e-12)
        assert run["ndcg@10 at test epoch"] >= run["ndcg@10"]


@pytest.mark.slow
@pytest.mark.notebook(QUICK_RUN, NOTEBOOK.name)
def test_graph_notebook_runs_with_quick_parameters(notebooks) -> None:
    """Notebook 08 on the synthetic data with a few epochs (``notebook_runs.QUICK["08"]``)."""
    results = notebooks.run(QUICK_RUN, NOTEBOOK.name).results
    quick = QUICK["08"]
    assert set(results["graph_runs"]) == {"lightgcn", "social-lightgcn"}
    assert set(results["graph_references"]) == set(quick["reference_models"])
    for name, curve in results["graph_curves"].items():
        assert curve["epoch"][-1] <= quick["max_epochs"], name
        assert all(epoch % quick["eval_every"] == 0 for epoch in curve["epoch"]), name
    check_epoch_choices(results)


def test_recorded_results_of_notebook_08_hold_its_claims() -> None:
    """The committed run (``make run-graph``: both graph models on the real data's split of
    seed 0, up to 1000 epochs)."""
    r = read_results(NOTEBOOK)
    assert r["split_seed"] == 0 and set(r["graph_runs"]) == {"lightgcn", "social-lightgcn"}
    check_epoch_choices(r)
    runs, published = r["graph_runs"], r["published_ndcg10"]
    for name, run in runs.items():
        assert run["users"] == 1_881  # every user with a test row
        assert run["epochs_run"] < 1000, f"{name}: validation never stopped the run"
        assert run["fit_seconds"] > 60  # minutes, not seconds: why it is not in make run
    # Measured here, chosen on validation: LightGCN above the figure the SocialLGN paper
    # printed for it (chosen by test NDCG); SocialLGN below its own even at its best test
    # epoch (docs/results.md says so); the package's hybrid above both graph models.
    assert runs["lightgcn"]["ndcg@10"] > published["LightGCN"]
    assert runs["social-lightgcn"]["ndcg@10 at test epoch"] < published["SocialLGN"]
    hybrid = r["graph_references"]["hybrid"]["ndcg@10"]
    assert all(hybrid > run["ndcg@10 at test epoch"] for run in runs.values())
    assert r["graph_best_reference"] == "hybrid"
