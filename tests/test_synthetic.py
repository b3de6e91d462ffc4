"""The seeded synthetic generator: loadable HetRec files with the requested shape.

Small sizes only (each test generates in well under a second); ``bench/run.py`` generates
the 1x, 10x and 100x sets.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lastfm_rec import load_dataset, prepare
from lastfm_rec.data.hetrec import REQUIRED_FILES
from lastfm_rec.data.synthetic import (
    REAL_ARTISTS,
    REAL_USERS,
    SyntheticSpec,
    _int_lines,
    generate_hetrec,
)

SMALL = SyntheticSpec.scaled(0.1)  # 189 users, 1763 artists


def digest(folder: Path) -> dict[str, str]:
    return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest()
            for name in REQUIRED_FILES}


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_hetrec(tmp_path_factory.mktemp("small"), SMALL, seed=3)


@pytest.fixture(scope="module")
def real_size(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1x: the real data's size (about half a second to generate)."""
    return generate_hetrec(tmp_path_factory.mktemp("real_size"), SyntheticSpec.scaled(1), seed=5)


def test_scaled_sizes() -> None:
    for factor, users, artists in [(1, 1892, 17632), (10, 18920, 176320),
                                   (100, 189200, 1763200)]:
        spec = SyntheticSpec.scaled(factor)
        assert (spec.n_users, spec.n_artists) == (users, artists)
        assert spec.artists_per_user == 50
        assert spec.expected_rows == pytest.approx(49.2 * users, rel=0.01)  # ~9.3 M at 100x
    assert (REAL_USERS, REAL_ARTISTS) == (1892, 17632)


@pytest.mark.parametrize("spec", [SyntheticSpec(), SMALL,
                                  SyntheticSpec(n_users=200, n_artists=2500, artists_per_user=20,
                                                n_genres=3)],
                         ids=["default", "scaled-0.1", "sparse"])
def test_loads_with_the_asked_for_statistics(tmp_path: Path, spec: SyntheticSpec) -> None:
    dataset = load_dataset(generate_hetrec(tmp_path, spec, seed=1))
    listens = dataset.user_artists
    per_user = listens.groupby("userID").size()
    assert len(dataset.artists) == spec.n_artists
    assert dataset.artists["artistID"].is_unique
    assert listens["userID"].nunique() == spec.n_users
    assert listens["artistID"].nunique() == spec.n_artists  # every artist has a listener
    assert set(listens["artistID"]) <= set(dataset.artists["artistID"])
    assert per_user.median() == spec.artists_per_user
    assert per_user.max() == spec.artists_per_user and per_user.min() >= 1
    assert len(listens) == pytest.approx(spec.expected_rows, rel=0.03)
    assert not listens.duplicated(["userID", "artistID"]).any()
    assert (listens["weight"] >= 1).all()
    assert len(dataset.tags) == spec.n_tags
    assert len(dataset.user_tagged) == spec.n_users * spec.tags_per_user \
        + spec.unknown_artist_tags
    unknown = ~dataset.user_tagged["artistID"].isin(dataset.artists["artistID"])
    assert unknown.sum() == spec.unknown_artist_tags
    friends = dataset.user_friends
    assert len(friends) == 2 * (spec.n_users * spec.friends_per_user // 2)
    assert (friends["userID"] != friends["friendID"]).all()
    pairs = set(zip(friends["userID"], friends["friendID"], strict=True))
    assert all((b, a) in pairs for a, b in pairs)  # both directions, as in the real file
    prepared = prepare(dataset)  # the analysis runs on it
    assert prepared.n_users == spec.n_users
    assert prepared.n_artists <= spec.n_artists


def test_real_shape_at_1x(real_size: Path) -> None:
    """About 49 artists per user; heavy-tailed popularity and play counts, like the real data
    (60% of artists with one listener, a head that reaches a third of the users; play counts
    with quartiles 107 / 260 / 614 and a 99th percentile of 7228)."""
    listens = load_dataset(real_size).user_artists
    per_user = listens.groupby("userID").size()
    assert per_user.mean() == pytest.approx(49.07, abs=0.5)
    assert len(listens) == pytest.approx(92834, rel=0.02)
    listeners = listens.groupby("artistID").size()
    assert listeners.median() == 1
    assert (listeners == 1).mean() == pytest.approx(0.606, abs=0.05)
    assert 0.2 * REAL_USERS < listeners.max() < 0.45 * REAL_USERS
    weight = listens["weight"]
    q25, q50, q75, q99 = np.quantile(weight, [0.25, 0.5, 0.75, 0.99])
    assert 60 < q25 < 180 and 150 < q50 < 400 and 350 < q75 < 1000 and q99 > 3000
    assert weight.mean() > q50  # right-skewed


def test_file_format_like_the_release(small: Path) -> None:
    raw = (small / "user_artists.dat").read_bytes()
    assert raw.startswith(b"userID\tartistID\tweight\n") and raw.endswith(b"\n")
    assert b"\r" not in raw
    listens = load_dataset(small).user_artists
    # By user, each user's artists from the most played down, as in the real file.
    assert listens["userID"].is_monotonic_increasing
    assert (listens.groupby("userID")["weight"].diff().dropna() <= 0).all()
    assert (small / "tags.dat").read_bytes().splitlines()[1] == "1\télectro".encode("latin-1")
    assert (small / "artists.dat").stat().st_mode & 0o044  # readable like a downloaded file


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path, small: Path) -> None:
    again = generate_hetrec(tmp_path / "again", SMALL, seed=3)
    assert digest(again) == digest(small)
    other = generate_hetrec(tmp_path / "other", SMALL, seed=4)
    differs = [name for name in REQUIRED_FILES if digest(other)[name] != digest(small)[name]]
    assert {"user_artists.dat", "user_friends.dat", "user_taggedartists.dat"} <= set(differs)


def test_int_lines_formats_like_str() -> None:
    values = np.array([0, 1, 9, 10, 99, 100, 12345, 2**40, 10**18], dtype=np.int64)
    other = values[::-1].copy()
    expected = "".join(f"{a}\t{b}\n" for a, b in zip(values, other, strict=True)).encode()
    assert _int_lines([values, other]) == expected
    assert _int_lines([np.zeros(0, dtype=np.int64)]) == b""
    with pytest.raises(ValueError, match="non-negative"):
        _int_lines([np.array([-1])])


def test_rejects_impossible_specs(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 2 users"):
        generate_hetrec(tmp_path, SyntheticSpec(n_users=1))
    with pytest.raises(ValueError, match="more artists than listens"):
        generate_hetrec(tmp_path, SyntheticSpec(n_users=2, n_artists=400, artists_per_user=5))


def test_matches_real_data_statistics(real_data_dir: Path, real_size: Path) -> None:
    """Side by side with the real files: the same per-user and popularity statistics."""
    real = load_dataset(real_data_dir).user_artists
    synthetic = load_dataset(real_size).user_artists
    rows = []
    for listens in (real, synthetic):
        per_user = listens.groupby("userID").size()
        listeners = listens.groupby("artistID").size()
        rows.append({"median_per_user": per_user.median(), "mean_per_user": per_user.mean(),
                     "one_listener": (listeners == 1).mean(),
                     "median_weight": listens["weight"].median()})
    table = pd.DataFrame(rows, index=["real", "synthetic"])
    assert table.loc["real", "median_per_user"] == table.loc["synthetic", "median_per_user"]
    assert table["mean_per_user"].iloc[1] == pytest.approx(table["mean_per_user"].iloc[0],
                                                           abs=0.8)
    assert table["one_listener"].iloc[1] == pytest.approx(table["one_listener"].iloc[0],
                                                          abs=0.05)
    assert table["median_weight"].iloc[1] == pytest.approx(table["median_weight"].iloc[0],
                                                           rel=0.15)


def test_spec_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        SMALL.n_users = 3  # type: ignore[misc]
