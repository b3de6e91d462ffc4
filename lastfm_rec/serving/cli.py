"""The ``lastfm-rec`` command: get the data, recommend artists, show neighbours.

Owns argument parsing and output formatting only; the work is done by the library. Heavy
imports (pandas, TensorFlow) happen inside the subcommands, so ``lastfm-rec --help`` answers
at once. User mistakes end with exit status 2 and one ``error:`` line on stderr. What the
library logs at ``INFO`` and above (training a model, the study's results, rec-sheet notes)
is printed on stderr as plain lines.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from lastfm_rec.spark.cli import add_scale_command

if TYPE_CHECKING:
    import numpy as np

    from lastfm_rec.serving.session import Session

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a command ended by Ctrl-C
# The tuned ALS: for a new user from a rec sheet it ranks within 2% of the hybrid (which is
# best for known users, notebooks/05_ranking_evaluation) and caches in 20 MB instead of 0.5 GB.
DEFAULT_MODEL = "als"


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one ``error:`` line, without the usage block."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", type=Path, default=None, metavar="DIR",
                        help="folder with the HetRec .dat files (default: $LASTFM_REC_DATA, "
                             "then data/hetrec2011-lastfm-2k)")
    return common


def _model_option() -> argparse.ArgumentParser:
    model = argparse.ArgumentParser(add_help=False)
    model.add_argument("--model", default=DEFAULT_MODEL, metavar="NAME",
                       help=f"registered model (default {DEFAULT_MODEL}; see "
                            "`lastfm-rec models`)")
    return model


def _output_options(default_k: int) -> argparse.ArgumentParser:
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("-k", type=_positive_int, default=default_k,
                        help=f"how many artists to list (default {default_k})")
    output.add_argument("--measure", choices=("dot", "cosine"), default=None,
                        help="rank by dot product or cosine of the embeddings (embedding "
                             "models: als, sgd-mf); default: the model's own scores")
    output.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return output


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface, with one subcommand per task."""
    parser = _Parser(prog="lastfm-rec",
                     description="Artist recommendations from Last.fm listening histories "
                                 "(HetRec 2011 Last.fm 2K).")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    common = _common_options()

    data = commands.add_parser("data", parents=[common],
                               help="find or download the data, verify it, print where it is")
    data.set_defaults(handler=_cmd_data)

    recommend = commands.add_parser(
        "recommend", parents=[common, _model_option(), _output_options(10)],
        help="recommend artists for the likes in a rec sheet")
    who = recommend.add_mutually_exclusive_group(required=True)
    who.add_argument("--likes", type=Path, metavar="PATH",
                     help="CSV with columns name and Like (1 or blank), e.g. "
                          "rec_sheets/your_artists.csv")
    who.add_argument("--user", metavar="ID",
                     help="a user of the data a model folder was fitted on (its userID): "
                          "their best unheard artists from top_n.parquet (with --model-dir)")
    recommend.add_argument("--explain", action="store_true",
                           help="add the liked artists that contributed most to each score "
                                "(models item-knn, rp3beta, ease, als, hybrid, sgd-mf)")
    saved = recommend.add_mutually_exclusive_group()
    saved.add_argument("--model-dir", type=Path, default=None, metavar="DIR",
                       help="serve the model folder of `lastfm-rec scale fit --out DIR` "
                            "instead of --model; needs no data folder")
    saved.add_argument("--model-file", type=Path, default=None, metavar="PATH",
                       help="serve a saved model instead of --model, with the artists of the "
                            "data folder it was fitted on; DIR/spark-als.npz of `scale fit` is "
                            "served from its folder unless --data-dir is given")
    recommend.set_defaults(handler=_cmd_recommend)

    artists = commands.add_parser("artists", parents=[common],
                                  help="exact names of the artists whose name contains QUERY "
                                       "(to add to a rec sheet)")
    artists.add_argument("query", help="part of a name (case-insensitive, plain text)")
    artists.add_argument("-k", type=_positive_int, default=20,
                         help="how many artists to list, most listened first (default 20)")
    artists.add_argument("--json", action="store_true", help="print JSON instead of a table")
    artists.set_defaults(handler=_cmd_artists)

    neighbors = commands.add_parser("neighbors",
                                    parents=[common, _model_option(), _output_options(5)],
                                    help="artists nearest to a named artist")
    neighbors.add_argument("name", help="artist name (case-insensitive, plain text)")
    neighbors.set_defaults(handler=_cmd_neighbors)

    evaluate = commands.add_parser(
        "evaluate", parents=[common],
        help="rank held-out listens: metrics of every registered model (about 2 minutes)")
    evaluate.add_argument("--model", action="append", metavar="NAME", default=None,
                          help="evaluate only this model (repeatable; default: all)")
    evaluate.add_argument("--tune", action="store_true",
                          help="re-run the hyperparameter search on validation first "
                               "(about 20 minutes) instead of the stored tuned settings")
    evaluate.add_argument("--seed", type=int, default=42, help="split seed (default 42)")
    evaluate.add_argument("--json", action="store_true", help="print JSON instead of tables")
    evaluate.set_defaults(handler=_cmd_evaluate)

    add_scale_command(commands)

    listing = commands.add_parser("models", help="list the registered models and settings")
    listing.set_defaults(handler=_cmd_models)

    cache = commands.add_parser("cache", help="list the cached models (--clear deletes them)")
    cache.add_argument("--clear", action="store_true", help="delete every cached model")
    cache.set_defaults(handler=_cmd_cache)
    return parser


def _cmd_data(args: argparse.Namespace) -> int:
    from lastfm_rec.data.hetrec import CHECKSUMS, fetch_data, verify_data

    folder = fetch_data(args.data_dir)
    verify_data(folder, CHECKSUMS)
    print(f"data ready in {folder.resolve()} (sizes and SHA-256 verified)")
    return 0


def _cmd_recommend(args: argparse.Namespace) -> int:
    from lastfm_rec.models import create
    from lastfm_rec.serving.explain import check_explainable

    # Every check that needs no model comes before a model is loaded or trained.
    if args.explain and args.measure:
        raise ValueError("--explain explains the model's own scores: leave --measure out")
    if args.user is not None:
        if args.model_dir is None:
            raise ValueError("--user serves a known user from a model folder: pass --model-dir "
                             "DIR (from `lastfm-rec scale fit --top-n N --out DIR`)")
        if args.explain or args.measure:
            raise ValueError("--user lists the model's own top-N from top_n.parquet: leave "
                             "--explain and --measure out")
    if args.explain and args.model_file is None and args.model_dir is None:
        check_explainable(create(args.model))
    if args.model_file is not None and args.data_dir is None and _in_model_folder(
            args.model_file):
        args.model_dir = args.model_file.parent  # a scale fit folder serves on its own
    if args.user is not None:  # with --model-dir, checked above
        return _recommend_known_user(args)
    from lastfm_rec.serving.session import recommend_for_likes

    session, liked = _folder_likes(args) if args.model_dir is not None else _data_likes(args)
    args.model = session.model_name
    if args.explain and (args.model_file is not None or args.model_dir is not None):
        check_explainable(session.model)
    table = recommend_for_likes(session, liked, k=args.k, measure=args.measure,
                                explain=args.explain)
    _print_table(table, args, f"Top {len(table)} artists for the {len(liked)} you like")
    return 0


def _data_likes(args: argparse.Namespace) -> tuple[Session, np.ndarray]:
    """The session of ``--model`` or ``--model-file`` on the data folder, and the sheet's
    liked artists (read first: a bad sheet fails before a model is fitted)."""
    from lastfm_rec.data.sheets import read_rec_sheet
    from lastfm_rec.serving.session import load_model_file, load_serving_data, load_session

    data = load_serving_data(args.data_dir)  # read once: for the sheet and the session
    liked = read_rec_sheet(args.likes, data.artists)
    if args.model_file is None:
        return load_session(data, args.model), liked
    return load_model_file(data, args.model_file), liked


def _in_model_folder(model_file: Path) -> bool:
    """Whether ``model_file`` is the model of a ``scale fit`` folder (its artists beside it)."""
    from lastfm_rec.serving.model_dir import ARTISTS_FILE, MODEL_FILE

    return model_file.name == MODEL_FILE and (model_file.parent / ARTISTS_FILE).exists()


def _folder_likes(args: argparse.Namespace) -> tuple[Session, np.ndarray]:
    """``--model-dir``: the session of a ``scale fit`` folder, without the data, and the
    sheet's liked artists among its artist names."""
    from lastfm_rec.data.sheets import read_rec_sheet
    from lastfm_rec.serving.model_dir import ARTISTS_FILE, load_model_dir

    session = load_model_dir(args.model_dir)
    if "name" not in session.artists.columns:
        raise ValueError(f"{args.model_dir / ARTISTS_FILE} has no artist names (the input had "
                         "ids only): serve known users with --user ID, or fit on a folder "
                         "with the artists table")
    return session, read_rec_sheet(args.likes, session.artists)


def _recommend_known_user(args: argparse.Namespace) -> int:
    """``--model-dir DIR --user ID``: the user's rows of the folder's ``top_n.parquet``."""
    from lastfm_rec.serving.model_dir import load_model_dir, recommend_known_user

    session = load_model_dir(args.model_dir)
    args.model = session.model_name
    table = recommend_known_user(args.model_dir, session, args.user, k=args.k)
    _print_table(table, args, f"Top {len(table)} artists for user {args.user}")
    return 0


def _cmd_artists(args: argparse.Namespace) -> int:
    from lastfm_rec.data.hetrec import load_dataset
    from lastfm_rec.data.sheets import search_artists
    from lastfm_rec.serving.session import describe_artists

    table = search_artists(args.query, describe_artists(load_dataset(args.data_dir)), k=args.k)
    matches = table.attrs["matches"]
    if args.json:
        print(json.dumps({"query": args.query, "matches": matches,
                          "results": table.to_dict(orient="records")},
                         ensure_ascii=False, indent=2, default=str))
        return 0
    shown = f", the {len(table)} most listened" if matches > len(table) else ""
    print(f"{matches} artists whose name contains {args.query!r}{shown}:")
    print(table.to_string(index=False))
    return 0


def _cmd_neighbors(args: argparse.Namespace) -> int:
    from lastfm_rec.serving.session import artist_neighbors, load_session

    session = load_session(args.data_dir, args.model)
    table = artist_neighbors(session, args.name, k=args.k, measure=args.measure)
    title = f"Nearest neighbours of {table.attrs['query']}"
    others = table.attrs["other_candidates"]
    if others and not args.json:
        title += f" (other matches: {', '.join(others[:10])})"
    _print_table(table, args, title)
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from lastfm_rec.evaluation.tuning import run_study
    from lastfm_rec.models import available

    unknown = sorted(set(args.model or ()) - set(available()))
    if unknown:
        raise ValueError(f"unknown model {unknown[0]!r}; available: {', '.join(available())}")
    result = run_study(args.data_dir, names=args.model, seed=args.seed, tuned=args.tune)
    if args.json:
        payload = {"seed": args.seed, "tuned_now": args.tune,
                   "test": _records(result.test), "new_users": _records(result.new_users),
                   "chosen": {name: r.best_params for name, r in result.tuning.items()}}
        print(json.dumps(payload, indent=2, default=str))
        return 0
    columns = ["ndcg@10", "precision@10", "recall@10", "map@10", "ndcg@20", "coverage@10",
               "popularity@10", "fit_seconds"]
    print("\nHeld-out listens (20% of each user's artists):")
    print(result.test[columns].to_string(float_format=lambda x: f"{x:.4f}"))
    print("\nNew users (held out of training; half their artists given as likes):")
    print(result.new_users[columns[:-1]].to_string(float_format=lambda x: f"{x:.4f}"))
    return 0


def _records(table: Any) -> list[dict[str, Any]]:
    return [{"model": name, **row} for name, row in table.to_dict(orient="index").items()]


def _cmd_models(args: argparse.Namespace) -> int:
    from lastfm_rec.models import available

    for name, factory in available().items():
        print(f"{name:12s} {factory()!r}")
    return 0


def _cmd_cache(args: argparse.Namespace) -> int:
    from lastfm_rec.serving.cache import cache_dir, clear, entries

    found = clear() if args.clear else entries()
    for entry in found:
        print(f"{entry.size / 1e6:10.1f} MB  {entry.model or '(unfinished write)':12s} "
              f"{entry.path.name}")
    total = sum(entry.size for entry in found)
    verb = "deleted from" if args.clear else "in"
    print(f"{len(found)} files, {total / 1e6:.1f} MB {verb} {cache_dir()}")
    return 0


def _print_table(table: Any, args: argparse.Namespace, title: str) -> None:
    measure = args.measure or "the model's own score"
    if args.json:
        payload = {"model": args.model, "measure": measure, **table.attrs,
                   "results": table.to_dict(orient="records")}
        print(json.dumps(payload, ensure_ascii=False, indent=2, default=str))
        return
    if "because_you_like" in table.columns:
        table = table.assign(because_you_like=table["because_you_like"].map(", ".join))
    print(f"{title} — model {args.model}, {measure}:")
    print(table.to_string(index=False, float_format=lambda x: f"{x:.3f}"))


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean the input was wrong (imported lazily with their modules)."""
    from lastfm_rec.data.hetrec import DataError
    from lastfm_rec.data.sheets import RecSheetError

    return DataError, RecSheetError, KeyError, ValueError


def _show_warning(message: Warning | str, category: type[Warning], filename: str,
                  lineno: int, file: Any = None, line: str | None = None) -> None:
    """Warnings as one ``warning:`` line on stderr, without the source location."""
    print(f"warning: {message}", file=sys.stderr, flush=True)


@contextmanager
def _log_records_on_stderr() -> Iterator[None]:
    """Print the package's log records (``INFO`` and above) on stderr, one plain line each."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    package = logging.getLogger("lastfm_rec")
    level = package.level
    package.addHandler(handler)
    package.setLevel(logging.INFO)
    try:
        yield
    finally:
        package.removeHandler(handler)
        package.setLevel(level)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status (130 after Ctrl-C, with one line)."""
    try:
        with warnings.catch_warnings(), _log_records_on_stderr():
            warnings.showwarning = _show_warning
            return _run(argv)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _run(argv: Sequence[str] | None) -> int:
    """Parse and run; user mistakes become one ``error:`` line and exit status 2."""
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except _user_errors() as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        print(f"error: {message}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
