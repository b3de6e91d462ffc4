"""Seeded synthetic data in the HetRec 2011 Last.fm format.

Owns one thing: writing a folder of ``.dat`` files that the normal loaders read, shaped like
the real data (heavy-tailed artist popularity and play counts, about 49 artists per user,
genre structure that tags and friendships echo). Tests use a small instance; the growth
benchmark uses 1x, 10x and 100x the real size. Every array is generated in vectorised
chunks, so memory stays linear in the number of rows.
"""

from __future__ import annotations

import csv
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

REAL_USERS = 1892
REAL_ARTISTS = 17632


@dataclass(frozen=True)
class SyntheticSpec:
    """What to generate.

    Parameters
    ----------
    n_users, n_artists
        Users and artists written to the files.
    artists_per_user
        The median number of artists a user listens to; 90% of users get exactly this many
        (the real data keeps each user's top 50), the rest a uniform number below it.
    n_genres
        Hidden clusters: a user mostly listens within a favourite genre, and an artist's
        tags are mostly its genre's tags.
    n_tags
        Tag vocabulary size.
    tags_per_user
        Mean tag assignments per user.
    friends_per_user
        Mean friendships per user (each friendship is written in both directions).
    unknown_artist_tags
        Tag assignments that point to artist ids missing from ``artists.dat``, as the real
        data has.
    popularity_exponent
        Zipf exponent of artist popularity within a genre.
    """

    n_users: int = 100
    n_artists: int = 400
    artists_per_user: int = 50
    n_genres: int = 8
    n_tags: int = 60
    tags_per_user: int = 30
    friends_per_user: int = 6
    unknown_artist_tags: int = 5
    popularity_exponent: float = 1.0

    @classmethod
    def scaled(cls, factor: float) -> SyntheticSpec:
        """The real data's shape at ``factor`` times its users and artists."""
        return cls(
            n_users=max(2, round(REAL_USERS * factor)),
            n_artists=max(2, round(REAL_ARTISTS * factor)),
            artists_per_user=50,
            n_genres=max(2, round(20 * factor**0.5)),
            n_tags=max(10, round(11946 * factor**0.5)),
            tags_per_user=98,
            friends_per_user=13,
            unknown_artist_tags=round(1538 * factor),
        )


def _zipf_cdf(n: int, exponent: float) -> np.ndarray:
    weights = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** exponent
    cdf = np.cumsum(weights)
    return cdf / cdf[-1]


def _listening_rows(spec: SyntheticSpec,
                    rng: np.random.Generator) -> tuple[pd.DataFrame, np.ndarray]:
    """Draw (user, artist, weight) rows without repeated pairs, and each user's genre."""
    n_users, n_artists = spec.n_users, spec.n_artists
    k = min(spec.artists_per_user, n_artists)
    per_user = np.full(n_users, k, dtype=np.int64)
    short = rng.random(n_users) < 0.1
    per_user[short] = rng.integers(1, k + 1, size=short.sum())

    genre_of_artist = np.arange(n_artists) % spec.n_genres
    artists_by_genre = [np.flatnonzero(genre_of_artist == g) for g in range(spec.n_genres)]
    cdfs = [_zipf_cdf(len(a), spec.popularity_exponent) for a in artists_by_genre]
    favourite = rng.integers(0, spec.n_genres, size=n_users)

    users, artists = [], []
    remaining = np.arange(n_users)
    need = per_user.copy()
    for _ in range(20):  # oversample, drop repeats, and top up the few users still short
        if remaining.size == 0:
            break
        draws = np.repeat(remaining, 2 * need[remaining] + 4)
        genre = np.where(
            rng.random(draws.size) < 0.75,
            favourite[draws],
            rng.integers(0, spec.n_genres, size=draws.size),
        )
        picked = np.empty(draws.size, dtype=np.int64)
        for g in range(spec.n_genres):
            sel = np.flatnonzero(genre == g)
            rank = np.searchsorted(cdfs[g], rng.random(sel.size))
            picked[sel] = artists_by_genre[g][np.minimum(rank, len(cdfs[g]) - 1)]
        users.append(draws)
        artists.append(picked)
        key = np.concatenate(users) * n_artists + np.concatenate(artists)
        _, first = np.unique(key, return_index=True)
        first.sort()
        kept_users = np.concatenate(users)[first]
        rank_in_user = _rank_within_groups(kept_users)
        keep = rank_in_user < per_user[kept_users]
        users = [kept_users[keep]]
        artists = [np.concatenate(artists)[first][keep]]
        have = np.bincount(users[0], minlength=n_users)
        need = per_user - have
        remaining = np.flatnonzero(need > 0)

    user_idx, artist_idx = users[0], artists[0]
    order = np.lexsort((artist_idx, user_idx))
    user_idx, artist_idx = user_idx[order], artist_idx[order]
    # Heavy-tailed play counts: a per-user activity level times a lognormal draw.
    activity = rng.lognormal(mean=5.5, sigma=0.8, size=n_users)
    weight = activity[user_idx] * rng.lognormal(mean=0.0, sigma=1.1, size=user_idx.size)
    weight = np.maximum(1, np.round(weight)).astype(np.int64)
    return pd.DataFrame({"user": user_idx, "artist": artist_idx, "weight": weight}), favourite


def _rank_within_groups(groups: np.ndarray) -> np.ndarray:
    """Position of each element among the earlier elements of its group (stable)."""
    order = np.argsort(groups, kind="stable")
    sorted_groups = groups[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_groups)) + 1]
    lengths = np.diff(np.r_[starts, sorted_groups.size])
    ranks_sorted = np.arange(sorted_groups.size) - np.repeat(starts, lengths)
    ranks = np.empty_like(ranks_sorted)
    ranks[order] = ranks_sorted
    return ranks


def _write_table(frame: pd.DataFrame, path: Path, encoding: str = "utf-8") -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        frame.to_csv(tmp, sep="\t", index=False, encoding=encoding, lineterminator="\n",
                     quoting=csv.QUOTE_NONE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def generate_hetrec(out_dir: str | os.PathLike, spec: SyntheticSpec | None = None,
                    seed: int = 0) -> Path:
    """Write a synthetic data set in the HetRec 2011 Last.fm 2K format.

    Parameters
    ----------
    out_dir
        Folder to write ``artists.dat``, ``tags.dat``, ``user_artists.dat``,
        ``user_friends.dat`` and ``user_taggedartists.dat`` into (created if needed).
    spec
        Sizes and shape; the default is a small instance for unit tests.
    seed
        Seed of every random draw: the same seed writes the same bytes.

    Returns
    -------
    Path
        ``out_dir``.
    """
    spec = spec or SyntheticSpec()
    if spec.n_users < 2 or spec.n_artists < 2 or spec.artists_per_user < 1:
        raise ValueError("spec needs at least 2 users, 2 artists and 1 artist per user")
    rng = np.random.default_rng(seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    # Real ids have gaps: users start at 2, artists skip some numbers.
    user_ids = 2 + np.sort(rng.choice(spec.n_users + spec.n_users // 10 + 1, spec.n_users,
                                      replace=False))
    artist_ids = 1 + np.sort(rng.choice(spec.n_artists + spec.n_artists // 16 + 1,
                                        spec.n_artists, replace=False))
    # Shuffle which id gets which popularity rank, so id order says nothing about popularity.
    artist_id_of_index = rng.permutation(artist_ids)

    listens, favourite = _listening_rows(spec, rng)
    # A few artists in artists.dat nobody listens to, as in the real data (17632 vs 17608).
    names = np.array([f"Artist {i:06d}" for i in artist_ids], dtype=object)
    names[0] = "Beyoncé Tribute"
    if spec.n_artists > 1:
        names[1] = '"Weird" Ensemble'
    artists = pd.DataFrame({
        "id": artist_ids,
        "name": names,
        "url": [f"http://www.last.fm/music/artist{i}" for i in artist_ids],
        "pictureURL": [f"http://userserve-ak.last.fm/serve/252/{i}.jpg" for i in artist_ids],
    })
    artists.loc[artists.index % 40 == 3, "pictureURL"] = ""

    tag_names = np.array([f"tag{i:04d}" for i in range(spec.n_tags)], dtype=object)
    tag_names[0] = "électro"
    tags = pd.DataFrame({"tagID": np.arange(1, spec.n_tags + 1), "tagValue": tag_names})

    user_artists = pd.DataFrame({
        "userID": user_ids[listens["user"].to_numpy()],
        "artistID": artist_id_of_index[listens["artist"].to_numpy()],
        "weight": listens["weight"].to_numpy(),
    }).sort_values(["userID", "weight"], ascending=[True, False], kind="stable")

    friends = _friend_pairs(spec, favourite, rng)
    user_friends = pd.DataFrame({"userID": user_ids[friends[:, 0]],
                                 "friendID": user_ids[friends[:, 1]]})

    tagged = _tag_assignments(spec, listens, rng)
    unknown = artist_ids.max() + 1 + np.arange(spec.unknown_artist_tags)
    tagged_artist = artist_id_of_index[tagged["artist"]]
    user_tagged = pd.DataFrame({
        "userID": np.r_[user_ids[tagged["user"]], np.full(unknown.size, user_ids[0])],
        "artistID": np.r_[tagged_artist, unknown],
        "tagID": np.r_[tagged["tag"] + 1, np.ones(unknown.size, dtype=np.int64)],
    })
    n = len(user_tagged)
    user_tagged["day"] = rng.integers(1, 29, size=n)
    user_tagged["month"] = rng.integers(1, 13, size=n)
    user_tagged["year"] = rng.integers(2005, 2012, size=n)

    _write_table(artists, out / "artists.dat")
    _write_table(tags, out / "tags.dat", encoding="latin-1")
    _write_table(user_artists, out / "user_artists.dat")
    _write_table(user_friends, out / "user_friends.dat")
    _write_table(user_tagged, out / "user_taggedartists.dat")
    return out


def _friend_pairs(spec: SyntheticSpec, favourite: np.ndarray,
                  rng: np.random.Generator) -> np.ndarray:
    """Symmetric friendships, mostly between users who share a favourite genre."""
    n_pairs = spec.n_users * spec.friends_per_user // 2
    a = rng.integers(0, spec.n_users, size=n_pairs)
    same_genre = rng.random(n_pairs) < 0.7
    b = rng.integers(0, spec.n_users, size=n_pairs)
    by_genre = np.argsort(favourite, kind="stable")
    starts = np.searchsorted(favourite[by_genre], favourite[a])
    counts = np.bincount(favourite, minlength=spec.n_genres)[favourite[a]]
    b[same_genre] = by_genre[starts[same_genre]
                             + (rng.random(same_genre.sum()) * counts[same_genre]).astype(int)]
    distinct = a != b
    lo, hi = np.minimum(a, b)[distinct], np.maximum(a, b)[distinct]
    key = np.unique(np.r_[lo * spec.n_users + hi, hi * spec.n_users + lo])
    return np.c_[key // spec.n_users, key % spec.n_users]


def _tag_assignments(spec: SyntheticSpec, listens: pd.DataFrame,
                     rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Users tag artists they listen to, mostly with the artist's genre tags."""
    n = spec.n_users * spec.tags_per_user
    rows = rng.integers(0, len(listens), size=n)
    user = listens["user"].to_numpy()[rows]
    artist = listens["artist"].to_numpy()[rows]
    genre = artist % spec.n_genres
    tags_per_genre = max(1, spec.n_tags // spec.n_genres)
    genre_tag = genre * tags_per_genre + np.minimum(
        rng.geometric(0.5, size=n) - 1, tags_per_genre - 1)
    tag = np.where(rng.random(n) < 0.8, genre_tag % spec.n_tags,
                   rng.integers(0, spec.n_tags, size=n))
    key = np.unique((user * spec.n_artists + artist) * spec.n_tags + tag)
    pair, tag = np.divmod(key, spec.n_tags)
    return {"user": pair // spec.n_artists, "artist": pair % spec.n_artists, "tag": tag}
