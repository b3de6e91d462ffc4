"""``lastfm-rec scale``: the pipeline on Apache Spark, from the command line.

``lastfm-rec scale fit --input PATH --out DIR`` reads the listening rows on Spark (a HetRec
folder, a Parquet table, Last.fm-360K's plays file or an LFM-1b folder; ``--format`` names
the format where the path does not tell), re-indexes them (optionally trims outliers), fits
MLlib ALS and writes

* ``DIR/spark-als.npz``: the model in the package's format (``Recommender.save``), which
  ``lastfm-rec recommend --model-file DIR/spark-als.npz`` serves;
* ``DIR/artists.parquet``: the listened artists in model order with top tags and popularity
  (when the input folder has the artist and tag tables);
* ``DIR/top_n.parquet`` with ``--top-n N``: every user's N best unheard artists, computed on
  Spark.

Only argument parsing lives here (imported by :mod:`lastfm_rec.serving.cli` without pyspark); the
work is :mod:`lastfm_rec.spark`'s.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lastfm_rec.data.formats import FORMATS

MODEL_FILE = "spark-als.npz"


def add_scale_command(commands: argparse._SubParsersAction) -> None:
    """Register ``scale fit`` on the CLI's subcommands."""
    scale = commands.add_parser("scale", help="fit on Apache Spark (the spark extra; local "
                                              "or a cluster)")
    actions = scale.add_subparsers(dest="scale_command", required=True,
                                   parser_class=type(scale))
    fit = actions.add_parser("fit", help="preprocess and fit ALS on Spark; write the model")
    fit.add_argument("--input", required=True, metavar="PATH",
                     help="HetRec folder (.dat or .parquet tables), a Parquet of userID, "
                          "artistID, weight rows, Last.fm-360K's "
                          "usersha1-artmbid-artname-plays.tsv or an LFM-1b folder "
                          "(LFM-1b_LEs.txt and LFM-1b_artists.txt); local or a cluster path "
                          "(hdfs://, s3a://)")
    fit.add_argument("--format", choices=FORMATS, default=None, dest="input_format",
                     help="the input's format (default: told by the path: file names, a "
                          "local folder's files, a local .tsv's fields; a cluster path only "
                          "by its name)")
    fit.add_argument("--out", required=True, type=Path, metavar="DIR",
                     help="output folder: spark-als.npz (here), artists.parquet and top_n.parquet "
                          "(written by Spark: on a cluster, to its shared file system)")
    fit.add_argument("--master", default=None, metavar="URL",
                     help="Spark master (default $LASTFM_REC_SPARK_MASTER, then local[*])")
    fit.add_argument("--driver-memory", default=None, metavar="SIZE",
                     help="driver JVM heap, e.g. 4g (default $LASTFM_REC_SPARK_MEMORY, then 2g)")
    fit.add_argument("--local-dir", default=None, metavar="DIR",
                     help="Spark scratch folder (default $LASTFM_REC_SPARK_LOCAL_DIR, then /tmp)")
    fit.add_argument("--trim-quantile", type=float, default=None, metavar="Q",
                     help="drop rows above this quantile of play counts first (the analysis "
                          "uses 0.99; default: keep every row, as the served models do)")
    fit.add_argument("--top-n", type=int, default=None, metavar="N",
                     help="also write every user's N best unheard artists to top_n.parquet")
    for name, kind, default in (("factors", int, 64), ("regularization", float, 1.0),
                                ("alpha", float, 5.0), ("iterations", int, 15),
                                ("blocks", int, 2), ("seed", int, 42)):
        fit.add_argument(f"--{name}", type=kind, default=default,
                         help=f"ALS {name} (default {default}; Spark's meaning, see "
                              "lastfm_rec.models.spark_als)")
    fit.add_argument("--scaling", choices=("log1p", "binary", "raw"), default="log1p",
                     help="play counts -> ALS ratings (default log1p)")
    fit.set_defaults(handler=_cmd_scale_fit)


def _cmd_scale_fit(args: argparse.Namespace) -> int:
    from lastfm_rec.models.spark_als import SparkALSRecommender
    from lastfm_rec.spark import als, preprocessing
    from lastfm_rec.spark.session import SparkSettings, spark_session

    if args.top_n is not None and args.top_n < 1:
        raise ValueError(f"--top-n must be at least 1, got {args.top_n}")
    settings = SparkSettings.from_env(master=args.master,
                                            driver_memory=args.driver_memory,
                                            local_dir=args.local_dir)
    session = spark_session(settings)
    prepared = preprocessing.prepare(session, args.input,
                                     remove_outliers=args.trim_quantile is not None,
                                     quantile=args.trim_quantile or 0.99,
                                     with_tags=_has_tags(args.input),
                                     source_format=args.input_format)
    print(f"{prepared.n_users} users x {prepared.n_artists} artists "
          f"({prepared.rows_removed} rows trimmed); fitting ALS on {settings.master} ...",
          file=sys.stderr, flush=True)
    model = SparkALSRecommender(factors=args.factors, regularization=args.regularization,
                                alpha=args.alpha, iterations=args.iterations,
                                scaling=args.scaling, random_state=args.seed,
                                blocks=args.blocks)
    plays = preprocessing.play_matrix(prepared.ratings, prepared.n_users, prepared.n_artists)
    model.fit(plays, ratings=prepared.ratings)
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / MODEL_FILE
    model.save(path)
    if "name" in prepared.artists.columns:
        prepared.artists.orderBy("a_id").write.mode("overwrite").parquet(
            str(args.out / "artists.parquet"))
    if args.top_n:
        als.recommend_to_parquet(model.spark_model_, prepared.ratings, args.top_n,
                                   args.out / "top_n.parquet")
    print(f"model written to {path}; serve it with `lastfm-rec recommend "
          f"--model-file {path} --likes SHEET` (same data folder)")
    return 0


def _has_tags(source: str) -> bool:
    """A local folder with the artist and tag tables (Parquet input has ids only)."""
    folder = Path(source)
    return folder.is_dir() and all(
        any((folder / f"{name}{suffix}").exists() for suffix in (".dat", ".parquet"))
        for name in ("artists", "tags", "user_taggedartists"))
