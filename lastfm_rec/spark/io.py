"""Reading the HetRec tables on Spark and writing Parquet.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


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
        frame = spark.read.parquet(path)
        if name == "artists" and "id" in frame.columns:
            frame = frame.withColumnRenamed("id", "artistID")
        columns = [column.split()[0] for column in schema.split(", ")]
        missing = [column for column in columns if column not in frame.columns]
        if missing:
            raise ValueError(f"{path} lacks column {', '.join(missing)} (has "
                             f"{', '.join(frame.columns)}): write it with these names")
        return frame.select(*columns)
    # quote="" turns quoting off: artist names keep their literal quotes, as in pandas.
    return spark.read.csv(path, schema=schema, sep="\t", header=True, encoding=encoding,
                          quote="", mode="FAILFAST")

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
