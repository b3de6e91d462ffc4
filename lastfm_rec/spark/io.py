"""Reading on Spark: the HetRec tables (and writing them as Parquet), one Parquet table of
listening rows, and the bigger Last.fm releases.

The releases (Last.fm-360K's plays file, LFM-1b's events and artists files) are read as text
and checked line by line in the JVM with the rules of :mod:`lastfm_rec.data.releases`; the
first malformed line raises the same one-line error as the pandas reader, with its line
number (a line's position in its file split plus the lines of the splits before it).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

from lastfm_rec.data.formats import FIELDS_360K, LASTFM_360K, LFM_1B, is_remote, local_path
from lastfm_rec.data.releases import (
    FIELDS_ARTISTS,
    FIELDS_EVENTS,
    MBID,
    USER_SHA1,
    WHOLE,
    WHOLE_MAX,
    ReleaseError,
    lfm_1b_files,
    line_error,
    problem_360k,
    problem_artist,
    problem_event,
    repeat_error,
)

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, Row, SparkSession


#: The HetRec tables Spark reads: Spark schema and file encoding of the ``.dat`` version.
TABLES: dict[str, tuple[str, str]] = {
    "user_artists": ("userID INT, artistID INT, weight BIGINT", "UTF-8"),
    "artists": ("artistID INT, name STRING, url STRING, pictureURL STRING", "UTF-8"),
    "tags": ("tagID INT, tagValue STRING", "ISO-8859-1"),
    "user_taggedartists": ("userID INT, artistID INT, tagID INT, day INT, month INT, year INT",
                           "UTF-8"),
}

def read_table(spark: SparkSession, source: str | os.PathLike, name: str = "user_artists",
               file_format: str | None = None) -> DataFrame:
    """One HetRec table from a folder (``<name>.dat`` tab-separated, or ``<name>.parquet``)
    or, for ``user_artists``, a Parquet file or folder of any size.

    Parameters
    ----------
    spark
        The session.
    source
        A local or cluster path (``hdfs://``, ``s3a://``): a folder holding the table, or a
        path ending in ``.parquet``.
    name
        ``user_artists``, ``artists``, ``tags`` or ``user_taggedartists``.
    file_format
        ``"tsv"`` or ``"parquet"``; None decides from the path (and, for a local folder,
        from which file is there: ``.dat`` first).

    Returns
    -------
    pyspark.sql.DataFrame
        The table with the columns of :data:`TABLES` (``artists.dat``'s ``id`` is
        ``artistID``).
    """
    if name not in TABLES:
        raise ValueError(f"unknown table {name!r}; use one of {', '.join(TABLES)}")
    schema, encoding = TABLES[name]
    path, file_format = _locate(str(source), name, file_format)
    if file_format == "parquet":
        return _read_parquet(spark, path, name)
    # quote="" turns quoting off: artist names keep their literal quotes, as in pandas.
    return spark.read.csv(path, schema=schema, sep="\t", header=True, encoding=encoding,
                          quote="", mode="FAILFAST")

def read_parquet_rows(spark: SparkSession, path: str | os.PathLike) -> DataFrame:
    """One Parquet table (a file or a folder of parts, whatever its name) of listening rows:
    columns ``userID``, ``artistID`` and ``weight``."""
    return _read_parquet(spark, str(path), "user_artists")

def _read_parquet(spark: SparkSession, path: str, name: str) -> DataFrame:
    """Table ``name`` from Parquet, with the columns of :data:`TABLES`."""
    frame = spark.read.parquet(path)
    if name == "artists" and "id" in frame.columns:
        frame = frame.withColumnRenamed("id", "artistID")
    columns = [column.split()[0] for column in TABLES[name][0].split(", ")]
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise ValueError(f"{path} lacks column {', '.join(missing)} (has "
                         f"{', '.join(frame.columns)}): write it with these names")
    return frame.select(*columns)

def _locate(source: str, name: str, file_format: str | None) -> tuple[str, str]:
    """The path and format of table ``name`` in ``source``."""
    if file_format not in (None, "tsv", "parquet"):
        raise ValueError(f"file_format must be 'tsv' or 'parquet', got {file_format!r}")
    if source.rstrip("/").endswith(".parquet"):
        if name != "user_artists":
            raise ValueError(f"{source} is one Parquet table: {name} needs a folder with "
                             f"{name}.dat or {name}.parquet")
        return source, "parquet"
    folder = source.rstrip("/")
    if file_format is None and "://" in source and not source.startswith("file://"):
        file_format = "tsv"  # a cluster path cannot be looked into from here
    elif file_format is None:
        local = Path(folder.removeprefix("file://"))
        if not local.is_dir():
            raise ValueError(f"{source} is not a folder: give the HetRec folder or a "
                             "user_artists .parquet path")
        found = [kind for kind, suffix in (("tsv", ".dat"), ("parquet", ".parquet"))
                 if (local / f"{name}{suffix}").exists()]
        if not found:
            raise ValueError(f"{source} has neither {name}.dat nor {name}.parquet")
        file_format = found[0]
    suffix = ".parquet" if file_format == "parquet" else ".dat"
    return f"{folder}/{name}{suffix}", file_format

def write_parquet(spark: SparkSession, source: str | os.PathLike,
                  out_dir: str | os.PathLike) -> None:
    """Copy the HetRec tables of ``source`` to ``<out_dir>/<name>.parquet`` (Spark writes
    each through a temporary folder and commits it at the end)."""
    for name in TABLES:
        read_table(spark, source, name).write.mode("overwrite").parquet(
            f"{str(out_dir).rstrip('/')}/{name}.parquet")

# --------------------------------------------------------------------------- Last.fm releases

def read_release(spark: SparkSession, source: str | os.PathLike,
                 source_format: str) -> tuple[DataFrame, DataFrame]:
    """A Last.fm release as listening rows and artist names, checked line by line.

    Parameters
    ----------
    spark
        The session.
    source
        Last.fm-360K's plays file, or the LFM-1b folder (or its events file with
        ``LFM-1b_artists.txt`` beside it); local or a cluster path.
    source_format
        ``"lastfm-360k"`` or ``"lfm-1b"``.

    Returns
    -------
    tuple of pyspark.sql.DataFrame
        ``(user_artists, artists)``: rows ``userID``, ``artistID``, ``weight`` (summed plays,
        or counted events; cached), and ``artistID``, ``name``. Ids are those of
        :mod:`lastfm_rec.data.releases` (SHA-1 and MusicBrainz id or name strings for
        Last.fm-360K, integers for LFM-1b).

    Raises
    ------
    ReleaseError
        A local file is missing, a file has no lines, a line is malformed, or the artists
        file repeats an id (the first such line, numbered as in the file).
    """
    if source_format == LASTFM_360K:
        user_artists, artists = _read_360k(spark, str(source))
        where = str(source)
    elif source_format == LFM_1B:
        where, artists_file = lfm_1b_files(source)
        user_artists, artists = _read_lfm_1b(spark, where, artists_file)
    else:
        raise ValueError(f"{source_format!r} is not a Last.fm release; use {LASTFM_360K!r} or "
                         f"{LFM_1B!r}")
    if not user_artists.cache().count():
        raise ReleaseError(f"{where} has no listening lines: check the path")
    return user_artists, artists

def _lines(spark: SparkSession, path: str) -> DataFrame:
    """The lines of a text file (``\\n`` ends a line; a ``\\r`` before it is dropped) with
    where each was read: ``_file``, ``_start`` (the byte its file split starts at) and
    ``_row`` (increasing within a split)."""
    from pyspark.sql import functions as F

    if not is_remote(path) and not local_path(path).is_file():
        raise ReleaseError(f"{path} not found: check the path")
    return spark.read.option("lineSep", "\n").text(path).select(
        F.regexp_replace("value", "\r\\z", "").alias("line"),
        F.col("_metadata.file_path").alias("_file"),
        F.col("_metadata.file_block_start").alias("_start"),
        F.monotonically_increasing_id().alias("_row"))

def _matches(column: Column, pattern: str) -> Column:
    """``column`` matches ``pattern`` in full (``\\z``: Java's ``$`` also matches before a
    final ``\\r``)."""
    return column.rlike(f"^(?:{pattern})\\z")

def _whole(column: Column) -> Column:
    """:func:`lastfm_rec.data.releases.is_whole` in the JVM."""
    from pyspark.sql import functions as F

    return _matches(column, WHOLE) & (
        (F.length(column) < len(WHOLE_MAX)) | (column <= F.lit(WHOLE_MAX)))

def _first(frame: DataFrame, condition: Column) -> Row | None:
    """The first line, in file order, where ``condition`` holds (None where it holds nowhere)."""
    return frame.where(condition).orderBy("_file", "_start", "_row").select(
        "_file", "_start", "_row", "line").first()

def _line_number(frame: DataFrame, line: Row) -> int:
    """The number of a line :func:`_first` found: the lines of the earlier splits of its file
    plus those before it in its own split, plus one."""
    from pyspark.sql import functions as F

    start, row = line["_start"], line["_row"]
    earlier = (F.col("_file") == line["_file"]) & ((F.col("_start") < start) | (
        (F.col("_start") == start) & (F.col("_row") < row)))
    return frame.where(earlier).count() + 1

def _file_of(line: Row) -> str:
    """The file a line was read from: a local path, or the cluster URI."""
    file = line["_file"]
    return unquote(urlparse(file).path) if file.startswith("file:") else file

def _require_valid(frame: DataFrame, ok: Column,
                   problem: Callable[[list[str]], str | None]) -> None:
    """Raise for the first line where ``ok`` does not hold, worded by ``problem``."""
    from pyspark.sql import functions as F

    bad = _first(frame, ~F.coalesce(ok, F.lit(False)))
    if bad is not None:
        raise line_error(_file_of(bad), _line_number(frame, bad),
                         problem(bad["line"].split("\t")) or "is malformed")

def _read_360k(spark: SparkSession, path: str) -> tuple[DataFrame, DataFrame]:
    """Last.fm-360K's plays: plays summed per user and artist (a MusicBrainz id, else a
    name), and each artist's most given name."""
    from pyspark.sql import functions as F

    lines = _lines(spark, path)
    fields = F.split("line", "\t", -1)
    user, mbid, name, plays = (F.get(fields, index) for index in range(len(FIELDS_360K)))
    _require_valid(lines, (F.size(fields) == len(FIELDS_360K)) & _matches(user, USER_SHA1)
                   & ((mbid == "") | _matches(mbid, MBID)) & ((mbid != "") | (name != ""))
                   & _whole(plays), problem_360k)
    rows = lines.select(
        user.alias("userID"), F.when(mbid != "", mbid).otherwise(name).alias("artistID"),
        name.alias("name"), plays.try_cast("bigint").alias("weight"))
    user_artists = rows.groupBy("userID", "artistID").agg(F.sum("weight").alias("weight"))
    best = F.min_by("name", F.struct(F.col("name") == "", -F.col("count"), F.col("name")))
    artists = rows.groupBy("artistID", "name").count().groupBy("artistID").agg(
        best.alias("name")).select(
        "artistID", F.when(F.col("name") == "", F.col("artistID")).otherwise(
            F.col("name")).alias("name"))
    return user_artists, artists

def _read_lfm_1b(spark: SparkSession, events_path: str,
                 artists_path: str) -> tuple[DataFrame, DataFrame]:
    """LFM-1b: events counted per user and artist, and the artists file (each id once)."""
    from pyspark.sql import functions as F

    events = _lines(spark, events_path)
    fields = F.split("line", "\t", -1)
    user, artist = F.get(fields, 0), F.get(fields, 1)
    _require_valid(events, (F.size(fields) == len(FIELDS_EVENTS)) & _whole(user) & _whole(artist),
                   problem_event)
    user_artists = events.select(
        user.try_cast("bigint").alias("userID"), artist.try_cast("bigint").alias("artistID")
    ).groupBy("userID", "artistID").agg(F.count(F.lit(1)).alias("weight"))
    lines = _lines(spark, artists_path)
    fields = F.split("line", "\t", -1)
    _require_valid(lines, (F.size(fields) == len(FIELDS_ARTISTS)) & _whole(F.get(fields, 0)),
                   problem_artist)
    artists = lines.select("*", F.get(fields, 0).try_cast("bigint").alias("artistID"),
                           F.get(fields, 1).alias("name"))
    _require_unique_ids(artists)
    return user_artists, artists.select("artistID", "name")

def _require_unique_ids(artists: DataFrame) -> None:
    """Raise for the first line of the artists file that repeats an earlier line's id."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    order = Window.partitionBy("artistID").orderBy("_file", "_start", "_row")
    ranked = artists.withColumn("_nth", F.row_number().over(order))
    repeat = _first(ranked, F.col("_nth") > 1)
    if repeat is None:
        return
    artist = int(repeat["line"].split("\t")[0])
    original = _first(ranked, (F.col("artistID") == artist) & (F.col("_nth") == 1))
    raise repeat_error(_file_of(repeat), _line_number(artists, repeat),
                       _line_number(artists, original), artist)
