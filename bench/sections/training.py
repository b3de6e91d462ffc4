"""Section 1, training speed: ``bench/bench_training.py`` as one measured subprocess.

The original per-step loop (reference), the package's gradient path and the ALS solver on
the real data (k = 10, ``TRAINING_STEPS`` steps): steps/s, time to reach the reference's
final loss, ratios to the reference (one run, so the ratios compare like with like).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from bench.report import table
from bench.runner import ROOT, ChildFailed, Runner

TRAINING_STEPS = 2000


def measure(runner: Runner, args: argparse.Namespace) -> dict:
    """Run ``bench_training.py`` and keep, per method, its median time and its speed-ups."""
    out_path = runner.workdir / "bench_training.json"
    cmd = [sys.executable, str(ROOT / "bench" / "bench_training.py"),
           "--iterations", str(TRAINING_STEPS), "--repeats", str(args.repeats),
           "--out", str(out_path), "--data-dir", str(args.data_dir)]
    print(f"  bench_training.py: {TRAINING_STEPS} steps, {args.repeats} repeat(s) ...",
          flush=True)
    measured = runner.run(cmd, "training")
    report = json.loads(out_path.read_text())
    if report["model"]["embedding_dim"] != 10:
        raise ChildFailed(f"bench_training ran embedding_dim {report['model']['embedding_dim']}")
    rows = report["results"]
    ref = rows[0]
    methods = []
    for row in rows:
        to_ref = row.get("seconds_to_reference_loss")
        if to_ref is None and row["final_total_loss"] <= ref["final_total_loss"] * (1 + 1e-6):
            to_ref = row["seconds_median"]  # same iterates: reaches it with its last step
        methods.append({
            "method": row["method"], "seconds": row["seconds_median"],
            "seconds_all": row["seconds_all"], "steps": row["steps"],
            "steps_per_s": row["steps_per_s"], "final_total_loss": row["final_total_loss"],
            "seconds_to_reference_loss": to_ref,
            "speedup_vs_reference": ref["seconds_median"] / row["seconds_median"],
            "speedup_to_reference_loss": (ref["seconds_median"] / to_ref) if to_ref else None,
            "sweeps_to_reference_loss": row.get("sweeps_to_reference_loss"),
        })
    return {"process": measured, "data": report["data"], "model": report["model"],
            "repeats": report["repeats"], "methods": methods,
            "build_model_seconds_median": report["build_model_seconds_median"],
            "environment": report["environment"]}


def render(t: dict) -> str:
    """The training table and a line on ALS and the whole process."""
    rows = [[m["method"], m["seconds"], m["steps_per_s"], m["final_total_loss"],
             m["speedup_vs_reference"], m["seconds_to_reference_loss"],
             m["speedup_to_reference_loss"]] for m in t["methods"]]
    d = t["data"]
    text = table(f"1. Training speed (real data: {d['ratings']} ratings, {d['n_users']} users x "
                 f"{d['n_artists']} artists; k=10, {TRAINING_STEPS} steps; medians of "
                 f"{t['repeats']})",
                 ["method", "seconds", "steps/s", "final loss", "x ref", "s to ref loss",
                  "x ref (to loss)"], rows)
    als = t["methods"][-1]
    return (text + f"\n(ALS steps are sweeps; it reaches the reference's final loss after "
            f"{als['sweeps_to_reference_loss']} sweep(s). Whole bench_training process: "
            f"{t['process']['wall_seconds']:.0f} s, peak RSS "
            f"{t['process']['peak_rss_mb']:.0f} MB)")


def memory(t: dict) -> list[list[Any]]:
    """The one process's peak RSS."""
    return [["training: bench_training.py (all methods)", t["process"]["peak_rss_mb"]]]
