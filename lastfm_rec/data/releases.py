"""The bigger Last.fm releases, Last.fm-360K and LFM-1b, read into memory.

Owns the rules of the two formats (what a valid line is, which artist a line names, which
name an artist shows; the Spark reader, :mod:`lastfm_rec.spark.io`, applies the same ones and
words its errors here) and reads either release a block of lines at a time into the
package's in-memory form (:class:`ReleaseData`: a users x artists CSR play matrix with its id
maps and the artist names), without holding every line as Python objects. Which format a path
holds is :mod:`lastfm_rec.data.formats`' question.

* **Last.fm-360K** (``usersha1-artmbid-artname-plays.tsv``): tab-separated, no header, one
  line per user and artist: user SHA-1, MusicBrainz artist id (may be empty), artist name,
  play count. An artist is its MusicBrainz id where the line has one, else its name (exactly
  as written): the same name under two ids stays two artists, and a name without an id is
  an artist of its own even where other lines give that name an id. An artist shows the name
  most of its lines give (ties: the first in code-point order; empty names last; none at all:
  its id). Lines of the same user and artist are summed.
* **LFM-1b** (a folder with ``LFM-1b_LEs.txt`` and ``LFM-1b_artists.txt``, or the events file
  with the artists file beside it): one listening event per line (user id, artist id, album
  id, track id, timestamp; only the first two are read), counted per user and artist; the
  artists file gives each artist id its name (id, name; no header).

A malformed line (a wrong number of fields, an id or a play count that is not valid, a
repeated artist id) raises a one-line :class:`ReleaseError` naming the file and line. Lines
end at ``\\n`` (a ``\\r`` before it is dropped); bytes that are not UTF-8 become U+FFFD, as
Spark reads them. Users and artists get dense indices in ascending id order, as
:class:`~lastfm_rec.data.preprocessing.IdMap`.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from lastfm_rec.data.formats import (
    FIELDS_360K,
    LASTFM_360K,
    LFM_1B,
    LFM_1B_ARTISTS,
    LFM_1B_EVENTS,
    detect_format,
    is_remote,
    local_path,
)
from lastfm_rec.data.hetrec import DataError
from lastfm_rec.data.matrices import play_matrix
from lastfm_rec.data.preprocessing import IdMap

FIELDS_EVENTS = ("user", "artist", "album", "track", "timestamp")
FIELDS_ARTISTS = ("artist", "name")

#: Regular expressions a field must match in full (the same in Python and Java).
USER_SHA1 = "[0-9a-f]{40}"
MBID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
WHOLE = "[0-9]{1,19}"
#: The largest whole number (int64); a 19-digit field above it is out of range.
WHOLE_MAX = str(np.iinfo(np.int64).max)
BLOCK_BYTES = 1 << 26  # lines read per block: 64 MiB


class ReleaseError(DataError, ValueError):
    """A malformed file of a Last.fm release, described in one line (file, line, the fix)."""


@dataclass(frozen=True, eq=False)
class ReleaseData:
    """A release in memory, in the package's form.

    Attributes
    ----------
    plays
        Users x artists play counts (float64 CSR, duplicates summed), what
        ``lastfm_rec.models.create(name).fit`` takes.
    users, artists
        Dense index maps: user SHA-1s or LFM-1b user ids; MusicBrainz ids or names
        (Last.fm-360K), LFM-1b artist ids.
    artist_names
        The name each column's artist shows (object array, column order).
    """

    plays: sp.csr_matrix
    users: IdMap
    artists: IdMap
    artist_names: np.ndarray


# --------------------------------------------------------------------------- the rules


def is_whole(text: str) -> bool:
    """Whether ``text`` is a whole number 0..2**63-1 in ASCII digits (the rule for counts
    and numeric ids)."""
    return bool(re.fullmatch(WHOLE, text)) and (len(text) < len(WHOLE_MAX) or text <= WHOLE_MAX)


def _shown(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:57] + "...")


def _whole_problem(what: str, text: str) -> str | None:
    if is_whole(text):
        return None
    if re.fullmatch("-[0-9]+", text):
        return f"{what} {text} is negative"
    return f"{what} {_shown(text)} is not a whole number from 0 to {WHOLE_MAX}"


def _count_problem(expected: tuple[str, ...], fields: list[str]) -> str | None:
    if len(fields) == len(expected):
        return None
    what = "is blank" if fields == [""] else f"has {len(fields)} tab-separated fields"
    return f"{what}, expected {len(expected)} ({', '.join(expected)})"


def problem_360k(fields: list[str]) -> str | None:
    """What is wrong with a Last.fm-360K line split at tabs, or None when it is valid."""
    if problem := _count_problem(FIELDS_360K, fields):
        return problem
    user, mbid, name, plays = fields
    if not re.fullmatch(USER_SHA1, user):
        return f"user {_shown(user)} is not a SHA-1 (40 lower-case hexadecimal digits)"
    if mbid and not re.fullmatch(MBID, mbid):
        return f"artist id {_shown(mbid)} is neither empty nor a MusicBrainz id (a UUID)"
    if not mbid and not name:
        return "the artist has neither a MusicBrainz id nor a name"
    return _whole_problem("play count", plays)


def problem_event(fields: list[str]) -> str | None:
    """What is wrong with an ``LFM-1b_LEs.txt`` line split at tabs, or None."""
    return (_count_problem(FIELDS_EVENTS, fields) or _whole_problem("user id", fields[0])
            or _whole_problem("artist id", fields[1]))


def problem_artist(fields: list[str]) -> str | None:
    """What is wrong with an ``LFM-1b_artists.txt`` line split at tabs, or None."""
    return _count_problem(FIELDS_ARTISTS, fields) or _whole_problem("artist id", fields[0])


def line_error(path: str | os.PathLike, line: int, problem: str) -> ReleaseError:
    """The one-line error for a malformed ``line`` of ``path``."""
    return ReleaseError(f"{path} line {line}: {problem}; fix or delete the line")


def repeat_error(path: str | os.PathLike, line: int, first: int,
                 artist: int) -> ReleaseError:
    """The one-line error for an artists file that names ``artist`` twice."""
    return ReleaseError(f"{path} line {line} repeats line {first} (artist id {artist}); "
                        "delete one of them")


# --------------------------------------------------------------------------- paths


def lfm_1b_files(source: str | os.PathLike) -> tuple[str, str]:
    """The events and artists files of an LFM-1b input: a folder holding
    ``LFM-1b_LEs.txt`` and ``LFM-1b_artists.txt``, or the events file (named so, or any
    local file) with ``LFM-1b_artists.txt`` beside it.

    Raises
    ------
    ReleaseError
        A local input that lacks either file (a cluster path is checked by Spark).
    """
    text = str(source).rstrip("/")
    name = text.rsplit("/", 1)[-1]
    if name == LFM_1B_EVENTS or (not is_remote(text) and local_path(text).is_file()):
        events, folder = text, text[:len(text) - len(name)]  # "" or ending in "/"
    else:
        events, folder = f"{text}/{LFM_1B_EVENTS}", f"{text}/"
    artists = f"{folder}{LFM_1B_ARTISTS}"
    if not is_remote(text):
        missing = [path for path in (events, artists) if not local_path(path).is_file()]
        if missing:
            raise ReleaseError(f"{' and '.join(missing)} not found: LFM-1b is read from a folder "
                               f"with {LFM_1B_EVENTS} and {LFM_1B_ARTISTS} (or the events file "
                               "with the artists file beside it)")
    return events, artists


# --------------------------------------------------------------------------- reading


def _line_blocks(path: Path, block_bytes: int) -> Iterator[tuple[int, bytes]]:
    """Whole lines of ``path``, about ``block_bytes`` at a time, each block ending in
    ``\\n`` and with ``\\r\\n`` turned into ``\\n``: ``(number of its first line, bytes)``."""
    if not path.is_file():
        raise ReleaseError(f"{path} not found: check the path")
    line, rest = 1, b""
    with path.open("rb") as handle:
        while block := handle.read(block_bytes):
            data = rest + block
            cut = data.rfind(b"\n") + 1
            rest = data[cut:]
            if cut:
                yield line, data[:cut].replace(b"\r\n", b"\n")
                line += data.count(b"\n", 0, cut)
    if rest:
        yield line, (rest + b"\n").replace(b"\r\n", b"\n")


def _lines_of(path: Path, first: int, block: bytes, fields: tuple[str, ...],
              problem: Callable[[list[str]], str | None],
              usecols: tuple[int, ...]) -> pd.DataFrame:
    """The block's lines as string columns ``usecols`` (named from ``fields``), after checking
    that every line has ``len(fields)`` fields (counted with numpy over the bytes)."""
    buf = np.frombuffer(block, dtype=np.uint8)
    ends = np.flatnonzero(buf == 10)
    starts = np.r_[0, ends[:-1] + 1]
    tabs = np.flatnonzero(buf == 9)
    counts = np.searchsorted(tabs, ends) - np.searchsorted(tabs, starts) + 1
    wrong = np.flatnonzero(counts != len(fields))
    if wrong.size:
        index = int(wrong[0])
        text = block[starts[index]:ends[index]].decode("utf-8", errors="replace")
        raise line_error(path, first + index, problem(text.split("\t")) or "is malformed")
    return pd.read_csv(io.BytesIO(block), sep="\t", header=None, names=list(fields),
                       usecols=[fields[i] for i in usecols], dtype=object,
                       quoting=csv.QUOTE_NONE, na_filter=False, keep_default_na=False,
                       lineterminator="\n", skip_blank_lines=False, encoding="utf-8",
                       encoding_errors="replace", engine="c")


def _full_matches(values: np.ndarray, pattern: str) -> np.ndarray:
    return pd.Series(values, dtype=object).str.fullmatch(pattern).to_numpy(bool)


def _whole_values(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(ok, int64 values with 0 where not ok)`` of strings by :func:`is_whole`."""
    lengths = pd.Series(values, dtype=object).str.len().to_numpy()
    ok = _full_matches(values, WHOLE) & (  # 19 digits, as long as WHOLE_MAX: compare as text
        (lengths < len(WHOLE_MAX)) | (values <= WHOLE_MAX))
    numbers = np.zeros(values.size, dtype=np.int64)
    numbers[ok] = values[ok].astype(np.int64)
    return ok, numbers


def _raise_first(path: Path, first: int, block: bytes, bad: np.ndarray,
                 problem: Callable[[list[str]], str | None]) -> None:
    """Raise for the first ``bad`` row of a block (rows are lines: counts were checked)."""
    index = int(np.flatnonzero(bad)[0])
    line = block.split(b"\n", index + 1)[index].decode("utf-8", errors="replace")
    raise line_error(path, first + index, problem(line.split("\t")) or "is malformed")


class _Vocabulary:
    """Provisional codes for ids in the order first met; dense ones once all are known."""

    def __init__(self) -> None:
        self.codes: dict[object, int] = {}

    def encode(self, uniques: np.ndarray, inverse: np.ndarray) -> np.ndarray:
        """Codes of a block's values given as ``uniques[inverse]`` (``pandas.factorize``)."""
        codes = self.codes
        known = np.fromiter((codes.setdefault(value, len(codes)) for value in uniques.tolist()),
                            dtype=np.int64, count=uniques.size)
        return known[inverse]

    def ids(self, dtype: type) -> np.ndarray:
        """Every id, in the order of their provisional codes."""
        return np.array(list(self.codes), dtype=dtype)


class _PairSums:
    """Running sums per (user code, artist code), re-added as they grow."""

    def __init__(self) -> None:
        self.keys: list[np.ndarray] = []
        self.values: list[np.ndarray] = []
        self.rows = self.added = 0

    def add(self, users: np.ndarray, artists: np.ndarray, values: np.ndarray) -> None:
        keys, sums = _sum_by((users << 32) | artists, values)
        self.keys.append(keys)
        self.values.append(sums)
        self.rows += keys.size
        if self.rows > 2 * self.added + (1 << 22):
            self._add_up()

    def _add_up(self) -> None:
        keys, sums = _sum_by(np.concatenate(self.keys), np.concatenate(self.values))
        self.keys, self.values = [keys], [sums]
        self.rows = self.added = keys.size

    def result(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(user codes, artist codes, sums)`` with one entry per pair."""
        if not self.keys:
            empty = np.empty(0, dtype=np.int64)
            return empty, empty, empty
        self._add_up()
        keys = self.keys[0]
        return keys >> 32, keys & 0xFFFFFFFF, self.values[0]


def _sum_by(keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    summed = pd.Series(values).groupby(keys, sort=False).sum()
    return summed.index.to_numpy(np.int64), summed.to_numpy(np.int64)


def _assemble(path: Path, pairs: _PairSums, users: _Vocabulary, user_dtype: type,
              artists: _Vocabulary, artist_dtype: type,
              names: Callable[[np.ndarray], np.ndarray]) -> ReleaseData:
    """Dense indices in id order, the play matrix and the names (``names(artist ids)``)."""
    user_codes, artist_codes, sums = pairs.result()
    if not sums.size:
        raise ReleaseError(f"{path} has no listening lines: check the path")
    user_ids, artist_ids = users.ids(user_dtype), artists.ids(artist_dtype)
    user_map, artist_map = IdMap.from_values(user_ids), IdMap.from_values(artist_ids)
    rows = pd.DataFrame({"u_id": user_map.to_index(user_ids)[user_codes],
                         "a_id": artist_map.to_index(artist_ids)[artist_codes],
                         "weight": sums})
    return ReleaseData(plays=play_matrix(rows, user_map, artist_map), users=user_map,
                       artists=artist_map, artist_names=names(artist_map.ids))


def load_lastfm_360k(path: str | os.PathLike,
                     block_bytes: int = BLOCK_BYTES) -> ReleaseData:
    """Read Last.fm-360K's ``usersha1-artmbid-artname-plays.tsv`` (the module's rules).

    Parameters
    ----------
    path
        The plays file.
    block_bytes
        How much of the file is parsed at a time (whole lines).

    Returns
    -------
    ReleaseData
        Users are SHA-1s; artists MusicBrainz ids, or names where a line has no id.

    Raises
    ------
    ReleaseError
        The file is missing, empty or has a malformed line.
    """
    path = Path(path)
    users, artists, pairs = _Vocabulary(), _Vocabulary(), _PairSums()
    name_counts: list[pd.Series] = []
    for first, block in _line_blocks(path, block_bytes):
        frame = _lines_of(path, first, block, FIELDS_360K, problem_360k, (0, 1, 2, 3))
        user, mbid, name, plays = (frame[field].to_numpy(object) for field in FIELDS_360K)
        user_inverse, user_uniques = pd.factorize(user)
        mbid_inverse, mbid_uniques = pd.factorize(mbid)
        plays_inverse, plays_uniques = pd.factorize(plays)
        plays_ok, plays_values = _whole_values(plays_uniques)
        has_mbid = mbid != ""
        bad = (~_full_matches(user_uniques, USER_SHA1)[user_inverse]
               | ~(_full_matches(mbid_uniques, MBID) | (mbid_uniques == ""))[mbid_inverse]
               | (~has_mbid & (name == "")) | ~plays_ok[plays_inverse])
        if bad.any():
            _raise_first(path, first, block, bad, problem_360k)
        artist_inverse, artist_uniques = pd.factorize(np.where(has_mbid, mbid, name))
        artist_codes = artists.encode(artist_uniques, artist_inverse)
        pairs.add(users.encode(user_uniques, user_inverse), artist_codes,
                  plays_values[plays_inverse])
        name_counts.append(pd.DataFrame({"artist": artist_codes, "name": name}).value_counts())

    def names(artist_ids: np.ndarray) -> np.ndarray:
        return _shown_names(artist_ids, name_counts, artists)

    return _assemble(path, pairs, users, object, artists, object, names)


def _shown_names(artist_ids: np.ndarray, name_counts: list[pd.Series],
                 artists: _Vocabulary) -> np.ndarray:
    """Each artist's name: the one most of its lines give (ties: the first in code-point
    order; empty names last; none: the artist's id)."""
    shown = artist_ids.copy()
    counts = pd.concat(name_counts).groupby(level=["artist", "name"]).sum().reset_index(
        name="lines")
    counts["empty"] = counts["name"] == ""
    best = counts.sort_values(["artist", "empty", "lines", "name"],
                              ascending=[True, True, False, True]).drop_duplicates("artist")
    best = best.loc[~best["empty"]]
    ids = artists.ids(object)[best["artist"].to_numpy()]
    shown[np.searchsorted(artist_ids, ids)] = best["name"].to_numpy(object)
    return shown


def load_lfm_1b(source: str | os.PathLike, block_bytes: int = BLOCK_BYTES) -> ReleaseData:
    """Read LFM-1b: listening events counted per user and artist, names from the artists file.

    Parameters
    ----------
    source
        A folder with ``LFM-1b_LEs.txt`` and ``LFM-1b_artists.txt``, or the events file with
        the artists file beside it (:func:`lfm_1b_files`).
    block_bytes
        How much of a file is parsed at a time (whole lines).

    Returns
    -------
    ReleaseData
        Users and artists are LFM-1b's integer ids; plays count listening events.

    Raises
    ------
    ReleaseError
        A file is missing or empty, a line is malformed, the artists file repeats an id or
        lacks a listened artist.
    """
    events_file, artists_file = (Path(path) for path in lfm_1b_files(source))
    users, artists, pairs = _Vocabulary(), _Vocabulary(), _PairSums()
    for first, block in _line_blocks(events_file, block_bytes):
        frame = _lines_of(events_file, first, block, FIELDS_EVENTS, problem_event, (0, 1))
        user_inverse, user_uniques = pd.factorize(frame["user"].to_numpy(object))
        artist_inverse, artist_uniques = pd.factorize(frame["artist"].to_numpy(object))
        user_ok, user_values = _whole_values(user_uniques)
        artist_ok, artist_values = _whole_values(artist_uniques)
        bad = ~user_ok[user_inverse] | ~artist_ok[artist_inverse]
        if bad.any():
            _raise_first(events_file, first, block, bad, problem_event)
        pairs.add(users.encode(user_values, user_inverse),
                  artists.encode(artist_values, artist_inverse),
                  np.ones(user_inverse.size, dtype=np.int64))
    names = _artist_names(artists_file, block_bytes)

    def listened_names(artist_ids: np.ndarray) -> np.ndarray:
        known = np.isin(artist_ids, names.index.to_numpy())
        if not known.all():
            raise ReleaseError(f"{int((~known).sum())} artists of {events_file} have no line in "
                               f"{artists_file} (first artist id {artist_ids[~known][0]}): "
                               "check that the files belong together")
        return names.loc[artist_ids].to_numpy(object)

    return _assemble(events_file, pairs, users, np.int64, artists, np.int64, listened_names)


def _artist_names(path: Path, block_bytes: int) -> pd.Series:
    """``LFM-1b_artists.txt`` as names indexed by artist id (each id once)."""
    ids, names = [], []
    for first, block in _line_blocks(path, block_bytes):
        frame = _lines_of(path, first, block, FIELDS_ARTISTS, problem_artist, (0, 1))
        inverse, uniques = pd.factorize(frame["artist"].to_numpy(object))
        ok, values = _whole_values(uniques)
        if not ok.all():
            _raise_first(path, first, block, ~ok[inverse], problem_artist)
        ids.append(values[inverse])
        names.append(frame["name"].to_numpy(object))
    every = np.concatenate(ids) if ids else np.empty(0, dtype=np.int64)
    repeated = np.flatnonzero(pd.Series(every).duplicated().to_numpy())
    if repeated.size:
        line = int(repeated[0])
        first_line = int(np.flatnonzero(every == every[line])[0])
        raise repeat_error(path, line + 1, first_line + 1, int(every[line]))
    return pd.Series(np.concatenate(names) if names else np.empty(0, dtype=object), index=every)


def load_release(source: str | os.PathLike, source_format: str | None = None,
                 block_bytes: int = BLOCK_BYTES) -> ReleaseData:
    """Read Last.fm-360K (:func:`load_lastfm_360k`) or LFM-1b (:func:`load_lfm_1b`).

    Parameters
    ----------
    source
        The plays file, or the LFM-1b folder (or events file).
    source_format
        ``"lastfm-360k"`` or ``"lfm-1b"``; None decides with :func:`detect_format`.
    block_bytes
        How much of a file is parsed at a time.

    Returns
    -------
    ReleaseData
        The play matrix, id maps and artist names.
    """
    kind = source_format or detect_format(source)
    if kind == LASTFM_360K:
        return load_lastfm_360k(source, block_bytes)
    if kind == LFM_1B:
        return load_lfm_1b(source, block_bytes)
    raise ValueError(f"{source} is {kind} data, not a Last.fm release ({LASTFM_360K}, {LFM_1B}): "
                     "read HetRec with lastfm_rec.data.matrices.load_study")
