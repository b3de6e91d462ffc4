"""Using trained embeddings: scores, personal recommendations, artist neighbours, rec sheets.

Owns the original notebook's section 3 as functions with explicit inputs:
:func:`compute_scores`, :func:`user_recommendations`, :func:`artist_neighbors`, finding
artists by name (:func:`find_artist`, :func:`search_artists`), reading a spreadsheet of liked
artists (:func:`read_rec_sheet`), two ways to place a new user in the
embedding space (:func:`similar_users_embedding`, the original's heuristic, and
:func:`fold_in`, a least-squares solve against the fixed artist embeddings; both defined in
:mod:`lastfm_rec.foldin`, below the models, and re-exported here), the popularity-bias check
(:func:`popularity_correlation`) and the share of a list in a genre (:func:`tag_share`).
"""

from __future__ import annotations

import difflib
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd

from lastfm_rec.foldin import fold_in
from lastfm_rec.foldin import like_vector as like_vector  # re-exported
from lastfm_rec.foldin import similar_users_embedding as similar_users_embedding  # re-exported
from lastfm_rec.ops import normalize_rows, top_n

Measure = Literal["dot", "cosine"]
MEASURES: tuple[str, ...] = ("dot", "cosine")
_log = logging.getLogger(__name__)
RESULT_COLUMNS = ["a_id", "artistID", "name", "score", "top3_tags", "popularity_score",
                  "listeners"]


class HasEmbeddings(Protocol):
    """Anything with ``embeddings = {"u_id": (N, k) array, "a_id": (M, k) array}``."""

    embeddings: dict[str, np.ndarray]


class RecSheetError(ValueError):
    """A rec sheet that cannot be read; the message is one line that says what to fix."""


def compute_scores(query_embedding: np.ndarray, item_embeddings: np.ndarray,
                   measure: Measure = "dot") -> np.ndarray:
    """Score every item against a query embedding.

    Parameters
    ----------
    query_embedding
        Vector of shape ``(k,)``.
    item_embeddings
        Matrix of shape ``(M, k)``, one row per item.
    measure
        ``"dot"`` (inner product) or ``"cosine"`` (inner product of unit vectors; a zero
        vector scores 0 against everything instead of NaN).

    Returns
    -------
    numpy.ndarray
        Shape ``(M,)``.
    """
    if measure not in MEASURES:
        raise ValueError(f"measure must be one of {MEASURES}, got {measure!r}")
    query = np.asarray(query_embedding, dtype=np.float64)
    items = np.asarray(item_embeddings, dtype=np.float64)
    if measure == "cosine":
        query = normalize_rows(query[None, :])[0]
        items = normalize_rows(items)
    return items @ query


def _ranked_table(scores: np.ndarray, artists: pd.DataFrame, k: int,
                  exclude: Sequence[int] | np.ndarray | None = None) -> pd.DataFrame:
    """The ``k`` best-scored artists with their descriptive columns, best first."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if len(scores) != len(artists):
        raise ValueError(f"{len(scores)} scores for {len(artists)} artists: "
                         "the artists table must be in a_id order (see preprocessing.reindex)")
    ranked = np.array(scores, dtype=np.float64)
    if exclude is not None:
        ranked[np.asarray(exclude, dtype=np.int64)] = -np.inf
    ids, _ = top_n(ranked[None, :], k)
    order = ids[0][ids[0] >= 0].astype(np.int64)
    if order.size == 0:
        raise ValueError("nothing left to recommend: every artist is excluded")
    table = artists.iloc[order].copy()
    table["score"] = scores[order]
    table["a_id"] = order
    return table[[c for c in RESULT_COLUMNS if c in table.columns]].reset_index(drop=True)


def user_recommendations(model: HasEmbeddings, user_embedding: np.ndarray,
                         artists: pd.DataFrame, measure: Measure = "dot",
                         exclude: Sequence[int] | np.ndarray | None = None,
                         k: int = 6) -> pd.DataFrame:
    """The ``k`` artists that score highest for a user embedding.

    Parameters
    ----------
    model
        A trained model with ``embeddings["a_id"]``.
    user_embedding
        The user's embedding, shape ``(k,)``.
    artists
        Artists in ``a_id`` order with ``name``, ``top3_tags``, ``popularity_score`` and
        ``listeners`` (see :func:`lastfm_rec.preprocessing.prepare`).
    measure
        ``"dot"`` or ``"cosine"``.
    exclude
        ``a_id`` values never to recommend (e.g. the artists the user already likes).
    k
        How many artists to return.

    Returns
    -------
    pandas.DataFrame
        Columns ``a_id, artistID, name, score, top3_tags, popularity_score, listeners``,
        best first; ``attrs["measure"]`` names the measure.
    """
    scores = compute_scores(user_embedding, model.embeddings["a_id"], measure)
    table = _ranked_table(scores, artists, k, exclude)
    table.attrs["measure"] = measure
    return table


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


def artist_neighbors(model: HasEmbeddings, name: str, artists: pd.DataFrame,
                     measure: Measure = "dot", k: int = 5) -> pd.DataFrame:
    """The ``k`` artists nearest to a named artist in the embedding space.

    The artist itself is included (under ``cosine`` it comes first with score 1).
    ``attrs`` holds ``query`` (the matched name) and ``other_candidates`` (other names that
    matched the search).
    """
    a_id, others = find_artist(name, artists)
    item_embeddings = model.embeddings["a_id"]
    scores = compute_scores(item_embeddings[a_id], item_embeddings, measure)
    table = _ranked_table(scores, artists, k)
    table.attrs.update(measure=measure, query=str(artists["name"].iloc[a_id]),
                       other_candidates=others)
    return table


def write_rec_sheet(artists: pd.DataFrame, path: str | os.PathLike, n: int = 250,
                    likes: Sequence[str] = ()) -> Path:
    """Write a rec sheet: the ``n`` artists with most listeners, ``Like`` = 1 for ``likes``.

    Written to a temporary file and renamed, so a failure leaves no half-written sheet.
    """
    top = artists.sort_values(["listeners", "name"], ascending=[False, True]).head(n)
    unknown = sorted(set(likes) - set(top["name"]))
    if unknown:
        raise ValueError(f"liked artists not among the top {n}: {', '.join(unknown)}")
    sheet = pd.DataFrame({"name": top["name"].to_numpy(),
                          "Like": np.where(top["name"].isin(likes), "1", "")})
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    sheet.to_csv(tmp, index=False, lineterminator="\n")
    os.replace(tmp, path)
    return path


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
    liked = sheet.loc[like != "", "name"].str.strip()
    if liked.empty:
        raise RecSheetError(f"rec sheet {path} likes no artist: put 1 in the Like column "
                            "next to the artists you enjoy")
    return _artist_ids_by_name(liked.tolist(), artists, path)


def _artist_ids_by_name(names: list[str], artists: pd.DataFrame, path: Path) -> np.ndarray:
    """Exact names first; else the one artist equal ignoring case (logged); else an error."""
    all_names = artists["name"].astype(str).tolist()
    exact: dict[str, int] = {}
    folded: dict[str, list[int]] = {}
    for a_id, artist in enumerate(all_names):
        exact.setdefault(artist, a_id)
        folded.setdefault(artist.casefold(), []).append(a_id)
    ids = []
    for name in names:
        if name in exact:
            ids.append(exact[name])
            continue
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


def fold_in_model(model: Any, liked: Sequence[int] | np.ndarray) -> np.ndarray:
    """:func:`fold_in` with the weights of a trained ``CFModel``'s own objective.

    Multiplying the model's objective by the number of training entries ``|Ω|`` makes a
    new user's squared errors count 1 each, its L2 term ``λ_r |Ω| / N`` and its gravity term
    ``λ_g |Ω| / N`` (N users): the same trade-off the trained users were fitted with.
    """
    if model.train_ratings is None:
        raise ValueError("fold_in_model needs a model built by build_model (its training rows)")
    hp = model.hyperparameters
    scale = len(model.train_ratings) / hp["n_users"]
    return fold_in(liked, model.embeddings["a_id"], hp["regularization_coeff"] * scale,
                   hp["gravity_coeff"] * scale)


def popularity_correlation(scores: np.ndarray, artists: pd.DataFrame) -> dict[str, Any]:
    """Spearman rank correlation of scores with ``popularity_score`` and ``listeners``.

    Close to 0 means the scores ignore popularity; close to 1 means they mostly follow it.
    """
    ranks = pd.Series(np.asarray(scores, dtype=np.float64))
    return {
        "popularity_score": float(ranks.corr(
            artists["popularity_score"].reset_index(drop=True), method="spearman")),
        "listeners": float(ranks.corr(
            artists["listeners"].reset_index(drop=True).astype(float), method="spearman")),
    }


def tag_share(top3_tags: Sequence[str] | pd.Series, keywords: Sequence[str]) -> float:
    """Share of artists with a top tag that contains one of ``keywords`` (e.g. ``["metal"]``
    also counts "black metal"); ``top3_tags`` entries look like ``"pop / rnb / dance"``."""
    tags = [str(entry).split(" / ") for entry in top3_tags]
    if not tags:
        raise ValueError("tag_share needs at least one artist")
    return sum(any(k in tag for tag in entry for k in keywords) for entry in tags) / len(tags)
