"""``lastfm-rec scale``: the pipeline on Apache Spark, from the command line.

``lastfm-rec scale fit --input PATH --out DIR`` reads the listening rows on Spark (a HetRec
folder, a Parquet table, Last.fm-360K's plays file or an LFM-1b folder; ``--format`` names
the format where the path does not tell), re-indexes them (optionally trims outliers), fits
MLlib ALS and writes a model folder that ``lastfm-rec recommend --model-dir DIR`` serves on
its own (the layout is :mod:`lastfm_rec.serving.model_dir`'s):

* ``DIR/spark-als.npz``: the factors in the package's model format, no play matrix;
* ``DIR/artists.parquet``: the listened artists in model order, with ids and (when the input
  has them) names, top tags and popularity;
* ``DIR/top_n.parquet`` with ``--top-n N``: every user's N best unheard artists.

The rows stay on Spark: only the factors and one number per artist come to the driver, and
the Parquet folders are written by Spark.

Argument parsing lives here (imported by :mod:`lastfm_rec.serving.cli` without pyspark); the
work is :mod:`lastfm_rec.spark`'s.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lastfm_rec.data.formats import FORMATS


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
                     help="model folder: spark-als.npz (written here), artists.parquet and "
                          "top_n.parquet (written by Spark: on a cluster, a shared file "
                          "system); served by `lastfm-rec recommend --model-dir DIR`")
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
                     help="also write every user's N best unheard artists to top_n.parquet "
                          "(what `recommend --model-dir DIR --user ID` answers from)")
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
    import shutil

    from lastfm_rec.files import write_model_file
    from lastfm_rec.models.spark_als import SparkALSRecommender
    from lastfm_rec.serving.model_dir import ARTISTS_FILE, LIKE_PLAYS, MODEL_FILE, TOP_N_FILE
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
    model.fit_frame(prepared.ratings, prepared.n_users, prepared.n_artists)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    (out / MODEL_FILE).unlink(missing_ok=True)  # written last: a folder with one is whole
    prepared.artists.orderBy("a_id").write.mode("overwrite").parquet(str(out / ARTISTS_FILE))
    if args.top_n:
        als.recommend_to_parquet(model.spark_model_, prepared.ratings, args.top_n,
                                 out / TOP_N_FILE)
    else:  # an older run's lists would not be this model's
        shutil.rmtree(out / TOP_N_FILE, ignore_errors=True)
    content = model.model_file()
    content.meta[LIKE_PLAYS] = preprocessing.median_plays(prepared.ratings)
    write_model_file(out / MODEL_FILE, content)
    known = " or --user ID" if args.top_n else ""
    print(f"model folder written to {out}; serve it with `lastfm-rec recommend --model-dir "
          f"{out} --likes SHEET`{known} (no data folder needed)")
    return 0


def _has_tags(source: str) -> bool:
    """A local folder with the artist and tag tables (Parquet input has ids only)."""
    folder = Path(source)
    return folder.is_dir() and all(
        any((folder / f"{name}{suffix}").exists() for suffix in (".dat", ".parquet"))
        for name in ("artists", "tags", "user_taggedartists"))
