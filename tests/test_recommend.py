"""Scores, recommendations, neighbours, rec sheets and new-user embeddings (no TensorFlow)."""

from __future__ import annotations

import logging
import re
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from lastfm_rec.data.sheets import (
    RecSheetError,
    find_artist,
    read_rec_sheet,
    search_artists,
    write_rec_sheet,
)
from lastfm_rec.original.foldin import fold_in, similar_users_embedding
from lastfm_rec.original.recommend import (
    artist_neighbors,
    compute_scores,
    popularity_correlation,
    same_label_share,
    similar_users_model,
    tag_share,
    user_recommendations,
)


@pytest.fixture()
def artists() -> pd.DataFrame:
    names = ["Guns N' Roses", "Guns N' Roses (live)", "Roses", "Beyoncé", "Mute", "Abba"]
    return pd.DataFrame({
        "artistID": [10, 11, 12, 13, 14, 15],
        "name": names,
        "top3_tags": ["rock", "rock / live", "pop", "rnb / pop", "none", "pop"],
        "popularity_score": [50.0, 1.0, 3.0, 40.0, 0.5, 30.0],
        "listeners": [90, 2, 5, 80, 1, 70],
        "a_id": np.arange(6),
    })


@pytest.fixture()
def model() -> SimpleNamespace:
    item = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.2, 0.9], [0.0, 0.0], [0.5, 0.5]])
    return SimpleNamespace(embeddings={"a_id": item, "u_id": item[:3] * 2})


def test_cosine_of_a_vector_with_itself_is_one() -> None:
    rng = np.random.default_rng(0)
    items = rng.normal(size=(20, 4))
    scores = compute_scores(items[3], items, "cosine")
    assert scores[3] == pytest.approx(1.0)
    assert np.all(scores <= 1 + 1e-12)


def test_dot_scores_are_inner_products() -> None:
    items = np.array([[1.0, 2.0], [3.0, -1.0]])
    np.testing.assert_allclose(compute_scores(np.array([2.0, 1.0]), items), [4.0, 5.0])


def test_zero_vectors_do_not_produce_nan() -> None:
    items = np.array([[1.0, 0.0], [0.0, 0.0]])
    assert not np.isnan(compute_scores(np.zeros(2), items, "cosine")).any()
    assert compute_scores(np.array([1.0, 0.0]), items, "cosine").tolist() == [1.0, 0.0]


def test_unknown_measure_is_refused() -> None:
    with pytest.raises(ValueError, match="measure"):
        compute_scores(np.ones(2), np.ones((3, 2)), "euclid")


def test_user_recommendations_rank_and_exclude(model, artists) -> None:
    table = user_recommendations(model, np.array([1.0, 0.0]), artists, k=3)
    assert table["name"].tolist() == ["Guns N' Roses", "Guns N' Roses (live)", "Abba"]
    assert table["score"].is_monotonic_decreasing
    assert list(table.columns) == ["a_id", "artistID", "name", "score", "top3_tags",
                                   "popularity_score", "listeners"]
    excluded = user_recommendations(model, np.array([1.0, 0.0]), artists, exclude=[0, 1], k=6)
    assert not {0, 1} & set(excluded["a_id"])
    assert len(excluded) == 4
    with pytest.raises(ValueError, match="nothing left"):
        user_recommendations(model, np.ones(2), artists, exclude=np.arange(6))
    with pytest.raises(ValueError, match="k must be"):
        user_recommendations(model, np.ones(2), artists, k=0)


def test_find_artist_is_plain_text_and_prefers_exact_matches(artists) -> None:
    assert find_artist("guns n' roses (live)", artists) == (1, [])
    a_id, others = find_artist("GUNS N' ROSES", artists)
    assert a_id == 0 and others == ["Guns N' Roses (live)"]
    assert find_artist("roses", artists) == (2, ["Guns N' Roses", "Guns N' Roses (live)"])
    # Only substring matches: the most listened wins, the rest are reported.
    assert find_artist("guns", artists) == (0, ["Guns N' Roses (live)"])
    with pytest.raises(KeyError, match="close names: Beyoncé"):
        find_artist("Beyonce", artists)


def test_artist_neighbors_start_with_the_artist_under_cosine(model, artists) -> None:
    table = artist_neighbors(model, "abba", artists, measure="cosine", k=3)
    assert table["name"].iloc[0] == "Abba"
    assert table["score"].iloc[0] == pytest.approx(1.0)
    assert table.attrs["query"] == "Abba"
    assert len(table) == 3


def test_rec_sheet_round_trip(tmp_path, artists) -> None:
    path = write_rec_sheet(artists, tmp_path / "sheet.csv", n=4, likes=["Beyoncé", "Abba"])
    sheet = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert sheet["name"].tolist() == ["Guns N' Roses", "Beyoncé", "Abba", "Roses"]
    assert read_rec_sheet(path, artists).tolist() == [3, 5]
    assert not list(tmp_path.glob(".*tmp"))


@pytest.mark.parametrize(("content", "message"), [
    ("artist,Like\nAbba,1\n", "lacks the column"),
    ("name,Like\nAbba,yes\n", "line 2: Like must be 1 or blank"),
    ("name,Like\nAbba,\nRoses,\n", "likes no artist"),
    ("name,Like\nAbbba,1\n", "'Abbba' is not in the data (close matches: Abba); find exact "
                             "names with `lastfm-rec artists QUERY`"),
    ("name,Like\nguns n' roses,1\n", "\"guns n' roses\" matches 2 artists ignoring case "
                                      "(Guns N' Roses, GUNS N' ROSES): write one of them exactly"),
    ("", "not a readable CSV"),
])
def test_rec_sheet_errors(tmp_path, artists, content, message) -> None:
    path = tmp_path / "sheet.csv"
    path.write_text(content, encoding="utf-8")
    artists = pd.concat([artists, artists.iloc[:1].assign(name="GUNS N' ROSES")])
    with pytest.raises(RecSheetError, match=re.escape(message)):
        read_rec_sheet(path, artists)


def test_rec_sheet_takes_the_one_artist_equal_ignoring_case(tmp_path, artists,
                                                            caplog) -> None:
    path = tmp_path / "sheet.csv"
    path.write_text("name,Like\nGuns N' Roses,\nbeyoncé,1\nMute,1\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="lastfm_rec.recommend"):
        assert read_rec_sheet(path, artists).tolist() == [3, 4]
    assert caplog.messages == [f"note: rec sheet {path}: 'beyoncé' taken as 'Beyoncé' "
                               "(the only artist with that name ignoring case)"]


def test_rec_sheet_takes_the_first_of_artists_with_one_name(tmp_path, artists) -> None:
    path = tmp_path / "sheet.csv"
    path.write_text("name,Like\nAbba,1\n", encoding="utf-8")
    twice = pd.concat([artists, artists.iloc[[5]]], ignore_index=True)
    assert read_rec_sheet(path, twice).tolist() == [5]


def test_search_artists_lists_exact_names(artists) -> None:
    table = search_artists("ROSES", artists)
    assert table["name"].tolist() == ["Roses", "Guns N' Roses", "Guns N' Roses (live)"]
    assert table.attrs["matches"] == 3
    assert list(table.columns) == ["name", "listeners", "top3_tags"]
    assert search_artists("roses", artists, k=1)["name"].tolist() == ["Roses"]
    with pytest.raises(KeyError, match="close names: Abba"):
        search_artists("abbba", artists)


def test_missing_rec_sheet(tmp_path, artists) -> None:
    with pytest.raises(RecSheetError, match="does not exist"):
        read_rec_sheet(tmp_path / "nope.csv", artists)


def test_similar_users_embedding_averages_the_closest_users() -> None:
    ratings = sp.csr_matrix(np.array([[1.0, 0, 0], [0.5, 0.5, 0], [0, 0, 1], [0.9, 0.9, 0]]))
    users = np.arange(8, dtype=float).reshape(4, 2)
    # Likes artists 0 and 1: user 3 (1.8), then users 0 and 1 tie at 1.0 (lower id first).
    np.testing.assert_allclose(similar_users_embedding([0, 1], ratings, users, n_similar=2),
                               users[[3, 0]].mean(axis=0))
    np.testing.assert_allclose(similar_users_embedding([0, 1], ratings, users, n_similar=3),
                               users[[3, 0, 1]].mean(axis=0))


def test_similar_users_model_compares_users_on_the_training_rows() -> None:
    rows = pd.DataFrame({"u_id": [0, 1, 1, 2, 3], "a_id": [0, 0, 1, 2, 1],
                         "w_mm": [0.2, 0.5, 0.5, 1.0, 0.9]})
    users = np.arange(8, dtype=float).reshape(4, 2)
    model = SimpleNamespace(train_ratings=rows, embeddings={"u_id": users},
                            hyperparameters={"n_users": 4, "n_artists": 4})
    # Likes artists 0 and 1: user 1 (1.0), then user 3 (0.9).
    np.testing.assert_allclose(similar_users_model(model, [0, 1], n_similar=2),
                               users[[1, 3]].mean(axis=0))
    with pytest.raises(ValueError, match="built by build_model"):
        similar_users_model(SimpleNamespace(train_ratings=None), [0])


def test_same_label_share_counts_neighbours_with_the_items_label() -> None:
    vectors = np.array([[1.0, 0.0], [2.0, 0.1], [0.0, 1.0], [0.1, 3.0], [1.0, 1.5]])
    labels = ["rock", "rock", "pop", "pop", "rock"]
    # Nearest other item (cosine): 1, 0, 3, 2 and, for the last (rock), item 3 (pop).
    assert same_label_share(vectors, labels, n=1) == pytest.approx(4 / 5)
    # Two nearest: 0 -> {1, 4}, 1 -> {0, 4}, 2 -> {3, 4}, 3 -> {2, 4}, 4 -> {3, 2}.
    assert same_label_share(vectors, labels, n=2) == pytest.approx(6 / 10)
    with pytest.raises(ValueError, match="one per row"):
        same_label_share(vectors, labels[:3])


def test_fold_in_recovers_a_user_that_fits_exactly() -> None:
    rng = np.random.default_rng(1)
    items = rng.normal(size=(30, 3))
    true_user = np.array([0.5, -1.0, 0.25])
    scores = items @ true_user
    liked = np.argsort(-scores)[:3]
    folded = fold_in(liked, items / scores[liked].mean(), regularization=1e-9)
    # With no regularisation the liked items are fitted to 1 each.
    np.testing.assert_allclose((items / scores[liked].mean())[liked] @ folded, 1.0, atol=1e-6)
    stronger = fold_in(liked, items, regularization=10.0)
    assert np.linalg.norm(stronger) < np.linalg.norm(fold_in(liked, items, 0.01))


def test_popularity_correlation(artists) -> None:
    follows = popularity_correlation(artists["listeners"].to_numpy() * 2.0, artists)
    assert follows["listeners"] == pytest.approx(1.0)
    against = popularity_correlation(-artists["popularity_score"].to_numpy(), artists)
    assert against["popularity_score"] == pytest.approx(-1.0)


def test_tag_share_counts_artists_with_a_matching_top_tag() -> None:
    tags = ["black metal / norwegian", "rock / hard rock", "heavy metal", "none"]
    assert tag_share(tags, ["metal"]) == 0.5
    assert tag_share(pd.Series(["pop / rnb", "electropop"]), ["rnb", "dance"]) == 0.5
    assert tag_share(["pop / rnb", "electropop"], ["pop"]) == 1.0  # "electropop" contains it
    with pytest.raises(ValueError, match="at least one artist"):
        tag_share([], ["metal"])
