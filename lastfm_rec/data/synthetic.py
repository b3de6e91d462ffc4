"""Seeded synthetic data in the HetRec 2011 Last.fm format.

Owns one thing: writing a folder of ``.dat`` files that the normal loaders read, shaped like
the real data (heavy-tailed artist popularity and play counts, about 49 artists per user,
genre structure that tags and friendships echo). Tests use a small instance; the growth
benchmark uses 1x, 10x and 100x the real size (:meth:`SyntheticSpec.scaled`).

How the listening rows are drawn, and what of the real data they reproduce (measured on the
real files; ``tests/test_synthetic.py`` checks the synthetic side):

* Users: 96.7% of real users keep exactly their top 50 artists, the rest fewer (mean 49.07,
  median 50). Here the same share gets exactly ``artists_per_user``, the others a uniform
  number below it.
* Artists: artist ``i`` (0 = most popular) has popularity weight ``(i + offset)^-exponent``
  and belongs to genre ``i mod n_genres``. A user draws 75% of their artists from their
  favourite genre and the rest from the whole catalogue, by popularity, without repeats.
  Every artist in ``artists.dat`` is listened to by someone, as in the real file: artists
  the draw left out each replace one listen of a more popular artist of the same genre, by
  a user who keeps at least one listen of it. This gives the real long tail (about 60% of
  artists with one listener) and head (the top artist reaches about a third of all users).
* Play counts: a per-user activity level (lognormal) times a heavier-tailed per-listen
  factor; the quartiles, 90% and 99% points of the real play counts come out within 10%.

Everything is vectorised over rows and the files are formatted by numpy in chunks, so time
and memory grow linearly with the number of rows: 100x (189,200 users, 1.76 M artists,
9.3 M listening rows, 18.5 M tag assignments) takes about a minute and under 2 GB.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lastfm_rec.files import atomic_write

REAL_USERS = 1892
REAL_ARTISTS = 17632

#: Share of users with exactly ``artists_per_user`` artists (1829 of 1892 in the real data).
FULL_USERS_SHARE = 0.967
#: Share of a user's artists drawn from their favourite genre (the rest: whole catalogue).
FAVOURITE_GENRE_SHARE = 0.75
#: Rows per chunk when formatting the integer tables.
_CHUNK_ROWS = 1 << 20
_POWERS_OF_TEN = 10 ** np.arange(19, dtype=np.int64)


@dataclass(frozen=True)
class SyntheticSpec:
    """What to generate.

    Parameters
    ----------
    n_users, n_artists
        Users and artists written to the files; every artist has at least one listener.
    artists_per_user
        The median number of artists a user listens to; 96.7% of users get exactly this
        many (the real data keeps each user's top 50), the rest a uniform number below it.
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
        Exponent of the artists' popularity weights ``(rank + popularity_offset)^-exponent``.
    popularity_offset
        Flattens the head of the popularity curve (the real top artists are close together).
    """

    n_users: int = 100
    n_artists: int = 400
    artists_per_user: int = 50
    n_genres: int = 8
    n_tags: int = 60
    tags_per_user: int = 30
    friends_per_user: int = 6
    unknown_artist_tags: int = 5
    popularity_exponent: float = 1.25
    popularity_offset: float = 15.0

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
            popularity_exponent=1.25,
            popularity_offset=15.0,
        )

    @property
    def expected_rows(self) -> int:
        """About how many listening rows :func:`generate_hetrec` writes."""
        k = min(self.artists_per_user, self.n_artists)
        per_user = FULL_USERS_SHARE * k + (1 - FULL_USERS_SHARE) * (k / 2 if k > 1 else 1)
        return round(self.n_users * per_user)


# --------------------------------------------------------------------------- listening


def _artists_per_user(spec: SyntheticSpec, rng: np.random.Generator) -> np.ndarray:
    k = min(spec.artists_per_user, spec.n_artists)
    per_user = np.full(spec.n_users, k, dtype=np.int64)
    short = rng.random(spec.n_users) >= FULL_USERS_SHARE
    if k > 1:
        per_user[short] = rng.integers(1, k, size=int(short.sum()))
    return per_user


def _genre_cdfs(spec: SyntheticSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Popularity cdfs: the whole catalogue's, and each genre's stacked into one array.

    Returns ``(global_cdf, stacked, order, genre_start)``: ``order`` lists artists genre by
    genre (popularity order within a genre), ``stacked[j]`` is ``g +`` the within-genre cdf
    at ``order[j]`` for its genre ``g``, so ``searchsorted(stacked, g + u)`` draws from
    genre ``g`` for every ``g`` at once.
    """
    n_artists, n_genres = spec.n_artists, min(spec.n_genres, spec.n_artists)
    weight = (np.arange(n_artists, dtype=np.float64) + spec.popularity_offset) \
        ** -spec.popularity_exponent
    global_cdf = np.cumsum(weight)
    global_cdf /= global_cdf[-1]
    genre = np.arange(n_artists) % n_genres
    order = np.argsort(genre, kind="stable")
    genre_start = np.searchsorted(genre[order], np.arange(n_genres + 1))
    stacked = np.cumsum(weight[order])
    before = np.r_[0.0, stacked[genre_start[1:-1] - 1]]
    totals = stacked[genre_start[1:] - 1] - before
    stacked = (stacked - np.repeat(before, np.diff(genre_start))) \
        / np.repeat(totals, np.diff(genre_start))
    stacked += genre[order]
    return global_cdf, stacked, order, genre_start


def _draw_artists(users: np.ndarray, favourite: np.ndarray, cdfs: tuple,
                  rng: np.random.Generator) -> np.ndarray:
    global_cdf, stacked, order, genre_start = cdfs
    u = rng.random(users.size)
    from_genre = rng.random(users.size) < FAVOURITE_GENRE_SHARE
    picked = np.empty(users.size, dtype=np.int64)
    g = favourite[users[from_genre]]
    slot = np.searchsorted(stacked, g + u[from_genre], side="right")
    slot = np.clip(slot, genre_start[g], genre_start[g + 1] - 1)  # float rounding at edges
    picked[from_genre] = order[slot]
    anywhere = ~from_genre
    picked[anywhere] = np.minimum(np.searchsorted(global_cdf, u[anywhere], side="right"),
                                  global_cdf.size - 1)
    return picked


def _first_occurrences(key: np.ndarray) -> np.ndarray:
    """Indices of the first occurrence of each distinct key, in index order."""
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    first = np.ones(key.size, dtype=bool)
    first[1:] = sorted_key[1:] != sorted_key[:-1]
    return np.sort(order[first])


def _sorted_unique(key: np.ndarray) -> np.ndarray:
    key = np.sort(key)
    keep = np.ones(key.size, dtype=bool)
    keep[1:] = key[1:] != key[:-1]
    return key[keep]


def _listening_rows(spec: SyntheticSpec, rng: np.random.Generator
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(user, artist, weight, favourite genre of each user)``, rows sorted by user.

    No (user, artist) pair repeats, user ``u`` has ``per_user[u]`` rows and every artist
    has at least one listener.
    """
    n_users, n_artists = spec.n_users, spec.n_artists
    n_genres = min(spec.n_genres, n_artists)
    per_user = _artists_per_user(spec, rng)
    favourite = rng.integers(0, n_genres, size=n_users)
    cdfs = _genre_cdfs(spec)

    user = np.zeros(0, dtype=np.int64)
    artist = np.zeros(0, dtype=np.int64)
    need = per_user.copy()
    for attempt in range(100):  # oversample, drop repeats, top up the users still short
        remaining = np.flatnonzero(need > 0)
        if remaining.size == 0:
            break
        extra = need[remaining] // 4 + 2 + attempt
        draws = np.repeat(remaining, need[remaining] + extra)
        user = np.r_[user, draws]
        artist = np.r_[artist, _draw_artists(draws, favourite, cdfs, rng)]
        first = _first_occurrences(user * n_artists + artist)
        user, artist = user[first], artist[first]
        keep = _rank_within_groups(user) < per_user[user]
        user, artist = user[keep], artist[keep]
        need = per_user - np.bincount(user, minlength=n_users)
    if np.any(need > 0):  # only when users ask for nearly every artist of a tiny catalogue
        raise ValueError("could not draw enough distinct artists per user; lower "
                         "artists_per_user or raise n_artists")
    _cover_every_artist(user, artist, n_artists, n_genres, rng)

    order = np.lexsort((artist, user))
    user, artist = user[order], artist[order]
    # Heavy-tailed play counts: a per-user activity level (lognormal) times a per-listen
    # factor exp(0.6 t_4), whose tails are heavier than a lognormal's (clipped at 6 sd of t).
    # The quantiles of the real weights (107 / 260 / 614 at the quartiles, 1387 at 90%,
    # 7228 at 99%) come out within 10%.
    activity = rng.lognormal(mean=5.6, sigma=1.05, size=n_users)
    weight = activity[user] * np.exp(0.6 * np.clip(rng.standard_t(4, size=user.size), -6, 6))
    weight = np.maximum(1, np.round(weight)).astype(np.int64)
    return user, artist, weight, favourite


def _cover_every_artist(user: np.ndarray, artist: np.ndarray, n_artists: int, n_genres: int,
                        rng: np.random.Generator) -> None:
    """Give every artist a listener (in place): each unlistened artist replaces one listen of
    an artist of its genre that has at least two listeners."""
    del user  # the replaced listen keeps its user: no (user, artist) pair can repeat
    for _ in range(50):
        listeners = np.bincount(artist, minlength=n_artists)
        missing = np.flatnonzero(listeners == 0)
        if missing.size == 0:
            return
        donors = np.flatnonzero(listeners[artist] >= 2)
        if donors.size == 0:
            break
        donor_genre = artist[donors] % n_genres
        donors = donors[np.argsort(donor_genre, kind="stable")]
        start = np.searchsorted(artist[donors] % n_genres, np.arange(n_genres + 1))
        count = np.diff(start)
        genre = missing % n_genres
        has = count[genre] > 0
        # Same genre when it has donors, else any donor row.
        slot = np.where(has, start[genre] + (rng.random(missing.size) * count[genre]).astype(
            np.int64), (rng.random(missing.size) * donors.size).astype(np.int64))
        rows = donors[np.minimum(slot, donors.size - 1)]
        first = _first_occurrences(rows)  # one replacement per row
        rows, missing = rows[first], missing[first]
        # Never take more listens from an artist than it can spare (keep one).
        keep = _rank_within_groups(artist[rows]) < listeners[artist[rows]] - 1
        artist[rows[keep]] = missing[keep]
    raise ValueError("could not give every artist a listener: n_artists is too large for "
                     "n_users * artists_per_user")


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


# --------------------------------------------------------------------------- writing


def _int_lines(columns: Sequence[np.ndarray]) -> bytes:
    """Tab-separated decimal lines of non-negative integer columns, formatted by numpy."""
    n = len(columns[0])
    if n == 0:
        return b""
    values = [np.asarray(c, dtype=np.int64) for c in columns]
    if any(v.size and v.min() < 0 for v in values):
        raise ValueError("_int_lines formats non-negative integers only")
    digits = [np.maximum(np.searchsorted(_POWERS_OF_TEN, v, side="right"), 1) for v in values]
    width = np.sum(digits, axis=0) + len(values)  # digits, tabs and the line end
    end = np.cumsum(width)
    buf = np.empty(int(end[-1]), dtype=np.uint8)
    position = end - width
    for v, d in zip(values, digits, strict=True):
        last = position + d - 1
        rest = v.copy()
        for k in range(int(d.max())):
            live = d > k
            buf[(last - k)[live]] = 48 + (rest[live] % 10)
            rest //= 10
        position += d
        buf[position] = 9  # tab; the last one is overwritten by the line end
        position += 1
    buf[end - 1] = 10
    return buf.tobytes()


def _write_file(path: Path, parts: Iterable[bytes]) -> None:
    """Write ``parts`` to ``path`` atomically, readable like the downloaded files."""
    with atomic_write(path) as handle:
        for part in parts:
            handle.write(part)


def _int_table(path: Path, header: Sequence[str], columns: Sequence[np.ndarray]) -> None:
    n = len(columns[0])

    def parts() -> Iterable[bytes]:
        yield ("\t".join(header) + "\n").encode("ascii")
        for start in range(0, n, _CHUNK_ROWS):
            yield _int_lines([c[start:start + _CHUNK_ROWS] for c in columns])
    _write_file(path, parts())


def _text_table(path: Path, header: Sequence[str], n: int,
                line: Callable[[int], str], encoding: str = "utf-8") -> None:
    def parts() -> Iterable[bytes]:
        yield ("\t".join(header) + "\n").encode(encoding)
        for start in range(0, n, _CHUNK_ROWS // 8):
            stop = min(n, start + _CHUNK_ROWS // 8)
            yield "".join([line(i) for i in range(start, stop)]).encode(encoding)
    _write_file(path, parts())


# --------------------------------------------------------------------------- the files


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
    if spec.n_artists > spec.n_users * min(spec.artists_per_user, spec.n_artists) * 0.9:
        raise ValueError("spec has more artists than listens to give them; lower n_artists "
                         "or raise n_users or artists_per_user")
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

    user, artist, weight, favourite = _listening_rows(spec, rng)
    friends = _friend_pairs(spec, favourite, rng)
    tagged = _tag_assignments(spec, user, artist, rng)
    unknown = artist_ids.max() + 1 + np.arange(spec.unknown_artist_tags)
    n_tagged = tagged["user"].size + unknown.size
    dates = (rng.integers(1, 29, size=n_tagged), rng.integers(1, 13, size=n_tagged),
             rng.integers(2005, 2012, size=n_tagged))

    _write_artists(out / "artists.dat", artist_ids)
    _write_tags(out / "tags.dat", spec.n_tags)
    # As in the real file: by user, each user's artists from the most played down.
    order = np.lexsort((artist, -weight, user))
    _int_table(out / "user_artists.dat", ("userID", "artistID", "weight"),
               (user_ids[user[order]], artist_id_of_index[artist[order]], weight[order]))
    del order
    _int_table(out / "user_friends.dat", ("userID", "friendID"),
               (user_ids[friends[:, 0]], user_ids[friends[:, 1]]))
    _int_table(out / "user_taggedartists.dat",
               ("userID", "artistID", "tagID", "day", "month", "year"),
               (np.r_[user_ids[tagged["user"]], np.full(unknown.size, user_ids[0])],
                np.r_[artist_id_of_index[tagged["artist"]], unknown],
                np.r_[tagged["tag"] + 1, np.ones(unknown.size, dtype=np.int64)], *dates))
    return out


def _write_artists(path: Path, artist_ids: np.ndarray) -> None:
    """Names, last.fm URLs and picture URLs; every 40th picture URL is empty."""
    ids = artist_ids.tolist()
    special = {0: "Beyoncé Tribute", 1: '"Weird" Ensemble'}

    def line(i: int) -> str:
        a = ids[i]
        name = special.get(i) or f"Artist {a:06d}"
        picture = "" if i % 40 == 3 else f"http://userserve-ak.last.fm/serve/252/{a}.jpg"
        return f"{a}\t{name}\thttp://www.last.fm/music/artist{a}\t{picture}\n"
    _text_table(path, ("id", "name", "url", "pictureURL"), len(ids), line)


def _write_tags(path: Path, n_tags: int) -> None:
    """Tag names; the first is Latin-1 encoded, as in the real ``tags.dat``."""
    def line(i: int) -> str:
        return f"{i + 1}\t{'électro' if i == 0 else f'tag{i:04d}'}\n"
    _text_table(path, ("tagID", "tagValue"), n_tags, line, encoding="latin-1")


def _friend_pairs(spec: SyntheticSpec, favourite: np.ndarray,
                  rng: np.random.Generator) -> np.ndarray:
    """Symmetric friendships, mostly between users who share a favourite genre.

    ``n_users * friends_per_user // 2`` distinct pairs (when there are that many), each
    returned in both directions, sorted.
    """
    n = spec.n_users
    target = min(n * spec.friends_per_user // 2, n * (n - 1) // 2)
    by_genre = np.argsort(favourite, kind="stable")
    genre_start = np.searchsorted(favourite[by_genre], np.arange(int(favourite.max()) + 2))
    key = np.zeros(0, dtype=np.int64)
    for _ in range(20):
        short = target - key.size
        if short <= 0:
            break
        m = short + short // 4 + 16
        a = rng.integers(0, n, size=m)
        b = rng.integers(0, n, size=m)
        same_genre = rng.random(m) < 0.7
        g = favourite[a[same_genre]]
        size = genre_start[g + 1] - genre_start[g]
        b[same_genre] = by_genre[genre_start[g] + (rng.random(g.size) * size).astype(np.int64)]
        distinct = a != b
        lo, hi = np.minimum(a, b)[distinct], np.maximum(a, b)[distinct]
        key = _sorted_unique(np.r_[key, lo * n + hi])
    if key.size > target:  # drop a random surplus
        key = key[np.sort(rng.choice(key.size, size=target, replace=False))]
    lo, hi = np.divmod(key, n)
    both = _sorted_unique(np.r_[lo * n + hi, hi * n + lo])
    return np.c_[both // n, both % n]


def _tag_assignments(spec: SyntheticSpec, user: np.ndarray, artist: np.ndarray,
                     rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Users tag artists they listen to, mostly with the artist's genre tags.

    Exactly ``n_users * tags_per_user`` distinct (user, artist, tag) triples when there are
    that many to draw from: repeats are dropped and replaced by new draws.
    """
    n = spec.n_users * spec.tags_per_user
    n_genres = min(spec.n_genres, spec.n_artists)
    tags_per_genre = max(1, spec.n_tags // n_genres)
    key = np.zeros(0, dtype=np.int64)
    for _ in range(10):
        short = n - key.size
        if short <= 0:
            break
        m = short + short // 4 + 16
        rows = rng.integers(0, user.size, size=m)
        tag_user, tag_artist = user[rows], artist[rows]
        del rows
        genre_tag = (tag_artist % n_genres) * tags_per_genre + np.minimum(
            rng.geometric(0.5, size=m) - 1, tags_per_genre - 1)
        tag = np.where(rng.random(m) < 0.8, genre_tag % spec.n_tags,
                       rng.integers(0, spec.n_tags, size=m))
        del genre_tag
        new = (tag_user * spec.n_artists + tag_artist) * spec.n_tags + tag
        key = _sorted_unique(np.r_[key, new])
    if key.size > n:  # drop a random surplus, keeping the order
        key = key[np.sort(rng.choice(key.size, size=n, replace=False))]
    pair, tag = np.divmod(key, spec.n_tags)
    return {"user": pair // spec.n_artists, "artist": pair % spec.n_artists, "tag": tag}
