"""Preprocessing: the original notebook's section 1.3 as functions with explicit inputs.

Owns trimming and scaling play counts (:func:`transform_weights`, :class:`WeightScaler`),
joining tag names and picking each artist's top tags (:func:`label_tags`,
:func:`add_top_tags`), popularity columns (:func:`add_popularity_score`), dense re-indexing of
users and artists (:class:`IdMap`, :func:`reindex`), the random train/test split
(:func:`split_dataframe`) and the whole pipeline in one call (:func:`prepare`).
"""

from __future__ import annotations

import itertools
import operator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from lastfm_rec.data.hetrec import Dataset

NO_TAGS = "none"


@dataclass(frozen=True)
class WeightScaler:
    """Min-max scaling of play counts to ``w_mm`` in [0, 1], with the fitted bounds kept.

    Fit it on training rows only (:meth:`fit`) and apply the same bounds to any other rows;
    weights outside the fitted range map outside [0, 1] rather than being clipped.
    """

    minimum: float
    maximum: float

    @classmethod
    def fit(cls, weights: pd.Series | np.ndarray) -> WeightScaler:
        """Learn the minimum and maximum of ``weights``."""
        values = np.asarray(weights, dtype=np.float64)
        if values.size == 0:
            raise ValueError("cannot fit a WeightScaler on no weights")
        return cls(float(values.min()), float(values.max()))

    def transform(self, weights: pd.Series | np.ndarray) -> np.ndarray:
        """Scale ``weights`` with the fitted bounds (all zeros if the bounds are equal)."""
        values = np.asarray(weights, dtype=np.float64)
        span = self.maximum - self.minimum
        if span == 0:
            return np.zeros_like(values)
        return (values - self.minimum) / span


def outlier_threshold(weights: pd.Series | np.ndarray, quantile: float = 0.99) -> float:
    """The play count above which a row counts as an outlier (linear-interpolated quantile)."""
    if not 0 < quantile <= 1:
        raise ValueError(f"quantile must be in (0, 1], got {quantile}")
    return float(np.quantile(np.asarray(weights, dtype=np.float64), quantile))


def transform_weights(user_artists: pd.DataFrame, remove_outliers: bool = True,
                      quantile: float = 0.99, scaler: WeightScaler | None = None) -> pd.DataFrame:
    """Drop outlier play counts and add the min-max scaled weight ``w_mm``.

    Parameters
    ----------
    user_artists
        Rows of ``userID``, ``artistID``, ``weight``.
    remove_outliers
        Drop rows whose weight is above the ``quantile`` of all weights.
    quantile
        The trimming quantile (the analysis uses the 99th percentile).
    scaler
        Bounds to scale with; ``None`` fits them on the rows that remain. Pass a scaler fitted
        on training rows to scale held-out rows the same way.

    Returns
    -------
    pandas.DataFrame
        A copy with ``w_mm`` added. ``attrs`` records ``weight_scaler`` (the bounds used),
        ``outlier_threshold`` (or ``None``) and ``rows_removed``.
    """
    result = user_artists.copy()
    threshold = None
    if remove_outliers:
        threshold = outlier_threshold(result["weight"], quantile)
        result = result.loc[result["weight"] <= threshold]
    scaler = scaler or WeightScaler.fit(result["weight"])
    result["w_mm"] = scaler.transform(result["weight"])
    result.attrs = {
        "weight_scaler": scaler,
        "outlier_threshold": threshold,
        "rows_removed": len(user_artists) - len(result),
    }
    return result


def label_tags(user_tagged: pd.DataFrame, tags: pd.DataFrame,
               artists: pd.DataFrame) -> pd.DataFrame:
    """Tag assignments with their tag name (``tag``) and artist name (``artist_name``).

    Joined by key, so the result does not depend on row order. Assignments that point to an
    artist missing from ``artists`` (or a tag missing from ``tags``) are dropped.
    """
    # Inner merges reorder rows; restore the file's order so the table reads like the input.
    return _joined_names(user_tagged, tags, artists).sort_values(
        ["userID", "artistID", "tagID"], kind="stable").reset_index(drop=True)


def _joined_names(user_tagged: pd.DataFrame, tags: pd.DataFrame,
                  artists: pd.DataFrame) -> pd.DataFrame:
    """:func:`label_tags` in the merges' row order (for counting, which ignores it)."""
    tag_names = tags.rename(columns={"tagValue": "tag"})[["tagID", "tag"]]
    artist_names = artists.rename(columns={"name": "artist_name"})[["artistID", "artist_name"]]
    labelled = user_tagged.merge(tag_names, on="tagID", how="inner", validate="many_to_one")
    return labelled.merge(artist_names, on="artistID", how="inner", validate="many_to_one")


def add_top_tags(artists: pd.DataFrame, user_tagged: pd.DataFrame,
                 tags: pd.DataFrame) -> pd.DataFrame:
    """Add ``top3_tags`` ("a / b / c") and ``top1_tags``: each artist's most used tags.

    Tags are ranked by how many assignments name them for the artist; ties break
    alphabetically. Artists nobody tagged get ``"none"``.
    """
    labelled = _joined_names(user_tagged, tags, artists)
    counts = labelled.groupby(["artistID", "tag"], sort=False).size().rename("tag_count")
    ranked = counts.reset_index().sort_values(
        ["artistID", "tag_count", "tag"], ascending=[True, False, True], kind="stable")
    top3 = ranked.groupby("artistID", sort=False).head(3)
    # Each artist's rows are adjacent (sorted above): joined in one pass, 20 times faster
    # than a per-group aggregation (the command line describes the artists on every call).
    pairs = zip(top3["artistID"].tolist(), top3["tag"].tolist(), strict=True)
    tags_of = {artist: [tag for _, tag in rows]
               for artist, rows in itertools.groupby(pairs, key=operator.itemgetter(0))}
    summary = pd.DataFrame({"top3_tags": [" / ".join(tags) for tags in tags_of.values()],
                            "top1_tags": [tags[0] for tags in tags_of.values()]},
                           index=pd.Index(list(tags_of), dtype=np.int64, name="artistID"),
                           dtype=str)
    result = artists.drop(columns=["top3_tags", "top1_tags"], errors="ignore")
    result = result.merge(summary, left_on="artistID", right_index=True, how="left")
    result[["top3_tags", "top1_tags"]] = result[["top3_tags", "top1_tags"]].fillna(NO_TAGS)
    return result


def add_popularity_score(artists: pd.DataFrame, user_artists: pd.DataFrame,
                         n_users: int | None = None) -> pd.DataFrame:
    """Add ``popularity_score`` (sum of play counts / number of users) and ``listeners``.

    Parameters
    ----------
    artists
        Table with ``artistID``.
    user_artists
        Listening rows (``userID``, ``artistID``, ``weight``) the scores are computed on.
    n_users
        The divisor; defaults to the number of distinct users in ``user_artists``.

    Returns
    -------
    pandas.DataFrame
        A copy of ``artists`` with both columns; artists nobody listened to get 0.
    """
    n_users = n_users or user_artists["userID"].nunique()
    grouped = user_artists.groupby("artistID")["weight"]
    stats = pd.DataFrame({
        "popularity_score": grouped.sum() / n_users,
        "listeners": grouped.size(),
    })
    result = artists.drop(columns=["popularity_score", "listeners"], errors="ignore")
    result = result.merge(stats, left_on="artistID", right_index=True, how="left")
    result["popularity_score"] = result["popularity_score"].fillna(0.0)
    result["listeners"] = result["listeners"].fillna(0).astype(np.int64)
    return result


@dataclass(frozen=True)
class IdMap:
    """Translation between original ids and dense indices 0..n-1 (in ascending id order)."""

    ids: np.ndarray

    @classmethod
    def from_values(cls, values: pd.Series | np.ndarray) -> IdMap:
        """Map the distinct ``values``, sorted, to 0..n-1."""
        return cls(np.unique(np.asarray(values)))

    def __len__(self) -> int:
        return int(self.ids.size)

    def to_index(self, ids: pd.Series | np.ndarray | int) -> np.ndarray:
        """Dense indices of original ``ids``; an unknown id raises ``KeyError``."""
        ids = np.asarray(ids)
        position = np.searchsorted(self.ids, ids)
        position = np.minimum(position, max(len(self) - 1, 0))
        unknown = self.ids[position] != ids if len(self) else np.ones(ids.shape, dtype=bool)
        if np.any(unknown):
            first = np.asarray(ids)[unknown].ravel()[0]
            raise KeyError(f"id {first} is not in the mapping ({int(unknown.sum())} unknown)")
        return position.astype(np.int64)

    def to_id(self, index: pd.Series | np.ndarray | int) -> np.ndarray:
        """Original ids of dense ``index`` values."""
        return self.ids[np.asarray(index)]


def reindex(user_artists: pd.DataFrame,
            artists: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, IdMap, IdMap]:
    """Give users and artists dense indices ``u_id`` and ``a_id``.

    Only artists that appear in ``user_artists`` keep a row (those without listens carry no
    signal for collaborative filtering), and the returned artists table is ordered so that
    row ``i`` is ``a_id == i``.

    Returns
    -------
    tuple
        ``(user_artists, artists, user_map, artist_map)``.
    """
    user_map = IdMap.from_values(user_artists["userID"])
    artist_map = IdMap.from_values(user_artists["artistID"])
    listened = artists.loc[artists["artistID"].isin(artist_map.ids)].copy()
    if len(listened) != len(artist_map):
        missing = np.setdiff1d(artist_map.ids, artists["artistID"])
        raise ValueError(f"{missing.size} listened artists have no row in the artists table "
                         f"(first artistID {missing[0]}); check that the files match")
    ratings = user_artists.copy()
    ratings["u_id"] = user_map.to_index(ratings["userID"])
    ratings["a_id"] = artist_map.to_index(ratings["artistID"])
    listened["a_id"] = artist_map.to_index(listened["artistID"])
    listened = listened.sort_values("a_id").reset_index(drop=True)
    return ratings, listened, user_map, artist_map


def split_dataframe(df: pd.DataFrame, holdout_fraction: float = 0.1,
                    seed: int = 42) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Randomly split rows into training and test sets.

    Parameters
    ----------
    df
        Any table with a unique index.
    holdout_fraction
        Fraction of rows in the test set, in [0, 1).
    seed
        Seed of the sampling: the same seed gives the same split.

    Returns
    -------
    tuple of pandas.DataFrame
        ``(train, test)``; together they hold every row exactly once.
    """
    if not 0 <= holdout_fraction < 1:
        raise ValueError(f"holdout_fraction must be in [0, 1), got {holdout_fraction}")
    if not df.index.is_unique:
        raise ValueError("split_dataframe needs a unique index; call reset_index() first")
    test = df.sample(frac=holdout_fraction, replace=False, random_state=seed)
    train = df.drop(index=test.index)
    return train, test


@dataclass(frozen=True)
class PreparedData:
    """The analysis-ready tables of :func:`prepare`.

    Attributes
    ----------
    ratings
        Trimmed listening rows with ``w_mm``, ``u_id`` and ``a_id``.
    artists
        Listened artists in ``a_id`` order, with top tags, popularity and listeners.
    users, artist_ids
        The dense index mappings.
    scaler
        The play-count scaling bounds.
    rows_removed
        Rows dropped as outliers.
    """

    ratings: pd.DataFrame
    artists: pd.DataFrame
    users: IdMap
    artist_ids: IdMap
    scaler: WeightScaler
    rows_removed: int

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_artists(self) -> int:
        return len(self.artist_ids)


def prepare(dataset: Dataset, remove_outliers: bool = True,
            quantile: float = 0.99) -> PreparedData:
    """Run the preprocessing of the analysis: trim, scale, tag, re-index, popularity.

    Popularity and listener counts are computed on the trimmed rows, as in the original.
    """
    trimmed = transform_weights(dataset.user_artists, remove_outliers, quantile)
    tagged = add_top_tags(dataset.artists, dataset.user_tagged, dataset.tags)
    ratings, artists, users, artist_ids = reindex(trimmed, tagged)
    artists = add_popularity_score(artists, ratings)
    return PreparedData(ratings=ratings, artists=artists, users=users, artist_ids=artist_ids,
                        scaler=trimmed.attrs["weight_scaler"],
                        rows_removed=trimmed.attrs["rows_removed"])
