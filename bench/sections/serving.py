"""Section 3, serving: the command-line tool's path from a rec sheet to recommendations.

``serving.load_session`` (cold: fit + cache; warm: from the cache), the latency of one
``recommend_for_likes`` for a new user from ``rec_sheets/example_artists.csv`` with the
model loaded, batched ``recommend`` for all users at once (users/s), and the wall time of
``lastfm-rec --help`` and of a cached ``lastfm-rec recommend`` (subprocesses), for the
serving model and for each of :data:`CLI_MODELS` (the default model and the largest cache
file), so one run gives both and their ratio.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
from pathlib import Path
from typing import Any

from bench.report import table
from bench.runner import ROOT, Runner

SHEET = ROOT / "rec_sheets" / "example_artists.csv"
LATENCY_CALLS = 50
HELP_RUNS = 5
CLI_RUNS = 3
#: Models whose cached ``lastfm-rec recommend`` is timed besides the serving model's: the
#: default and the hybrid (its cache file is the largest, 0.2 GB).
CLI_MODELS = ("als", "hybrid")


def cli_command() -> list[str]:
    """The ``lastfm-rec`` command of this interpreter's environment."""
    script = Path(sys.executable).parent / "lastfm-rec"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from lastfm_rec.serving.cli import main; "
                                  "sys.exit(main())"]


def _wall_times(runs: list[dict]) -> dict:
    return {"runs": len(runs),
            "seconds_median": statistics.median(r["wall_seconds"] for r in runs),
            "seconds_all": [r["wall_seconds"] for r in runs],
            "peak_rss_mb": max(r["peak_rss_mb"] for r in runs)}


def measure(runner: Runner, args: argparse.Namespace) -> dict:
    """Cold and warm sessions (two workers), then the command line's wall times."""
    params = {"data_dir": str(args.data_dir), "model": args.serving_model, "sheet": str(SHEET),
              "calls": LATENCY_CALLS if not args.quick else 20,
              "batch_repeats": max(3, args.repeats)}
    print(f"  load_session({args.serving_model!r}) with an empty cache (fit + save) ...",
          flush=True)
    # The notebooks section's kernels share this cache (notebook 04 caches models): empty it,
    # or the "cold" session would read a model the notebooks fitted.
    shutil.rmtree(runner.env["LASTFM_REC_CACHE"], ignore_errors=True)
    cold = runner.work("serving_cold", params, "serving-cold")
    print(f"  recommend latency ({params['calls']} calls) and batched throughput ...",
          flush=True)
    warm = runner.work("serving", params, "serving")
    cli = cli_command()
    print(f"  lastfm-rec --help x{HELP_RUNS}, lastfm-rec recommend x{CLI_RUNS} ...", flush=True)
    helps = [runner.run([*cli, "--help"], f"cli-help-{i + 1}") for i in range(HELP_RUNS)]
    cli_runs = CLI_RUNS if not args.quick else 1
    recs = _wall_times([runner.run(_recommend(cli, args, args.serving_model),
                                   f"cli-recommend-{i + 1}") for i in range(cli_runs)])
    by_model = {args.serving_model: recs}
    for model in (m for m in CLI_MODELS if m != args.serving_model):
        print(f"  lastfm-rec recommend --model {model}: once to fill the cache, then "
              f"x{cli_runs} ...", flush=True)
        fill = runner.run(_recommend(cli, args, model), f"cli-recommend-{model}-fill")
        by_model[model] = {**_wall_times([runner.run(_recommend(cli, args, model),
                                                     f"cli-recommend-{model}-{i + 1}")
                                          for i in range(cli_runs)]),
                           "fill_seconds": fill["wall_seconds"]}
    return {"model": args.serving_model, "sheet": str(SHEET.relative_to(ROOT)), "cold": cold,
            "warm": warm, "cli_help": _wall_times(helps), "cli_recommend": recs,
            "cli_recommend_models": {m: by_model[m] for m in CLI_MODELS}}


def _recommend(cli: list[str], args: argparse.Namespace, model: str) -> list[str]:
    """The ``lastfm-rec recommend`` command for the example sheet with ``model``."""
    return [*cli, "recommend", "--likes", str(SHEET), "--model", model, "--data-dir",
            str(args.data_dir)]


def _other_models(s: dict) -> dict:
    """The cached command's wall times for the models of :data:`CLI_MODELS` that are not the
    serving model (none in results written before they were measured)."""
    return {m: times for m, times in s.get("cli_recommend_models", {}).items()
            if m != s["model"]}


def render(s: dict) -> str:
    """One row per measure, its value with units, and the peak RSS of its process."""
    w, c = s["warm"], s["cold"]
    rows = [
        ["load_session, empty cache (fit + save)", f"{c['cold_session_seconds']:.2f} s",
         c["peak_rss_mb"]],
        ["load_session, cached model", f"{w['session_load_seconds']:.2f} s", None],
        ["read rec sheet", f"{w['sheet_read_ms']:.2f} ms", None],
        [f"recommend_for_likes, new user ({w['liked']} likes; median of {w['calls']})",
         f"{w['latency_ms_median']:.1f} ms (p90 {w['latency_ms_p90']:.1f})", None],
        ["  of which model.recommend(recalculate_user=True)",
         f"{w['model_recommend_ms_median']:.1f} ms", None],
        [f"batched recommend, all {w['batch_users']} users (N=10)",
         f"{w['batch_users_per_s']:,.0f} users/s ({w['batch_seconds_median']:.2f} s)",
         w["peak_rss_mb"]],
        [f"lastfm-rec --help (median of {s['cli_help']['runs']})",
         f"{s['cli_help']['seconds_median']:.2f} s", s["cli_help"]["peak_rss_mb"]],
        [f"lastfm-rec recommend, cached (median of {s['cli_recommend']['runs']})",
         f"{s['cli_recommend']['seconds_median']:.2f} s", s["cli_recommend"]["peak_rss_mb"]],
    ]
    own = s["cli_recommend"]["seconds_median"]
    rows += [[f"lastfm-rec recommend --model {model}, cached (median of {times['runs']})",
              f"{times['seconds_median']:.2f} s ({times['seconds_median'] / own:.2f}x "
              f"{s['model']})", times["peak_rss_mb"]]
             for model, times in _other_models(s).items()]
    return table(f"3. Serving (model {s['model']}, sheet {s['sheet']})",
                 ["measure", "value", "peak RSS MB"], rows)


def memory(s: dict) -> list[list[Any]]:
    """The two session processes and the commands (one cached ``recommend`` per model)."""
    return [["serving: load_session with fit (cold cache)", s["cold"]["peak_rss_mb"]],
            ["serving: cached session + latency + batched recommend", s["warm"]["peak_rss_mb"]],
            ["lastfm-rec --help", s["cli_help"]["peak_rss_mb"]],
            ["lastfm-rec recommend (cached)", s["cli_recommend"]["peak_rss_mb"]],
            *[[f"lastfm-rec recommend --model {model} (cached)", times["peak_rss_mb"]]
              for model, times in _other_models(s).items()]]
