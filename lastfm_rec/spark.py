"""The pipeline on Apache Spark: sessions, reading the data, preprocessing and ALS.

An optional extra (``pip install -e .[spark]``, ``make install-spark``) for listening data
that outgrows one machine; nothing in the core package imports this module. It owns:

* a quiet session built from :class:`SparkSettings` (:func:`spark_session`): ``local[*]`` by
  default, a cluster by changing only the master URL (``LASTFM_REC_SPARK_MASTER``);
* reading the HetRec tables as tab-separated ``.dat`` files or Parquet (:func:`read_table`);
* the original's preprocessing on DataFrames (:func:`prepare`), equal to
  :func:`lastfm_rec.preprocessing.prepare` on the real data: the exact 99th-percentile trim,
  min-max ``w_mm``, ``IdMap``-order indices, top tags, popularity;
* MLlib ALS with implicit preferences (:func:`train_als`), its factors as arrays
  (:func:`factor_arrays`) and top-N lists for every user written to Parquet on the cluster
  (:func:`recommend_to_parquet`).

Spark's ALS is not ``implicit``'s under the same names (:mod:`lastfm_rec.models.spark_als`
gives the mapping). On one machine Spark is slower than ``implicit``; it is here for the
ceiling, not for speed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from lastfm_rec.preprocessing import NO_TAGS, WeightScaler

if TYPE_CHECKING:
    from pyspark.ml.recommendation import ALSModel
    from pyspark.sql import DataFrame, SparkSession

MASTER_ENV = "LASTFM_REC_SPARK_MASTER"
MEMORY_ENV = "LASTFM_REC_SPARK_MEMORY"
LOCAL_DIR_ENV = "LASTFM_REC_SPARK_LOCAL_DIR"
MIN_JAVA = 17
INSTALL_HINT = "install the Spark extra: `make install-spark` (or pip install -e '.[spark]')"

#: The HetRec tables Spark reads: Spark schema and file encoding of the ``.dat`` version.
TABLES: dict[str, tuple[str, str]] = {
    "user_artists": ("userID INT, artistID INT, weight BIGINT", "UTF-8"),
    "artists": ("artistID INT, name STRING, url STRING, pictureURL STRING", "UTF-8"),
    "tags": ("tagID INT, tagValue STRING", "ISO-8859-1"),
    "user_taggedartists": ("userID INT, artistID INT, tagID INT, day INT, month INT, year INT",
                           "UTF-8"),
}


class SparkUnavailableError(RuntimeError):
    """pyspark or a Java 17+ runtime is missing; the message says how to get it."""


# --------------------------------------------------------------------------- sessions

@dataclass(frozen=True)
class SparkSettings:
    """What a session is built from.

    Attributes
    ----------
    master
        Spark master URL: ``local[*]`` (every core here), ``local[2]``, or a cluster's
        (``spark://host:7077``, ``yarn``, ``k8s://...``).
    driver_memory
        JVM heap of the driver (in local mode it runs every task), e.g. ``"2g"``.
    local_dir
        Scratch folder for shuffle and spill files; None leaves Spark's default (/tmp).
    shuffle_partitions
        Partitions after a shuffle; small for one machine, raise it on a cluster.
    """

    master: str = "local[*]"
    driver_memory: str = "2g"
    local_dir: str | None = None
    shuffle_partitions: int = 8

    @classmethod
    def from_env(cls, **overrides: Any) -> SparkSettings:
        """Defaults, then ``LASTFM_REC_SPARK_MASTER``/``_MEMORY``/``_LOCAL_DIR``, then the
        non-None ``overrides`` (command-line options)."""
        settings = cls(master=os.environ.get(MASTER_ENV) or cls.master,
                       driver_memory=os.environ.get(MEMORY_ENV) or cls.driver_memory,
                       local_dir=os.environ.get(LOCAL_DIR_ENV) or None)
        return replace(settings, **{k: v for k, v in overrides.items() if v is not None})


def java_version() -> int:
    """Major version of the ``java`` on PATH (or under ``JAVA_HOME``).

    Raises
    ------
    SparkUnavailableError
        No Java, or one older than 17.
    """
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home, "bin", "java")) if home else shutil.which("java")
    fix = "install Java 17+ (Debian/Ubuntu: apt-get install -y openjdk-17-jre-headless)"
    if not java or not Path(java).exists():
        raise SparkUnavailableError(f"Spark needs Java {MIN_JAVA}+ but none was found: {fix}")
    output = subprocess.run([java, "-version"], capture_output=True, text=True,
                            check=False).stderr
    found = re.search(r'version "(\d+)(?:\.(\d+))?', output)
    if not found:
        raise SparkUnavailableError(f"cannot read the Java version from {java}: {fix}")
    major = int(found.group(1))
    major = int(found.group(2)) if major == 1 else major  # "1.8" is Java 8
    if major < MIN_JAVA:
        raise SparkUnavailableError(f"Spark needs Java {MIN_JAVA}+, {java} is Java {major}: {fix}")
    return major


def spark_session(settings: SparkSettings | None = None) -> SparkSession:
    """A quiet Spark session: UI and console progress off, log4j at ERROR, workers on this
    interpreter (``PYSPARK_PYTHON``). Returns the running session if there is one (its
    settings stay as they were).

    Raises
    ------
    SparkUnavailableError
        pyspark is not installed or Java 17+ is missing.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise SparkUnavailableError(f"pyspark is not installed: {INSTALL_HINT}") from None
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    java_version()
    settings = settings or SparkSettings.from_env()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    log4j = resources.files("lastfm_rec").joinpath("spark-log4j2.properties")
    # ALS's lineage grows with each iteration and Java serialises it recursively when a
    # task is sent. With the default 1 MB thread stacks a 15-iteration fit overflowed once in
    # three full test runs, on a loaded machine (interpreted frames are larger than compiled
    # ones). 16 MB stacks are reserved address space, committed only as they are used.
    java_options = f"-Dlog4j2.configurationFile={log4j} -Xss16m"
    builder = (SparkSession.builder.master(settings.master).appName("lastfm-rec")
               .config("spark.driver.memory", settings.driver_memory)
               .config("spark.driver.extraJavaOptions", java_options)  # local: runs the tasks
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.shuffle.partitions", str(settings.shuffle_partitions))
               .config("spark.sql.execution.arrow.pyspark.enabled", "false"))  # no pyarrow
    if settings.local_dir:
        builder = builder.config("spark.local.dir", settings.local_dir)
    # pyspark 4.3 warns on every toPandas that it does not fully support pandas 3.
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas",
                            category=FutureWarning)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


# --------------------------------------------------------------------------- reading

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


# --------------------------------------------------------------------------- preprocessing

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
        :func:`lastfm_rec.preprocessing.transform_weights`.
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
    :class:`lastfm_rec.preprocessing.IdMap` (``StringIndexer`` would order by frequency)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    order = Window.orderBy(column)  # one partition: n distinct ids, small beside the rows
    return frame.select(column).distinct().withColumn(
        index, (F.row_number().over(order) - 1).cast("int"))


def add_top_tags(artists: DataFrame, user_tagged: DataFrame, tags: DataFrame) -> DataFrame:
    """``top3_tags`` ("a / b / c") and ``top1_tags`` per artist: most assigned tag names
    first, ties alphabetical; ``"none"`` for untagged artists
    (:func:`lastfm_rec.preprocessing.add_top_tags`)."""
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
    artists without rows (:func:`lastfm_rec.preprocessing.add_popularity_score`)."""
    from pyspark.sql import functions as F

    stats = ratings.groupBy("artistID").agg(
        (F.sum("weight") / F.lit(float(n_users))).alias("popularity_score"),
        F.count(F.lit(1)).alias("listeners"))
    return artists.join(stats, "artistID", "left").fillna(
        {"popularity_score": 0.0, "listeners": 0})


def prepare(spark: SparkSession, source: str | os.PathLike, remove_outliers: bool = True,
            quantile: float = 0.99, with_tags: bool = True) -> SparkPrepared:
    """The original's preprocessing on Spark: trim, scale, top tags, re-index, popularity.

    Parameters
    ----------
    spark
        The session.
    source
        A folder of HetRec tables (``.dat`` or ``.parquet``), or a ``user_artists`` Parquet
        path (then there are no artist names or tags, only ids).
    remove_outliers, quantile
        The trim (the analysis drops rows above the 99th percentile of play counts).
    with_tags
        Add top tags (needs ``tags`` and ``user_taggedartists`` in ``source``).

    Returns
    -------
    SparkPrepared
        Cached DataFrames; popularity and listeners count the trimmed rows, as in pandas.
    """
    user_artists = read_table(spark, source, "user_artists")
    trimmed, scaler, threshold = transform_weights(user_artists, remove_outliers, quantile)
    trimmed = trimmed.cache()
    users = dense_index(trimmed, "userID", "u_id")
    artist_index = dense_index(trimmed, "artistID", "a_id")
    ratings = trimmed.join(users, "userID").join(artist_index, "artistID").select(
        "userID", "artistID", "weight", "w_mm", "u_id", "a_id").cache()
    if str(source).rstrip("/").endswith(".parquet"):
        artists = artist_index
    else:
        artists = read_table(spark, source, "artists")
        if with_tags:
            artists = add_top_tags(artists, read_table(spark, source, "user_taggedartists"),
                                   read_table(spark, source, "tags"))
        artists = artists.join(artist_index, "artistID")
    n_users, n_artists = users.count(), artist_index.count()
    listened = artists.count()
    if listened != n_artists:
        raise ValueError(f"{n_artists - listened} listened artists have no row in the artists "
                         "table; check that the files match")
    artists = add_popularity(artists, ratings, n_users).cache()
    rows_removed = user_artists.count() - ratings.count()
    return SparkPrepared(ratings=ratings, artists=artists, scaler=scaler, threshold=threshold,
                         rows_removed=rows_removed, n_users=n_users, n_artists=n_artists)


# --------------------------------------------------------------------------- ALS

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


def play_matrix(ratings: DataFrame, n_users: int, n_artists: int) -> sp.csr_matrix:
    """The ``(u_id, a_id, weight)`` rows streamed into a users x artists CSR matrix
    (float64, duplicates summed): what serving filters already heard artists with."""
    selected = ratings.select("u_id", "a_id", "weight")
    n = selected.count()
    rows, cols, values = (np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n))
    for i, row in enumerate(selected.toLocalIterator()):  # one partition at a time
        rows[i], cols[i], values[i] = row
    matrix = sp.csr_matrix((values, (rows, cols)), shape=(n_users, n_artists))
    matrix.sum_duplicates()
    matrix.sort_indices()
    return matrix


def train_als(ratings: DataFrame, factors: int = 64, regularization: float = 1.0,
              alpha: float = 5.0, iterations: int = 15, seed: int = 42, blocks: int = 2,
              rating: str = "rating", user: str = "u_id", item: str = "a_id") -> ALSModel:
    """MLlib ALS with implicit preferences on ``ratings`` (integer ``user``/``item`` indices).

    ``alpha`` and ``regularization`` have Spark's meaning: confidence ``1 + alpha * rating``
    and a penalty of ``regularization`` times each user's (item's) count of positive
    ratings (see :mod:`lastfm_rec.models.spark_als`). ``blocks`` is the number of user and
    of item blocks (tasks per step): about the cores available, more on a cluster (Spark's
    default is 10). Seeded: the same data, settings, ``blocks`` and ``seed`` give the same
    factors.
    """
    from pyspark.ml.recommendation import ALS

    # Spark's params take Python numbers only (a numpy float32 is refused).
    als = ALS(rank=int(factors), maxIter=int(iterations), regParam=float(regularization),
              alpha=float(alpha), implicitPrefs=True, seed=int(seed), userCol=user,
              itemCol=item, ratingCol=rating, numUserBlocks=int(blocks),
              numItemBlocks=int(blocks), nonnegative=False, coldStartStrategy="drop")
    return als.fit(ratings)


def factor_arrays(model: ALSModel, n_users: int, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    """``(user_factors, item_factors)`` as float32 arrays indexed by the model's integer ids;
    ids without ratings (no factors in Spark) get zero rows. Streamed one partition at a time,
    so the driver never holds every factor as Python objects."""
    def dense(frame: DataFrame, n: int) -> np.ndarray:
        out = np.zeros((n, model.rank), dtype=np.float32)
        for row in frame.toLocalIterator():
            out[row["id"]] = row["features"]
        return out

    return dense(model.userFactors, n_users), dense(model.itemFactors, n_items)


def recommend_to_parquet(model: ALSModel, ratings: DataFrame, n: int,
                         out: str | os.PathLike) -> None:
    """Top-``n`` unheard items for every user, computed on Spark and written to Parquet.

    ``recommendForAllUsers`` ranks ``n`` plus the most items any user has heard, the heard
    ones are removed with an anti-join and the best ``n`` kept: rows ``(u_id, rank, a_id,
    score)``, rank 1 best, ties to the lower id. Nothing is collected to the driver.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    user, item = model.getUserCol(), model.getItemCol()
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    heard = ratings.select(user, item).distinct()
    most = heard.groupBy(user).count().agg(F.max("count")).first()[0] or 0
    ranked = (model.recommendForAllUsers(n + int(most))
              .select(user, F.explode("recommendations").alias("r"))
              .select(user, F.col(f"r.{item}").alias(item), F.col("r.rating").alias("score"))
              .join(heard, [user, item], "left_anti"))
    order = Window.partitionBy(user).orderBy(F.desc("score"), F.asc(item))
    ranked.withColumn("rank", F.row_number().over(order)).where(F.col("rank") <= n).select(
        user, "rank", item, "score").write.mode("overwrite").parquet(str(out))
