"""Ranking metrics (known answers, agreement with implicit), splits, matrices, evaluate."""

from __future__ import annotations

import logging
import math
from functools import partial

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from lastfm_rec import models
from lastfm_rec.data import matrices
from lastfm_rec.data.hetrec import load_dataset
from lastfm_rec.data.preprocessing import IdMap
from lastfm_rec.evaluation import metrics, ranking, splits


def held(sets: list[list[int]], width: int = 20) -> sp.csr_matrix:
    rows = np.repeat(np.arange(len(sets)), [len(s) for s in sets])
    cols = np.concatenate([np.asarray(s, dtype=np.int64) for s in sets]) if sets else []
    return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(sets), width))


def random_plays(n_users: int = 60, n_items: int = 40, per_user: int = 12,
                 seed: int = 0) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    rows, cols = [], []
    for u in range(n_users):
        count = 3 if u % 10 == 0 else per_user  # every tenth user is small
        rows += [u] * count
        cols += list(rng.choice(n_items, count, replace=False))
    counts = rng.integers(1, 500, len(rows)).astype(float)
    return sp.csr_matrix((counts, (rows, cols)), shape=(n_users, n_items))


# --------------------------------------------------------------------------- metrics

METRICS = [metrics.precision_at_k, metrics.recall_at_k, metrics.ndcg_at_k, metrics.map_at_k,
           partial(metrics.recall_at_k, capped=False)]


@pytest.mark.parametrize("metric", METRICS)
def test_perfect_ranking_scores_one(metric):
    truth = [[3, 5, 7], [1, 2, 4]]
    ranked = np.array([[3, 5, 7], [4, 1, 2]])
    assert metric(ranked, held(truth), 3) == pytest.approx(1.0)


@pytest.mark.parametrize("metric", METRICS)
def test_no_hits_scores_zero(metric):
    ranked = np.array([[0, 1, 2], [8, 9, 10]])
    assert metric(ranked, held([[3, 5], [4]]), 3) == 0.0


def test_hand_worked_example():
    # held out {2, 9}; ranking 2, 5, 9: hits at ranks 1 and 3
    ranked, truth = np.array([[2, 5, 9]]), held([[2, 9]])
    dcg = 1 / math.log2(2) + 1 / math.log2(4)  # 1.5
    ideal = 1 / math.log2(2) + 1 / math.log2(3)  # 1.6309
    assert metrics.ndcg_at_k(ranked, truth, 3) == pytest.approx(dcg / ideal)  # 0.9197
    assert metrics.ndcg_at_k(ranked, truth, 3) == pytest.approx(0.919720, abs=1e-6)
    assert metrics.map_at_k(ranked, truth, 3) == pytest.approx((1 / 1 + 2 / 3) / 2)
    assert metrics.precision_at_k(ranked, truth, 3) == pytest.approx(2 / 3)
    assert metrics.recall_at_k(ranked, truth, 3) == pytest.approx(1.0)
    # at k=1 only the first hit counts; ideal DCG over min(1, 2) = 1 hit
    assert metrics.ndcg_at_k(ranked, truth, 1) == pytest.approx(1.0)
    assert metrics.recall_at_k(ranked, truth, 2) == pytest.approx(0.5)


def test_users_without_hits_count_and_empty_users_are_skipped():
    ranked = np.array([[1, 2], [5, 6], [7, 8]])
    truth = held([[1, 2], [3], []])  # a perfect user, a user with no hits, no held-out set
    for metric in METRICS:
        assert metric(ranked, truth, 2) == pytest.approx(0.5)


def test_padding_never_hits_and_list_input_matches_csr():
    ranked = np.array([[4, -1, -1], [19, 0, -1]])
    sets = [[4, 19], [0]]
    assert metrics.ndcg_at_k(ranked, sets, 3) == pytest.approx(
        metrics.ndcg_at_k(ranked, held(sets), 3))
    # user 0: hit at rank 1 of 2 relevant; user 1: hit at rank 2 of 1 relevant
    expected = (1 / (1 + 1 / math.log2(3)) + (1 / math.log2(3)) / 1) / 2
    assert metrics.ndcg_at_k(ranked, held(sets), 3) == pytest.approx(expected)


def test_metric_input_errors():
    with pytest.raises(ValueError, match="rows"):
        metrics.ndcg_at_k(np.array([[1, 2]]), held([[1], [2]]), 2)
    with pytest.raises(ValueError, match="k=3"):
        metrics.ndcg_at_k(np.array([[1, 2]]), held([[1]]), 3)


def test_coverage_and_mean_popularity():
    ranked = np.array([[0, 1, -1], [1, 2, 3]])
    assert metrics.catalogue_coverage(ranked, n_items=10, k=3) == pytest.approx(4 / 10)
    assert metrics.catalogue_coverage(ranked, n_items=10, k=1) == pytest.approx(2 / 10)
    popularity = np.arange(10) * 10.0
    # user 0: mean(0, 10) = 5; user 1: mean(10, 20, 30) = 20
    assert metrics.mean_popularity(ranked, popularity, k=3) == pytest.approx(12.5)
    plays = sp.csr_matrix(np.array([[1, 0, 3], [2, 0, 0]], dtype=float))
    assert metrics.listeners(plays).tolist() == [2, 0, 1]


def test_agrees_with_implicit_evaluation():
    implicit_evaluation = pytest.importorskip("implicit.evaluation")
    plays = random_plays(seed=3)
    train, test = splits.holdout_split(plays, seed=5)
    model = models.create("item-knn", K=20).fit(train)
    ours = ranking.evaluate(model, train, test, K=(5,))
    theirs = implicit_evaluation.ranking_metrics_at_k(model, train, test, K=5,
                                                      show_progress=False)
    assert ours["ndcg@5"] == pytest.approx(theirs["ndcg"])
    assert ours["map@5"] == pytest.approx(theirs["map"])
    # implicit's "precision" pools hits over users: a micro-averaged recall@k
    users = np.flatnonzero(np.diff(test.indptr))
    ranked = ranking.rank_users(model, users, train[users], 5)
    hits = sum(np.isin(ranked[i], test[u].indices).sum() for i, u in enumerate(users))
    pooled = hits / np.minimum(5, np.diff(test.indptr)[users]).sum()
    assert theirs["precision"] == pytest.approx(pooled)


# --------------------------------------------------------------------------- splits

def test_holdout_split_partitions_each_user():
    plays = random_plays()
    train, test = splits.holdout_split(plays, fraction=0.25, min_items=5, seed=1)
    assert train.shape == test.shape == plays.shape
    assert (train + test - plays).nnz == 0  # nothing lost, values kept
    assert train.multiply(test).nnz == 0  # no held-out artist is also in training
    n_train, n_test = np.diff(train.indptr), np.diff(test.indptr)
    small = np.arange(plays.shape[0]) % 10 == 0
    assert (n_test[small] == 0).all() and (n_train[small] == 3).all()
    assert (n_test[~small] == 3).all() and (n_train[~small] == 9).all()  # round(0.25 * 12)


def test_holdout_split_is_seeded():
    plays = random_plays()
    a, b = splits.holdout_split(plays, seed=7), splits.holdout_split(plays, seed=7)
    assert (a[1] != b[1]).nnz == 0
    c = splits.holdout_split(plays, seed=8)
    assert (a[1] != c[1]).nnz > 0


def test_validation_recipe_nests():
    plays = random_plays()
    train, test = splits.holdout_split(plays, seed=42)
    fit_part, validation = splits.holdout_split(train, seed=43)
    assert fit_part.multiply(validation).nnz == 0
    assert validation.multiply(test).nnz == 0 and fit_part.multiply(test).nnz == 0
    assert (fit_part + validation - train).nnz == 0


def test_holdout_split_errors():
    with pytest.raises(ValueError, match="CSR"):
        splits.holdout_split(np.ones((3, 3)))
    with pytest.raises(ValueError, match="fraction"):
        splits.holdout_split(random_plays(), fraction=1.0)


def test_new_user_split():
    plays = random_plays()
    train, given, hidden, new = splits.new_user_split(plays, n_new=6, seed=0)
    assert new.size == 6 and train.shape == (plays.shape[0] - 6, plays.shape[1])
    assert given.shape == hidden.shape == (6, plays.shape[1])
    assert given.multiply(hidden).nnz == 0
    assert ((given + hidden) - plays[new]).nnz == 0
    assert (np.diff(given.indptr) == 6).all()  # half of 12


# --------------------------------------------------------------------------- matrices

def test_matrices_from_synthetic_files(synthetic_dir):
    dataset = load_dataset(synthetic_dir)
    users = IdMap.from_values(dataset.user_artists["userID"])
    artists = IdMap.from_values(dataset.user_artists["artistID"])
    plays = matrices.play_matrix(dataset.user_artists, users, artists)
    assert plays.shape == (len(users), len(artists))
    assert plays.nnz == len(dataset.user_artists)
    assert plays.sum() == pytest.approx(dataset.user_artists["weight"].sum())
    first = dataset.user_artists.iloc[0]
    row = users.to_index(first["userID"])
    col = artists.to_index(first["artistID"])
    assert plays[row, col] == first["weight"]

    friends = matrices.friend_matrix(dataset.user_friends, users)
    assert (friends != friends.T).nnz == 0 and friends.diagonal().sum() == 0

    tags = matrices.tag_matrix(dataset.user_tagged, users, artists)
    known = dataset.user_tagged["artistID"].isin(artists.ids)
    assert tags.sum() == known.sum()  # unknown artists dropped, every other assignment kept
    _, test = splits.holdout_split(plays, seed=0)
    fewer = matrices.tag_matrix(dataset.user_tagged, users, artists, exclude=test)
    tagged = dataset.user_tagged[known]
    owner = users.to_index(tagged["userID"].to_numpy())
    artist = artists.to_index(tagged["artistID"].to_numpy())
    in_test = np.asarray(test[owner, artist]).ravel() != 0
    assert in_test.sum() > 0
    assert fewer.sum() == tags.sum() - in_test.sum()


def test_play_matrix_from_dense_indices():
    frame = pd.DataFrame({"u_id": [0, 0, 2], "a_id": [1, 1, 3], "weight": [2, 3, 4]})
    matrix = matrices.play_matrix(frame)
    assert matrix.shape == (3, 4) and matrix[0, 1] == 5 and matrix[2, 3] == 4
    with pytest.raises(ValueError, match="IdMaps"):
        matrices.play_matrix(frame.rename(columns={"u_id": "userID", "a_id": "artistID"}))


# --------------------------------------------------------------------------- evaluate

def test_evaluate_and_evaluate_models():
    plays = random_plays(seed=2)
    train, test = splits.holdout_split(plays, seed=2)
    table = ranking.evaluate_models({"pop": models.create("popularity"),
                                "knn": models.create("item-knn", K=20)}, train, test)
    assert list(table.index) == ["pop", "knn"]
    for k in (10, 20):
        for metric in ("ndcg", "precision", "recall", "map", "coverage"):
            assert ((table[f"{metric}@{k}"] >= 0) & (table[f"{metric}@{k}"] <= 1)).all()
        assert (table[f"popularity@{k}"] > 0).all()
    assert (table["users"] == (np.diff(test.indptr) > 0).sum()).all()
    assert (table["fit_seconds"] >= 0).all()
    row = ranking.evaluate(models.create("popularity").fit(train), train, test, K=(5,))
    assert set(row) >= {"ndcg@5", "users", "eval_seconds"}


def test_evaluate_new_users():
    plays = random_plays(seed=4)
    train, given, hidden, _ = splits.new_user_split(plays, n_new=6, seed=1)
    model = models.create("item-knn", K=20).fit(train)
    row = ranking.evaluate_new_users(model, given, hidden, K=(5,))
    assert row["users"] == 6 and 0 <= row["ndcg@5"] <= 1


@pytest.mark.realdata
def test_real_split_ranks_above_chance(real_data_dir):
    study = matrices.load_study(real_data_dir)
    assert study.plays.shape == (1892, 17632) and study.plays.nnz == 92834
    train, test = splits.holdout_split(study.plays, seed=42)
    assert test.nnz == pytest.approx(0.2 * 92834, rel=0.01)
    popularity = ranking.evaluate(models.create("popularity").fit(train), train, test, K=(10,))
    chance = ranking.evaluate(models.create("random").fit(train), train, test, K=(10,))
    assert chance["ndcg@10"] < 0.005 < 0.05 < popularity["ndcg@10"]
    knn = ranking.evaluate(models.create("item-knn").fit(train), train, test, K=(10,))
    assert knn["ndcg@10"] > 2.5 * popularity["ndcg@10"]  # measured: 0.2187 vs 0.0760


# --------------------------------------------------------------------------- tuning

@pytest.mark.parametrize("strategy", ["grid", "coordinate"])
def test_tune_selects_on_validation(strategy):
    from lastfm_rec.evaluation.tuning import tune

    plays = random_plays(seed=6)
    train, _ = splits.holdout_split(plays, seed=6)
    fit_part, validation = splits.holdout_split(train, seed=7)
    space = {"K": [2, 50], "shrink": [0.0, 5.0]}
    result = tune("item-knn", fit_part, validation, space=space, strategy=strategy)
    assert result.best_score == pytest.approx(result.trials["val_ndcg@10"].max())
    best_row = result.trials.loc[result.trials["val_ndcg@10"].idxmax()]
    assert {k: best_row[k] for k in space} == result.best_params
    # the grid tries all 4 settings; coordinate ascent from K=2 (first candidate, the
    # default 300 is not in the space) tries each other value once, at most 4 distinct
    assert len(result.trials) == 4 if strategy == "grid" else 3 <= len(result.trials) <= 4
    sampled = tune("item-knn", fit_part, validation, space=space, strategy="grid", n_trials=2,
                   seed=1)
    assert len(sampled.trials) == 2
    with pytest.raises(ValueError, match="strategy"):
        tune("item-knn", fit_part, validation, space=space, strategy="magic")


def test_tune_logs_each_trial_and_shows_a_bar_on_request(caplog, capsys):
    from lastfm_rec.evaluation.tuning import tune

    plays = random_plays(seed=6)
    fit_part, validation = splits.holdout_split(plays, seed=7)
    space = {"K": [2, 50]}
    with caplog.at_level(logging.INFO, logger="lastfm_rec.evaluation.tuning"):
        quiet = tune("item-knn", fit_part, validation, space=space, strategy="grid")
    assert [message.split(" val ")[0] for message in caplog.messages] == [
        "item-knn {'K': 2}", "item-knn {'K': 50}"]
    assert capsys.readouterr().err == ""
    shown = tune("item-knn", fit_part, validation, space=space, strategy="grid",
                 show_progress=True)
    assert "tuning item-knn" in capsys.readouterr().err
    assert shown.best_params == quiet.best_params
