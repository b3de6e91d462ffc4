"""The figures the original analysis printed, reproduced exactly on the real data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lastfm_rec import (
    add_popularity_score,
    add_top_tags,
    label_tags,
    load_dataset,
    prepare,
    transform_weights,
)

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def dataset(real_data_dir):
    return load_dataset(real_data_dir)


@pytest.fixture(scope="module")
def prepared(dataset):
    return prepare(dataset)


def test_table_shapes_and_missing_pictures(dataset) -> None:
    assert dataset.artists.shape == (17632, 4)
    assert dataset.user_artists.shape == (92834, 3)
    assert dataset.user_friends.shape == (25434, 2)
    assert dataset.user_tagged.shape == (186479, 6)
    assert dataset.tags.shape == (11946, 2)
    assert dataset.artists["pictureURL"].isna().sum() == 444
    assert dataset.artists.drop(columns="pictureURL").notna().all().all()


def test_raw_weight_statistics(dataset) -> None:
    weight = dataset.user_artists["weight"]
    assert round(weight.mean(), 3) == 745.244
    assert round(weight.std(), 3) == 3751.322
    assert weight.quantile([0.25, 0.5, 0.75]).tolist() == [107, 260, 614]
    assert weight.max() == 352698
    assert round(np.quantile(weight, 0.99), 2) == 7228.01


def test_trimming_at_the_99th_percentile(dataset) -> None:
    trimmed = transform_weights(dataset.user_artists)
    assert trimmed.attrs["rows_removed"] == 929
    assert len(trimmed) == 91905
    assert round(trimmed["weight"].mean(), 3) == 536.547
    assert round(trimmed["weight"].std(), 3) == 823.351
    assert trimmed["weight"].max() == 7226
    assert trimmed["userID"].nunique() == 1891
    assert trimmed["artistID"].nunique() == 17608
    assert round(trimmed["w_mm"].mean(), 3) == 0.074


def test_tag_assignments_to_unknown_artists_are_dropped(dataset) -> None:
    labelled = label_tags(dataset.user_tagged, dataset.tags, dataset.artists)
    assert len(dataset.user_tagged) - len(labelled) == 1538
    assert len(labelled) == 184941
    # The original printed rock 7431, pop 5393, ... from misaligned tag names; joined by
    # key the order of the top five is the same but the counts are these.
    counts = labelled["tag"].value_counts()
    assert counts.head(5).to_dict() == {"rock": 7459, "pop": 5401, "alternative": 5223,
                                        "electronic": 4616, "indie": 4422}
    rock_id = dataset.tags.loc[dataset.tags["tagValue"] == "rock", "tagID"].item()
    known = dataset.user_tagged["artistID"].isin(dataset.artists["artistID"])
    assert (dataset.user_tagged.loc[known, "tagID"] == rock_id).sum() == 7459


def test_top_tags_are_joined_by_key(dataset) -> None:
    tagged = add_top_tags(dataset.artists, dataset.user_tagged, dataset.tags).set_index("name")
    assert tagged.loc["Lady Gaga", "top3_tags"] == "pop / dance / electronic"
    assert tagged.loc["Kanye West", "top3_tags"] == "hip-hop / rap / hip hop"
    assert tagged.loc["Carpathian Forest", "top3_tags"].startswith("black metal / ")
    # What the original printed through its misaligned merge must not come back.
    assert tagged.loc["Lady Gaga", "top1_tags"] != "alternative"
    assert tagged.loc["Beyoncé", "top1_tags"] != "hard rock"
    assert tagged.loc["MALICE MIZER", "top1_tags"] != "cybergrind"


def test_popularity_table_on_untrimmed_data(dataset) -> None:
    table = add_popularity_score(dataset.artists, dataset.user_artists, n_users=1892)
    top = table.sort_values("popularity_score", ascending=False).head(5)
    expected = pd.DataFrame({
        "name": ["Britney Spears", "Depeche Mode", "Lady Gaga", "Christina Aguilera",
                 "Paramore"],
        "popularity_score": [1264.873, 687.795, 682.551, 559.411, 509.223],
        "listeners": [522, 282, 611, 407, 399],
    })
    assert top["name"].tolist() == expected["name"].tolist()
    assert top["popularity_score"].round(3).tolist() == expected["popularity_score"].tolist()
    assert top["listeners"].tolist() == expected["listeners"].tolist()


def test_prepared_data(prepared) -> None:
    assert (prepared.n_users, prepared.n_artists) == (1891, 17608)
    assert prepared.rows_removed == 929
    assert len(prepared.ratings) == 91905
    assert prepared.scaler.minimum == 1 and prepared.scaler.maximum == 7226
    assert prepared.artists.shape[0] == 17608
