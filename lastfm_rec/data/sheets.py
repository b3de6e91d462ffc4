"""Rec sheets (the spreadsheet of artists a user likes) and finding artists by the names users type.
"""

from __future__ import annotations

import difflib
import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from lastfm_rec.files import atomic_write

_log = logging.getLogger(__name__)

class RecSheetError(ValueError):
    """A rec sheet that cannot be read; the message is one line that says what to fix."""

def matching_artists(query: str, artists: pd.DataFrame) -> np.ndarray:
    """``a_id`` of every artist whose name contains ``query`` (case-insensitive, plain text).

    Exact (case-insensitive) matches come first, then the most listened (when ``artists``
    has ``listeners``), ties to the lower ``a_id``. Empty when nothing matches.
    """
    query = query.strip().casefold()
    if not query:
        raise KeyError("artist name is empty")
    folded = artists["name"].astype(str).str.casefold()
    partial = np.flatnonzero(folded.str.contains(query, regex=False).to_numpy())
    exact = folded.to_numpy()[partial] == query
    listeners = (artists["listeners"].to_numpy()[partial] if "listeners" in artists.columns
                 else np.zeros(partial.size))
    return partial[np.lexsort((partial, -listeners, ~exact))]

def close_names(name: str, artists: pd.DataFrame, n: int = 3) -> list[str]:
    """Up to ``n`` artist names spelt most like ``name``, ignoring case (``difflib``)."""
    names = artists["name"].astype(str)
    by_folded: dict[str, str] = {}
    for original in names:
        by_folded.setdefault(original.casefold(), original)
    close = difflib.get_close_matches(name.strip().casefold(), list(by_folded), n=n,
                                      cutoff=0.6)
    return [by_folded[c] for c in close]

def find_artist(name: str, artists: pd.DataFrame) -> tuple[int, list[str]]:
    """Find an artist by name: case-insensitive, plain text (no regular expressions).

    An exact (case-insensitive) match wins; otherwise the most listened artist whose name
    contains ``name`` (:func:`matching_artists`). No match raises ``KeyError`` that suggests
    close names.

    Returns
    -------
    tuple
        ``(a_id, other_candidates)`` where ``other_candidates`` are the other matching names,
        in :func:`matching_artists` order.
    """
    matches = _matches_or_error(name, artists)
    names = artists["name"].astype(str).to_numpy()
    return int(matches[0]), [str(n) for n in names[matches[1:]]]

def search_artists(query: str, artists: pd.DataFrame, k: int = 20) -> pd.DataFrame:
    """The exact names of up to ``k`` artists whose name contains ``query``.

    In :func:`matching_artists` order, with ``listeners`` and ``top3_tags`` when ``artists``
    has them; ``attrs["matches"]`` is the number of matching artists. No match raises
    ``KeyError`` that suggests close names.
    """
    matches = _matches_or_error(query, artists)
    columns = [c for c in ("name", "listeners", "top3_tags") if c in artists.columns]
    table = artists.iloc[matches[:k]][columns].reset_index(drop=True)
    table.attrs["matches"] = int(matches.size)
    return table

def _matches_or_error(name: str, artists: pd.DataFrame) -> np.ndarray:
    matches = matching_artists(name, artists)
    if matches.size == 0:
        close = close_names(name, artists)
        hint = f"; close names: {', '.join(close)}" if close else ""
        raise KeyError(f"no artist named {name!r} in the data{hint}")
    return matches

def write_rec_sheet(artists: pd.DataFrame, path: str | os.PathLike, n: int = 250,
                    likes: Sequence[str] = ()) -> Path:
    """Write a rec sheet: the ``n`` artists with most listeners, ``Like`` = 1 for ``likes``.

    Written atomically (:func:`lastfm_rec.files.atomic_write`): a failure leaves no
    half-written sheet.
    """
    top = artists.sort_values(["listeners", "name"], ascending=[False, True]).head(n)
    unknown = sorted(set(likes) - set(top["name"]))
    if unknown:
        raise ValueError(f"liked artists not among the top {n}: {', '.join(unknown)}")
    sheet = pd.DataFrame({"name": top["name"].to_numpy(),
                          "Like": np.where(top["name"].isin(likes), "1", "")})
    path = Path(path)
    _write_sheet(sheet, path)
    return path


def update_rec_sheet(path: str | os.PathLike, likes: Iterable[str]) -> Path:
    """Rewrite a rec sheet's ``Like`` column: 1 for the artists named in ``likes``, blank for
    every other row.

    Rows keep their order and any other columns; a liked name that has no row yet is appended
    as one. Names are compared after stripping surrounding spaces, as :func:`read_rec_sheet`
    reads them. Written to a temporary file and renamed, so a failure leaves the sheet as it
    was.

    Raises
    ------
    RecSheetError
        The sheet is missing or cannot be read (see :func:`read_rec_sheet`).
    """
    path = Path(path)
    sheet = _read_sheet(path)
    wanted = list(dict.fromkeys(name.strip() for name in likes))
    listed = set(sheet["name"].str.strip())
    added = pd.DataFrame({"name": [name for name in wanted if name not in listed]})
    sheet = pd.concat([sheet, added], ignore_index=True).fillna("")
    sheet["Like"] = np.where(sheet["name"].str.strip().isin(wanted), "1", "")
    _write_sheet(sheet, path)
    return path


def _write_sheet(sheet: pd.DataFrame, path: Path) -> None:
    """Write all at once (:func:`lastfm_rec.files.atomic_write`): never a half-written sheet."""
    with atomic_write(path, text=True) as stream:
        sheet.to_csv(stream, index=False, lineterminator="\n")


def read_sheet_likes(path: str | os.PathLike) -> list[str]:
    """The names marked ``Like`` = 1 in a rec sheet, as written there, in the sheet's order.

    For tools that edit the sheet: unlike :func:`read_rec_sheet`, liking nothing is no error
    and names are not checked against the data.

    Raises
    ------
    RecSheetError
        The sheet is missing, unreadable, lacks a column or has a ``Like`` value other than 1
        or blank.
    """
    return _liked_names(_read_sheet(Path(path))).tolist()


def read_rec_sheet(path: str | os.PathLike, artists: pd.DataFrame) -> np.ndarray:
    """The ``a_id`` of every artist marked ``Like`` = 1 in a rec sheet.

    A name matches exactly, or else ignoring case when exactly one artist matches that way
    (logged as a warning naming the artist used). Any artist of ``artists`` may be liked,
    also in rows added to the sheet.

    Parameters
    ----------
    path
        A CSV with columns ``name`` and ``Like`` (1 or blank).
    artists
        Artists in ``a_id`` order with ``name``.

    Raises
    ------
    RecSheetError
        The file is missing or unreadable, lacks a column, has a ``Like`` value other than
        1 or blank, likes nothing, or names an artist that is not in the data.
    """
    path = Path(path)
    liked = _liked_names(_read_sheet(path))
    if liked.empty:
        raise RecSheetError(f"rec sheet {path} likes no artist: put 1 in the Like column "
                            "next to the artists you enjoy")
    return _artist_ids_by_name(liked.tolist(), artists, path)

def _read_sheet(path: Path) -> pd.DataFrame:
    """Every cell of a rec sheet as text, with its columns and ``Like`` values checked."""
    if not path.is_file():
        raise RecSheetError(f"rec sheet {path} does not exist: copy "
                            "rec_sheets/your_artists.csv and put 1 in the Like column")
    try:
        sheet = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RecSheetError(f"rec sheet {path} is not a readable CSV: {reason}") from None
    missing = [c for c in ("name", "Like") if c not in sheet.columns]
    if missing:
        raise RecSheetError(f"rec sheet {path} lacks the column(s) {', '.join(missing)}: "
                            "it needs 'name' and 'Like'")
    like = sheet["Like"].str.strip()
    bad = ~like.isin(["", "1", "1.0"])
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise RecSheetError(f"rec sheet {path} line {row + 2}: Like must be 1 or blank, "
                            f"got {sheet['Like'].iloc[row]!r}")
    return sheet

def _liked_names(sheet: pd.DataFrame) -> pd.Series:
    return sheet.loc[sheet["Like"].str.strip() != "", "name"].str.strip()

def _artist_ids_by_name(names: list[str], artists: pd.DataFrame, path: Path) -> np.ndarray:
    """Exact names first; else the one artist equal ignoring case (logged); else an error."""
    all_names = artists["name"].astype(str).tolist()
    # Built from the end, so a repeated name keeps its first a_id.
    exact = dict(zip(reversed(all_names), range(len(all_names) - 1, -1, -1), strict=True))
    folded: dict[str, list[int]] | None = None  # built only when a name is not exact
    ids = []
    for name in names:
        if name in exact:
            ids.append(exact[name])
            continue
        if folded is None:
            folded = {}
            for a_id, artist in enumerate(all_names):
                folded.setdefault(artist.casefold(), []).append(a_id)
        same = folded.get(name.casefold(), [])
        if len(same) == 1:
            _log.warning("note: rec sheet %s: %r taken as %r (the only artist with that name "
                         "ignoring case)", path, name, all_names[same[0]])
            ids.append(same[0])
            continue
        if same:
            raise RecSheetError(f"rec sheet {path}: artist {name!r} matches {len(same)} "
                                f"artists ignoring case ({', '.join(all_names[i] for i in same)})"
                                ": write one of them exactly")
        close = close_names(name, artists)
        hint = f" (close matches: {', '.join(close)})" if close else ""
        raise RecSheetError(f"rec sheet {path}: artist {name!r} is not in the data{hint}; "
                            "find exact names with `lastfm-rec artists QUERY`")
    return np.unique(np.asarray(ids, dtype=np.int64))
