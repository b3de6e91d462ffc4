"""The original's preprocessing on Spark: trimming, scaling, re-indexing, tags, popularity.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from lastfm_rec.data.formats import FORMATS, PARQUET, RELEASES, detect_format
from lastfm_rec.data.preprocessing import NO_TAGS, WeightScaler
from lastfm_rec.spark.io import read_parquet_rows, read_release, read_table

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


@dataclass(frozen=True)
class SparkPrepared:
    """What :func:`prepare` returns: DataFrames plus the few numbers the driver keeps.

    Attributes
    ----------
    ratings
        Listening rows with ``w_mm``, ``u_id`` and ``a_id`` (as the pandas ``ratings``).
    artists
        Listened artists with ``a_id``, ``top3_tags``, ``top1_tags``, ``popularity_score``
        and ``listeners`` (order by ``a_id`` before collecting).
    scaler
        The play-count scaling bounds.
    threshold
        The trimming threshold, or None when nothing was trimmed.
    rows_removed, n_users, n_artists
        Counts.
    """

    ratings: DataFrame
    artists: DataFrame
    scaler: WeightScaler
    threshold: float | None
    rows_removed: int
    n_users: int
    n_artists: int

def outlier_threshold(user_artists: DataFrame, quantile: float = 0.99) -> float:
    """The ``quantile`` of ``weight``, exact and linearly interpolated as ``numpy.quantile``.

    Spark's ``percentile`` aggregate sorts every value: exact, where ``approxQuantile`` and
    ``percentile_approx`` return a nearby value (here the maximum, or one row too many).
    """
    from pyspark.sql import functions as F

    if not 0 < quantile <= 1:
        raise ValueError(f"quantile must be in (0, 1], got {quantile}")
    row = user_artists.agg(F.percentile(F.col("weight"), F.lit(quantile)).alias("q")).first()
    if row is None or row["q"] is None:
        raise ValueError("cannot trim outliers of no listening rows")
    return float(row["q"])

def transform_weights(user_artists: DataFrame, remove_outliers: bool = True,
                      quantile: float = 0.99) -> tuple[DataFrame, WeightScaler, float | None]:
    """Drop rows above the ``quantile`` of ``weight`` and add min-max scaled ``w_mm``.

    Returns
    -------
    tuple
        ``(rows with w_mm, scaler, threshold or None)``, as
        :func:`lastfm_rec.data.preprocessing.transform_weights`.
    """
    from pyspark.sql import functions as F

    threshold = outlier_threshold(user_artists, quantile) if remove_outliers else None
    rows = user_artists if threshold is None else user_artists.where(
        F.col("weight") <= F.lit(threshold))
    bounds = rows.agg(F.min("weight").alias("lo"), F.max("weight").alias("hi")).first()
    if bounds is None or bounds["lo"] is None:
        raise ValueError("no listening rows left to scale")
    scaler = WeightScaler(float(bounds["lo"]), float(bounds["hi"]))
    span = scaler.maximum - scaler.minimum
    w_mm = ((F.col("weight").cast("double") - F.lit(scaler.minimum)) / F.lit(span)
            if span else F.lit(0.0))
    return rows.withColumn("w_mm", w_mm), scaler, threshold

def dense_index(frame: DataFrame, column: str, index: str) -> DataFrame:
    """Distinct ``column`` values with ``index`` 0..n-1 in ascending value order, as
    :class:`lastfm_rec.data.preprocessing.IdMap` (``StringIndexer`` would order by frequency)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    order = Window.orderBy(column)  # one partition: n distinct ids, small beside the rows
    return frame.select(column).distinct().withColumn(
        index, (F.row_number().over(order) - 1).cast("int"))

def add_top_tags(artists: DataFrame, user_tagged: DataFrame, tags: DataFrame) -> DataFrame:
    """``top3_tags`` ("a / b / c") and ``top1_tags`` per artist: most assigned tag names
    first, ties alphabetical; ``"none"`` for untagged artists
    (:func:`lastfm_rec.data.preprocessing.add_top_tags`)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    labelled = (user_tagged.join(tags.select("tagID", F.col("tagValue").alias("tag")), "tagID")
                .join(artists.select("artistID"), "artistID"))
    counts = labelled.groupBy("artistID", "tag").count()
    ranking = Window.partitionBy("artistID").orderBy(F.desc("count"), F.asc("tag"))
    top = counts.withColumn("rank", F.row_number().over(ranking)).where("rank <= 3")
    summary = top.groupBy("artistID").agg(
        F.array_join(F.transform(F.array_sort(F.collect_list(F.struct("rank", "tag"))),
                                 lambda entry: entry["tag"]), " / ").alias("top3_tags"),
        F.min_by("tag", "rank").alias("top1_tags"))
    return artists.join(summary, "artistID", "left").fillna(
        NO_TAGS, subset=["top3_tags", "top1_tags"])

def add_popularity(artists: DataFrame, ratings: DataFrame, n_users: int) -> DataFrame:
    """``popularity_score`` (plays / ``n_users``) and ``listeners`` (rows) per artist; 0 for
    artists without rows (:func:`lastfm_rec.data.preprocessing.add_popularity_score`)."""
    from pyspark.sql import functions as F

    stats = ratings.groupBy("artistID").agg(
        (F.sum("weight") / F.lit(float(n_users))).alias("popularity_score"),
        F.count(F.lit(1)).alias("listeners"))
    return artists.join(stats, "artistID", "left").fillna(
        {"popularity_score": 0.0, "listeners": 0})

def prepare(spark: SparkSession, source: str | os.PathLike, remove_outliers: bool = True,
            quantile: float = 0.99, with_tags: bool = True,
            source_format: str | None = None) -> SparkPrepared:
    """The original's preprocessing on Spark: trim, scale, top tags, re-index, popularity.

    Parameters
    ----------
    spark
        The session.
    source
        A folder of HetRec tables (``.dat`` or ``.parquet``); a Parquet table of
        ``user_artists`` rows (then there are no artist names or tags, only ids);
        Last.fm-360K's plays file or an LFM-1b folder (artist names, top tags ``"none"``).
    remove_outliers, quantile
        The trim (the analysis drops rows above the 99th percentile of play counts).
    with_tags
        Add top tags to HetRec artists (needs ``tags`` and ``user_taggedartists`` in
        ``source``).
    source_format
        One of :data:`lastfm_rec.data.formats.FORMATS`; None detects it from ``source``
        (:func:`lastfm_rec.data.formats.detect_format`).

    Returns
    -------
    SparkPrepared
        Cached DataFrames; popularity and listeners count the trimmed rows, as in pandas.
    """
    from pyspark.sql import functions as F

    kind = source_format or detect_format(source)
    if kind not in FORMATS:
        raise ValueError(f"unknown format {kind!r}; use one of {', '.join(FORMATS)}")
    artists: DataFrame | None = None
    if kind in RELEASES:
        user_artists, named = read_release(spark, source, kind)
        artists = named.withColumns({"top3_tags": F.lit(NO_TAGS), "top1_tags": F.lit(NO_TAGS)})
    elif kind == PARQUET:
        user_artists = read_parquet_rows(spark, source)
    else:
        user_artists = read_table(spark, source, "user_artists")
        artists = read_table(spark, source, "artists")
        if with_tags:
            artists = add_top_tags(artists, read_table(spark, source, "user_taggedartists"),
                                   read_table(spark, source, "tags"))
    trimmed, scaler, threshold = transform_weights(user_artists, remove_outliers, quantile)
    trimmed = trimmed.cache()
    users = dense_index(trimmed, "userID", "u_id")
    artist_index = dense_index(trimmed, "artistID", "a_id")
    ratings = trimmed.join(users, "userID").join(artist_index, "artistID").select(
        "userID", "artistID", "weight", "w_mm", "u_id", "a_id").cache()
    artists = artist_index if artists is None else artists.join(artist_index, "artistID")
    n_users, n_artists = users.count(), artist_index.count()
    listened = artists.count()
    if listened != n_artists:
        raise ValueError(f"{n_artists - listened} listened artists have no row in the artists "
                         "table; check that the files match")
    artists = add_popularity(artists, ratings, n_users).cache()
    rows_removed = user_artists.count() - ratings.count()
    return SparkPrepared(ratings=ratings, artists=artists, scaler=scaler, threshold=threshold,
                         rows_removed=rows_removed, n_users=n_users, n_artists=n_artists)

@contextmanager
def matrix_frame(spark: SparkSession, user_items: sp.csr_matrix) -> Iterator[DataFrame]:
    """The nonzero entries of a users x items matrix as rows ``(u_id, a_id, rating)``
    (float32 ratings), for the duration of the ``with`` block.

    In local mode the entries go through a temporary tab-separated file that the JVM reads
    (no Python worker processes, and fast); on a cluster, whose executors cannot see local
    files, they are sent with ``createDataFrame``.
    """
    coo = user_items.tocoo()
    schema = "u_id INT, a_id INT, rating FLOAT"
    if not spark.sparkContext.master.startswith("local"):
        rows = zip(coo.row.tolist(), coo.col.tolist(),
                   coo.data.astype(np.float32).tolist(), strict=True)
        yield spark.createDataFrame(rows, schema=schema)
        return
    with tempfile.TemporaryDirectory(prefix="lastfm-rec-") as folder:
        path = Path(folder, "ratings.tsv")
        np.savetxt(path, np.column_stack([coo.row, coo.col, coo.data.astype(np.float32)]),
                   fmt=("%d", "%d", "%.9g"), delimiter="\t")  # 9 digits: float32 exactly
        yield spark.read.csv(str(path), schema=schema, sep="\t")

def scaled_ratings(ratings: DataFrame, scaling: str = "log1p") -> DataFrame:
    """Rows ``(u_id, a_id, rating)`` of ``weight`` scaled as
    :func:`lastfm_rec.models.base.scale_plays` does (``"log1p"``, ``"binary"``, ``"raw"``)."""
    from pyspark.sql import functions as F

    weight = F.col("weight").cast("double")
    expressions = {"log1p": F.log1p(weight), "binary": F.lit(1.0), "raw": weight}
    if scaling not in expressions:
        raise ValueError(f"unknown scaling {scaling!r}; use 'binary', 'log1p' or 'raw'")
    return ratings.where(F.col("weight") != 0).select(
        "u_id", "a_id", expressions[scaling].cast("float").alias("rating"))

def item_listeners(ratings: DataFrame, n_artists: int) -> np.ndarray:
    """Users who played each artist, as ``Recommender.fit`` counts them in a play matrix
    (``item_listeners_``): int64 by ``a_id``, ``n_artists`` long. Counted on Spark; one row per
    artist comes to the driver."""
    from pyspark.sql import functions as F

    counts = ratings.where(F.col("weight") != 0).groupBy("a_id").agg(
        F.countDistinct("u_id").alias("listeners"))
    out = np.zeros(n_artists, dtype=np.int64)
    for row in counts.toLocalIterator():
        out[row["a_id"]] = row["listeners"]
    return out

def median_plays(ratings: DataFrame) -> float:
    """The median ``weight`` of the rows with plays, exact (``numpy.median`` of a play
    matrix's entries): what serving counts each liked artist of a new user as."""
    from pyspark.sql import functions as F

    return outlier_threshold(ratings.where(F.col("weight") != 0), 0.5)
