"""Section 5, growth: each step of the study on seeded synthetic data of growing size.

Synthetic data (``lastfm_rec.data.synthetic``) at 1x and 10x the real users and artists
(100x with ``--with-100x``: 189,200 users, 1.76 M artists, ~9.3 M rows; 1x only with
``--quick``). Per size, each step in its own subprocess: generate; ``load_dataset`` +
``prepare``; fit of ``models.create("als")`` (implicit feedback, its default parameters:
recorded in the JSON) on the play counts of the prepared rows; the original's objective
(``bench.workers.CF_ARGS``: k = 10, λ_r = 0.2, λ_g = 0.5, no hold-out) with
``solver="als"`` for ``CF_SWEEPS`` = 5 sweeps (on the real data the loss after 5 sweeps is
within 0.3% of where 15 end, and sweep 1 already passes the 2000-step gradient reference);
batched ``recommend`` (N = 10) for a fixed sample of ``SAMPLE_USERS`` users. Each measure's
growth is the exponent of a least-squares line through (log size factor, log measure); the
plot goes to ``reports/bench_growth.png`` (``--plot``).

Memory bounds of the steps (N users, M artists, R listening rows, T tag rows, k factors;
measured peaks in the JSON):

* generate: O(R + T) int64 arrays; files formatted in 1 M-row chunks (100x: < 2 GB).
* load + prepare: every file's bytes plus a few byte-sized masks and its parsed frame,
  then several O(R + T) copies in ``prepare`` (tags joined, grouped, sorted).
* implicit ALS fit: the CSR and its transpose, O(R), plus factors O((N + M) k) float32
  (k = 256 by default: 1.8 GB of artist factors at 100x).
* CF ALS: four O(R) CSRs (ratings, pattern, transposes) in float64, the O(R) TF sparse
  tensors, and per half-step a stack of k x k Gram matrices, O(max(N, M) k^2) float64
  (100x: 1.76 M x 10 x 10 x 8 B = 1.4 GB, about twice while solving).
* recommend: the fitted model (factors O((N + M) k) float32 and its O(R) training CSR),
  and ``Recommender.recommend``'s dense float64 score block of batch x M, held about 3 times
  at once (the scores, their negated copy and the int64 ``argpartition`` result). The
  library bounds the batch to ``lastfm_rec.models.base.users_per_batch(M)`` users
  (``BLOCK_ENTRIES // M``, 2^25 entries = 256 MiB: 256 users at 1x, 191 at 10x, 19 at
  100x), so the block costs at most ~0.8 GB. Library versions without that bound scored
  256 users whatever M (10.8 GB at 100x); with them the bench itself splits the sample into
  calls whose block fits in ``BLOCK_BYTES`` (``bench.workers.users_per_call``).
"""

from __future__ import annotations

import argparse
import math
import shutil
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from bench.report import table
from bench.runner import Runner
from bench.workers import BLOCK_BYTES, CF_ARGS

CF_SWEEPS = 5
SAMPLE_USERS = 256
SEED = 0
#: The worker steps of each size, in the order they run.
STEPS = ("generate", "load", "fit_implicit", "fit_cf", "recommend")


class Measure(NamedTuple):
    """One growth measure: its name, unit, and how to read it from a size's results."""

    name: str
    unit: str
    get: Callable[[dict], float]


def _above_imports(step: str) -> Callable[[dict], float]:
    return lambda s: s[step]["peak_rss_mb"] - s[step]["imports_peak_mb"]


#: Every measure of the growth table and plot, in their order.
MEASURES = (
    Measure("generate time", "s", lambda s: s["generate"]["seconds"]),
    Measure("load_dataset time", "s", lambda s: s["load"]["load_seconds"]),
    Measure("prepare time", "s", lambda s: s["load"]["prepare_seconds"]),
    Measure("implicit ALS fit time", "s", lambda s: s["fit_implicit"]["seconds"]),
    Measure("CF build_model time", "s", lambda s: s["fit_cf"]["build_seconds"]),
    Measure(f"CF ALS fit time ({CF_SWEEPS} sweeps)", "s", lambda s: s["fit_cf"]["seconds"]),
    Measure("recommend time per user", "ms", lambda s: s["recommend"]["ms_per_user"]),
    Measure("recommend throughput", "users/s", lambda s: s["recommend"]["users_per_s"]),
    Measure("generate peak RSS", "MB", lambda s: s["generate"]["peak_rss_mb"]),
    Measure("load + prepare peak RSS", "MB", lambda s: s["load"]["peak_rss_mb"]),
    Measure("implicit ALS fit peak RSS", "MB", lambda s: s["fit_implicit"]["peak_rss_mb"]),
    Measure("CF ALS fit peak RSS", "MB", lambda s: s["fit_cf"]["peak_rss_mb"]),
    Measure("recommend peak RSS", "MB", lambda s: s["recommend"]["peak_rss_mb"]),
    *(Measure(f"{label} RSS above imports", "MB above imports", _above_imports(step))
      for step, label in (("generate", "generate"), ("load", "load + prepare"),
                          ("fit_implicit", "implicit ALS fit"), ("fit_cf", "CF ALS fit"),
                          ("recommend", "recommend"))),
)


def measure_size(runner: Runner, factor: int, repeats: int, keep: bool) -> dict:
    """Every step at ``factor`` times the real size; the scratch files go unless ``keep``."""
    folder = runner.workdir / f"synthetic-{factor}x"
    prepared = str(runner.workdir / f"prepared-{factor}x.npz")
    model = str(runner.workdir / f"als-{factor}x.npz")
    print(f"  {factor}x: generate ...", flush=True)
    size: dict[str, Any] = {"factor": factor, "repeats": repeats}
    size["generate"] = runner.work("generate", {"factor": factor, "dir": str(folder),
                                                "seed": SEED}, f"generate-{factor}x")
    print(f"  {factor}x: load + prepare x{repeats} ...", flush=True)
    size["load"] = runner.repeat(
        "load", lambda i: {"dir": str(folder), "prepared": prepared, "save": i == 0},
        repeats, f"load-{factor}x")
    print(f"  {factor}x: fit implicit ALS x{repeats} ...", flush=True)
    size["fit_implicit"] = runner.repeat(
        "fit_implicit", lambda i: {"prepared": prepared, "model": model, "save": i == 0},
        repeats, f"fit-implicit-{factor}x")
    print(f"  {factor}x: fit CF objective, ALS solver, {CF_SWEEPS} sweeps x{repeats} ...",
          flush=True)
    size["fit_cf"] = runner.repeat(
        "fit_cf", lambda _i: {"prepared": prepared, "sweeps": CF_SWEEPS},
        repeats, f"fit-cf-{factor}x")
    print(f"  {factor}x: batched recommend for {SAMPLE_USERS} users ...", flush=True)
    size["recommend"] = runner.work(
        "recommend", {"prepared": prepared, "model": model, "sample": SAMPLE_USERS,
                      "seed": SEED, "repeats": repeats}, f"recommend-{factor}x")
    if not keep:
        shutil.rmtree(folder, ignore_errors=True)
        for path in (prepared, model):
            Path(path).unlink(missing_ok=True)
    return size


def measure(runner: Runner, args: argparse.Namespace) -> dict:
    """Every size, the growth exponents, and the plot (written to ``args.plot``)."""
    factors = [1] if args.quick else [1, 10]
    if args.with_100x:
        factors.append(100)
    sizes = [measure_size(runner, factor, 1 if factor >= 100 else args.repeats, args.keep)
             for factor in factors]
    growth = {"sizes": sizes, "measures": growth_measures(sizes),
              "cf_sweeps": CF_SWEEPS, "cf_args": CF_ARGS, "sample_users": SAMPLE_USERS,
              "block_bytes": BLOCK_BYTES}
    plot_growth(growth, args.plot)
    growth["plot"] = str(args.plot)
    return growth


def exponent(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Slope of the least-squares line through (log x, log y); None with under two
    positive ys."""
    pairs = [(math.log(x), math.log(y)) for x, y in zip(xs, ys, strict=True) if y > 0]
    if len(pairs) < 2:
        return None
    mx = statistics.fmean(p[0] for p in pairs)
    my = statistics.fmean(p[1] for p in pairs)
    sxx = sum((p[0] - mx) ** 2 for p in pairs)
    return sum((p[0] - mx) * (p[1] - my) for p in pairs) / sxx


def growth_measures(sizes: list[dict]) -> list[dict]:
    """Each of :data:`MEASURES` at every size, with its growth exponent."""
    factors = [s["factor"] for s in sizes]
    measures = []
    for m in MEASURES:
        values = [float(m.get(s)) for s in sizes]
        measures.append({"measure": m.name, "unit": m.unit, "factors": factors,
                         "values": values, "exponent": exponent(factors, values)})
    return measures


def plot_growth(growth: dict, path: Path) -> None:
    """Three log-log panels (seconds, peak RSS, users/s) of the measures against size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    measures = growth["measures"]
    panels = [(("s",), "seconds"),
              (("MB", "MB above imports"), "peak RSS (MB; dashed: above the imports)"),
              (("users/s",), "recommend (users/s)")]
    fig, axes = plt.subplots(1, 3, figsize=(18, 5.6))
    for ax, (units, label) in zip(axes, panels, strict=True):
        colours: dict[str, Any] = {}
        for m in measures:
            if m["unit"] not in units:
                continue
            slope = m["exponent"]
            tag = f" (x^{slope:.2f})" if slope is not None else ""
            step = m["measure"].split(" RSS")[0].replace(" peak", "")
            dashed = m["unit"] == "MB above imports"
            line, = ax.plot(m["factors"], m["values"], marker="o", ls="--" if dashed else "-",
                            color=colours.get(step), label=m["measure"] + tag)
            colours.setdefault(step, line.get_color())
        ax.set(xscale="log", yscale="log", xlabel="size (x the real users and artists)",
               ylabel=label)
        factors = [s["factor"] for s in growth["sizes"]]
        ax.set_xticks(factors, [f"{f}x" for f in factors])
        ax.minorticks_off()
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Growth on synthetic HetRec data (log-log; exponent of a least-squares fit)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def render(g: dict) -> str:
    """The sizes table, then the measures with their growth exponents."""
    sizes = g["sizes"]
    rows = [[f"{s['factor']}x", s["load"]["n_users"], s["load"]["n_artists"], s["load"]["rows"],
             s["load"]["tag_rows"], s["generate"]["file_mb"], s["recommend"]["users_per_call"],
             s["repeats"]] for s in sizes]
    lines = [table("5. Growth on synthetic data (sizes after prepare)",
                   ["size", "users", "artists", "rows", "tag rows", "files MB",
                    "rec. batch", "repeats"], rows)]
    header = ["measure", "unit", *[f"{s['factor']}x" for s in sizes], "exponent"]
    rows = [[m["measure"], m["unit"], *m["values"], m["exponent"]] for m in g["measures"]]
    lines.append(table("   measures (medians) and growth exponent (log-log least squares "
                       "over the sizes)", header, rows))
    return "\n\n".join(lines)


def memory(g: dict) -> list[list[Any]]:
    """Each step's process at each size."""
    return [[f"growth {size['factor']}x: {step}", size[step]["peak_rss_mb"]]
            for size in g["sizes"] for step in STEPS]
