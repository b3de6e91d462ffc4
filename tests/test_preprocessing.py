"""Preprocessing on small hand-made tables and on the synthetic data set.

Each of the original notebook's defects has a test here that would have caught it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lastfm_rec import (
    IdMap,
    WeightScaler,
    add_popularity_score,
    add_top_tags,
    label_tags,
    load_dataset,
    prepare,
    reindex,
    split_dataframe,
    transform_weights,
)


@pytest.fixture()
def listens() -> pd.DataFrame:
    return pd.DataFrame({
        "userID": [2, 2, 2, 5, 5, 9, 9, 9, 9, 9],
        "artistID": [10, 11, 12, 10, 13, 10, 11, 12, 13, 14],
        "weight": [100, 200, 300, 400, 500, 600, 700, 800, 900, 10_000],
    })


@pytest.fixture()
def tag_tables() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    artists = pd.DataFrame({"artistID": [10, 11, 12], "name": ["A", "B", "C"]})
    tags = pd.DataFrame({"tagID": [1, 2, 3, 4], "tagValue": ["rock", "pop", "jazz", "emo"]})
    user_tagged = pd.DataFrame({
        "userID": [2, 2, 3, 3, 4, 4, 4, 5, 5],
        "artistID": [10, 10, 10, 11, 10, 11, 11, 99, 11],
        "tagID": [1, 2, 1, 3, 4, 3, 2, 1, 1],
    })
    return artists, tags, user_tagged


def test_transform_weights_trims_at_the_given_quantile(listens: pd.DataFrame) -> None:
    for quantile in (0.95, 0.8):
        out = transform_weights(listens, quantile=quantile)
        threshold = np.quantile(listens["weight"], quantile)
        assert out.attrs["outlier_threshold"] == pytest.approx(threshold)
        assert (out["weight"] <= threshold).all()
        assert out.attrs["rows_removed"] == int((listens["weight"] > threshold).sum())
    assert len(transform_weights(listens, quantile=0.8)) < len(
        transform_weights(listens, quantile=0.95))


def test_transform_weights_scales_even_without_trimming(listens: pd.DataFrame) -> None:
    out = transform_weights(listens, remove_outliers=False)
    assert len(out) == len(listens)
    assert out.attrs["rows_removed"] == 0
    assert out["w_mm"].min() == 0.0
    assert out["w_mm"].max() == 1.0
    expected = (listens["weight"] - 100) / (10_000 - 100)
    np.testing.assert_allclose(out["w_mm"], expected)


def test_transform_weights_does_not_modify_its_input(listens: pd.DataFrame) -> None:
    before = listens.copy()
    transform_weights(listens)
    pd.testing.assert_frame_equal(listens, before)


def test_scaler_fitted_on_training_rows_scales_test_rows_the_same_way(
        listens: pd.DataFrame) -> None:
    train, test = split_dataframe(listens, holdout_fraction=0.3, seed=1)
    scaler = WeightScaler.fit(train["weight"])
    scaled_test = transform_weights(test, remove_outliers=False, scaler=scaler)
    assert scaled_test.attrs["weight_scaler"] == scaler
    np.testing.assert_allclose(
        scaled_test["w_mm"],
        (test["weight"] - train["weight"].min()) / (train["weight"].max()
                                                    - train["weight"].min()))


def test_weight_scaler_with_equal_bounds_gives_zeros() -> None:
    assert WeightScaler.fit([5, 5]).transform([5, 5]).tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="no weights"):
        WeightScaler.fit([])


def test_label_tags_joins_by_key_not_by_row_order(tag_tables) -> None:
    artists, tags, user_tagged = tag_tables
    labelled = label_tags(user_tagged, tags, artists)
    shuffled = label_tags(user_tagged, tags.iloc[::-1].reset_index(drop=True), artists)
    pd.testing.assert_frame_equal(labelled, shuffled)
    expected = dict(zip(tags["tagID"], tags["tagValue"], strict=True))
    assert (labelled["tag"] == labelled["tagID"].map(expected)).all()
    assert 99 not in labelled["artistID"].to_numpy()  # an artist missing from artists
    assert len(labelled) == len(user_tagged) - 1


def test_add_top_tags_ranks_by_count_and_breaks_ties_alphabetically(tag_tables) -> None:
    artists, tags, user_tagged = tag_tables
    out = add_top_tags(artists, user_tagged, tags).set_index("name")
    # A: rock x2, pop x1, emo x1 -> emo before pop on the tie.
    assert out.loc["A", "top3_tags"] == "rock / emo / pop"
    assert out.loc["A", "top1_tags"] == "rock"
    # B: jazz x2, pop x1, rock x1.
    assert out.loc["B", "top3_tags"] == "jazz / pop / rock"
    assert out.loc["C", "top3_tags"] == "none"
    assert out.loc["C", "top1_tags"] == "none"


def test_add_top_tags_keeps_three_and_counts_a_name_once(tag_tables) -> None:
    artists, tags, user_tagged = tag_tables
    # Tag 5 is another "rock": its assignments count with tag 1's.
    tags = pd.concat([tags, pd.DataFrame({"tagID": [5, 6], "tagValue": ["rock", "ska"]})])
    extra = pd.DataFrame({"userID": [6, 6, 7], "artistID": [11, 11, 11], "tagID": [5, 6, 5]})
    out = add_top_tags(artists, pd.concat([user_tagged, extra]), tags).set_index("name")
    # B: rock 1 + 2 (tags 1 and 5), jazz 2, pop 1, ska 1: four names, the top three kept.
    assert out.loc["B", "top3_tags"] == "rock / jazz / pop"
    assert out.loc["B", "top1_tags"] == "rock"
    assert out.loc["A", "top3_tags"] == "rock / emo / pop"


def test_add_top_tags_without_any_tag_gives_none(tag_tables) -> None:
    artists, tags, user_tagged = tag_tables
    out = add_top_tags(artists, user_tagged.iloc[:0], tags)
    assert out["top3_tags"].tolist() == out["top1_tags"].tolist() == ["none"] * 3


def test_add_popularity_score(listens: pd.DataFrame) -> None:
    artists = pd.DataFrame({"artistID": [10, 11, 15], "name": ["A", "B", "unheard"]})
    out = add_popularity_score(artists, listens).set_index("name")
    assert out.loc["A", "popularity_score"] == pytest.approx((100 + 400 + 600) / 3)
    assert out.loc["A", "listeners"] == 3
    assert out.loc["unheard", "listeners"] == 0
    assert out.loc["unheard", "popularity_score"] == 0.0
    assert add_popularity_score(artists, listens, n_users=10).set_index("name").loc[
        "B", "popularity_score"] == pytest.approx(90.0)


def test_id_map_translates_both_ways() -> None:
    mapping = IdMap.from_values([30, 10, 20, 10])
    assert len(mapping) == 3
    assert mapping.to_index([10, 30]).tolist() == [0, 2]
    assert mapping.to_id([2, 0]).tolist() == [30, 10]
    with pytest.raises(KeyError, match="id 25"):
        mapping.to_index([20, 25])


def test_reindex_gives_dense_ids_and_orders_artists(listens: pd.DataFrame) -> None:
    artists = pd.DataFrame({"artistID": [14, 13, 12, 11, 10, 99],
                            "name": ["e", "d", "c", "b", "a", "unheard"]})
    ratings, listened, users, artist_map = reindex(listens, artists)
    assert sorted(ratings["u_id"].unique()) == list(range(3))
    assert listened["a_id"].tolist() == list(range(5))
    assert listened["name"].tolist() == ["a", "b", "c", "d", "e"]
    assert (users.to_id(ratings["u_id"]) == ratings["userID"]).all()
    assert (artist_map.to_id(ratings["a_id"]) == ratings["artistID"]).all()
    with pytest.raises(ValueError, match="no row in the artists table"):
        reindex(listens, artists.iloc[1:])


def test_split_dataframe_is_seeded_and_partitions_rows(listens: pd.DataFrame) -> None:
    train, test = split_dataframe(listens, holdout_fraction=0.3, seed=3)
    _, again_test = split_dataframe(listens, holdout_fraction=0.3, seed=3)
    assert test.index.tolist() == again_test.index.tolist()
    assert len(test) == 3
    assert sorted(train.index.tolist() + test.index.tolist()) == listens.index.tolist()
    other = {tuple(split_dataframe(listens, 0.3, seed=s)[1].index) for s in range(5)}
    assert len(other) > 1
    with pytest.raises(ValueError, match="holdout_fraction"):
        split_dataframe(listens, holdout_fraction=1.0)


def test_prepare_on_synthetic_data(synthetic_dir) -> None:
    dataset = load_dataset(synthetic_dir)
    prepared = prepare(dataset)
    ratings, artists = prepared.ratings, prepared.artists
    assert prepared.rows_removed == len(dataset.user_artists) - len(ratings)
    assert ratings["u_id"].max() == prepared.n_users - 1
    assert ratings["a_id"].max() == prepared.n_artists - 1
    assert len(artists) == prepared.n_artists
    assert (artists["a_id"].to_numpy() == np.arange(prepared.n_artists)).all()
    assert ratings["w_mm"].between(0, 1).all()
    assert (artists["listeners"] >= 1).all()
    assert artists["top3_tags"].ne("none").any()
