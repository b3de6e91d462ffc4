"""Where each figure of README.md and docs/*.md comes from (read by ``tests/test_docs.py``).

A figure's source is a result a notebook records (:func:`recorded`: the outputs of the
committed ``notebooks/*.ipynb``, :func:`lastfm_rec.reports.read_results`), a measurement of
the benchmark run committed as ``docs/bench.json`` (:func:`measured`), or a constant the
package keeps at its printed precision (published figures, validation scores, tolerances).
Tables are described cell by cell (:data:`TABLES`), running text by a pattern that locates
each figure in its context (:data:`PROSE`). When a page gains, loses or rewords a figure,
change its entry here with it.
"""

from __future__ import annotations

import ast
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from lastfm_rec.reports import TOLERANCES, figure_kind, read_results

ROOT = Path(__file__).resolve().parent.parent
BENCH_JSON = ROOT / "docs" / "bench.json"
#: A printed number: an integer with or without thousands separators, decimals, an exponent.
NUMBER = r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:e-?\d+)?"


# =========================================================================== sources


@cache
def notebook_results(number: str) -> dict[str, Any]:
    """The results notebook ``number`` (``"05"``) records in its committed outputs."""
    import nbformat

    path, = (ROOT / "notebooks").glob(f"{number}_*.ipynb")
    return read_results(nbformat.read(path, as_version=4))


@cache
def bench_report() -> dict[str, Any]:
    """``docs/bench.json``: the committed copy of a ``make bench`` run's report."""
    if not BENCH_JSON.is_file():
        pytest.fail("docs/bench.json is missing: copy reports/bench.json of a `make bench` run "
                    "there and update docs/performance.md from it (docs/development.md)")
    return json.loads(BENCH_JSON.read_text(encoding="utf-8"))


@cache
def bench_training_constant(name: str) -> Any:
    """A literal constant of ``bench/bench_training.py``, read without importing TensorFlow."""
    tree = ast.parse((ROOT / "bench" / "bench_training.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f"bench/bench_training.py defines no {name}")


Key = str | int | tuple[str, Any]


def dig(value: Any, keys: tuple[Key, ...], where: str) -> Any:
    """``value[k1][k2]...``; a ``(field, wanted)`` key picks the list item whose ``field``
    equals ``wanted``."""
    for key in keys:
        try:
            if isinstance(key, tuple):
                field, wanted = key
                value = next(item for item in value if item[field] == wanted)
            else:
                value = value[key]
        except (KeyError, IndexError, TypeError, StopIteration):
            raise AssertionError(f"{where} has no {key!r} (path {keys!r})") from None
    return value


def dotted(keys: tuple[Key, ...]) -> str:
    """The dotted path :func:`lastfm_rec.reports.figure_kind` reads (``a.b[0]``)."""
    out = ""
    for key in keys:
        out += f"[{key}]" if isinstance(key, int) else f".{key}"
    return out.lstrip(".")


@dataclass(frozen=True)
class Source:
    """Where a figure comes from: a name for messages, its value, and how far that value may
    move between machines (``slack`` of the value, 0 for figures that never move)."""

    name: str
    read: Callable[[], Any]
    slack: Callable[[float], float] = lambda value: 0.0
    #: Kept at the printed precision, so printed exactly (no rounding allowed).
    exact: bool = False


def recorded(notebook: str, *keys: Key) -> Source:
    """A figure notebook ``notebook`` records, with the tolerance of its kind."""
    tolerance = TOLERANCES[figure_kind(dotted(keys))]
    return Source(f"notebook {notebook} records {dotted(keys)}",
                  lambda: dig(notebook_results(notebook), keys, f"notebook {notebook}"),
                  lambda value: max(tolerance.rel * abs(value), tolerance.abs))


def measured(*keys: Key) -> Source:
    """A figure of ``docs/bench.json`` (printed as measured: no tolerance)."""
    return Source(f"docs/bench.json {keys!r}", lambda: dig(bench_report(), keys, "bench.json"))


def constant(name: str, value: Callable[[], Any], exact: bool = False) -> Source:
    """A constant the package keeps; ``exact`` when it is kept as printed."""
    return Source(name, value, exact=exact)


def scaled(source: Source, factor: float, unit: str) -> Source:
    """``source`` times ``factor`` (a share as a percentage, MB as GB ...)."""
    return Source(f"{source.name} {unit}", lambda: source.read() * factor,
                  lambda value: source.slack(value / factor) * factor)


def ratio(a: Source, b: Source) -> Source:
    """``a / b``, its slack from both parts' relative slacks."""
    def slack(q: float) -> float:
        va, vb = a.read(), b.read()
        return abs(q) * (a.slack(va) / abs(va) + b.slack(vb) / abs(vb))
    return Source(f"({a.name}) / ({b.name})", lambda: a.read() / b.read(), slack)


def percent_apart(a: Source, b: Source) -> Source:
    """``|a / b - 1|`` as a percentage: how much higher or lower ``a`` is than ``b``."""
    q = ratio(a, b)
    return Source(f"|{q.name} - 1| in %", lambda: 100 * abs(q.read() - 1),
                  lambda _: 100 * q.slack(q.read()))


def growth_exponent(step: str, field: str) -> Source:
    """Slope of log time against log size between 1x and 10x (what bench.json's
    ``growth.measures[...].exponent`` holds for two sizes)."""
    small = measured("growth", "sizes", ("factor", 1), step, field)
    large = measured("growth", "sizes", ("factor", 10), step, field)
    return Source(f"log10 of {large.name} / {small.name}",
                  lambda: math.log10(large.read() / small.read()))


# =========================================================================== the figures


@dataclass(frozen=True)
class Table:
    """The figure table under heading ``section`` of ``file``: ``rows`` maps each row label
    (markup dropped) and ``columns`` each column header to a key; ``source(row, column)``
    names a cell's source, ``None`` where the cell must stay empty."""

    file: str
    section: str
    rows: Mapping[str, Any]
    columns: Mapping[str, Any]
    source: Callable[[Any, Any], Source | None]


@dataclass(frozen=True)
class Prose:
    """A figure in running text: group 1 of ``pattern`` (``{n}`` stands for a number), on
    whitespace-collapsed text, at least once."""

    file: str
    pattern: str
    source: Source

    @property
    def regex(self) -> re.Pattern[str]:
        return re.compile(self.pattern.replace("{n}", f"({NUMBER})"))


def pick(columns: Mapping[str, str], *names: str) -> dict[str, str]:
    """The entries of ``columns`` named, in that order."""
    return {name: columns[name] for name in names}


HOLDOUT_METRICS = {"NDCG@10": "ndcg@10", "P@10": "precision@10", "R@10": "recall@10",
                   "MAP@10": "map@10", "NDCG@20": "ndcg@20", "P@20": "precision@20",
                   "R@20": "recall@20", "MAP@20": "map@20", "coverage@10": "coverage@10",
                   "listeners of recs": "popularity@10"}
LITERATURE_METRICS = {"NDCG@10": "ndcg@10", "sd": "ndcg@10 sd", "P@10": "precision@10",
                      "R@10": "recall@10", "NDCG@20": "ndcg@20", "P@20": "precision@20",
                      "R@20": "recall@20"}
LITERATURE_ROWS = {"hybrid (play counts + tags + friends)": "hybrid (all signals)",
                   "hybrid (0/1 pairs + friends)": "hybrid (0/1 + friends)",
                   "ease (0/1)": "ease", "als (0/1 settings)": "als",
                   "item-knn (0/1)": "item-knn", "popularity": "popularity"}
PUBLISHED_ROWS = {"SocialLGN (Liao et al., Inf. Sci. 2022)": "SocialLGN",
                  "MHCN (Yu et al., WWW 2021)": "MHCN",
                  "LightGCN (in SocialLGN's paper)": "LightGCN"}


def published(name: str, metric: str) -> Source | None:
    """A published figure (``lastfm_rec.evaluation.literature.PUBLISHED``; NDCG@10 as
    notebook 5 records it), ``None`` where the paper gives none."""
    from lastfm_rec.evaluation.literature import PUBLISHED

    if metric == "ndcg@10":
        return recorded("06", "published_ndcg10", name)
    if metric not in PUBLISHED[name]:
        return None
    return constant(f"literature.PUBLISHED[{name!r}][{metric!r}]",
                    lambda: PUBLISHED[name][metric], exact=True)


def literature_cell(row: str, metric: str) -> Source | None:
    if row in PUBLISHED_ROWS.values():
        return None if metric == "ndcg@10 sd" else published(row, metric)
    return recorded("06", "literature", row, metric)


GRAPH_ROWS = {"lightgcn": "lightgcn", "social-lightgcn (SocialLGN)": "social-lightgcn",
              "hybrid (0/1 pairs + friends), same split": "hybrid"}
GRAPH_COLUMNS = {"NDCG@10, epoch chosen on validation": "ndcg@10",
                 "epoch": "validation_epoch",
                 "NDCG@10 at the best test epoch": "ndcg@10 at test epoch",
                 "best test epoch": "test_epoch", "published (best test epoch)": "published",
                 "fit seconds": "fit_seconds"}


def graph_cell(row: str, column: str) -> Source | None:
    """A cell of the graph-model table: notebook 8's runs, its hybrid on the same split,
    the published figures."""
    from lastfm_rec.evaluation.literature import PUBLISHED_NAMES

    if row == "hybrid":
        if column not in ("ndcg@10", "fit_seconds"):
            return None
        return recorded("08", "graph_references", row, column)
    if column == "published":
        return published(PUBLISHED_NAMES[row], "ndcg@10")
    return recorded("08", "graph_runs", row, column)


def tuned_validation(inputs: str, model: str) -> Source:
    from lastfm_rec.models import TUNED_VALIDATION

    return constant(f"models.TUNED_VALIDATION[{inputs!r}][{model!r}]",
                    lambda: TUNED_VALIDATION[inputs][model], exact=True)


def tolerance_cell(kind: str, field: str | None) -> Source | None:
    if field is None:  # the column that describes the kind
        return None
    return constant(f"reports.TOLERANCES[{kind!r}].{field}",
                    lambda: getattr(TOLERANCES[kind], field), exact=True)


NOTEBOOKS = {"01 data analysis": "01_data_analysis.ipynb",
             "02 preprocessing": "02_preprocessing.ipynb", "03 training": "03_training.ipynb",
             "04 recommendations": "04_recommendations.ipynb",
             "05 ranking evaluation": "05_ranking_evaluation.ipynb",
             "06 literature protocol": "06_literature_protocol.ipynb",
             "07 scaling out (make run-spark, not part of make run)": "07_scaling_out.ipynb"}
GROWTH_TIME = {"load": "seconds", "fit_implicit": "seconds", "fit_cf": "seconds",
               "recommend": "ms_per_user"}


def growth_cell(step: str, column: tuple[int | None, str]) -> Source | None:
    factor, what = column
    if what == "exponent":
        return growth_exponent(step, GROWTH_TIME[step])
    if what == "peak" and step == "recommend":
        return None
    field = GROWTH_TIME[step] if what == "time" else "peak_rss_mb"
    return measured("growth", "sizes", ("factor", factor), step, field)


SPARK_ROWS = {"spark-als, real data (the package's holdout)": ("real", "spark-als"),
              "als (implicit), real data (the package's holdout)": ("real", "als (implicit)"),
              "spark-als, synthetic 1×": ("1x", "spark-als"),
              "als (implicit), synthetic 1×": ("1x", "als (implicit)"),
              "spark-als, synthetic 10×": ("10x", "spark-als"),
              "als (implicit), synthetic 10×": ("10x", "als (implicit)")}


def spark_cell(row: tuple[str, str], column: str) -> Source:
    data, engine = row
    if data == "real":
        if column == "rows":
            return recorded("01", "shapes", "user_artists", 0)
        return recorded("07", f"real_{column}", engine)
    return recorded("07", column, f"{data} {engine}")


SERVING = {
    "loading the cached model": ("warm", "session_load_seconds"),
    "one recommendation for a new user, model loaded (median)": ("warm", "latency_ms_median"),
    "recommendations for every user in one batched call": ("warm", "batch_seconds_median"),
    "the same, in users per second": ("warm", "batch_users_per_s"),
    "lastfm-rec recommend, cached, end to end": ("cli_recommend", "seconds_median"),
    "the same with --model hybrid": ("cli_recommend_models", "hybrid", "seconds_median"),
    "lastfm-rec --help": ("cli_help", "seconds_median"),
    "peak RSS of a cached lastfm-rec recommend": ("cli_recommend", "peak_rss_mb"),
}
LOSSES = {"observed": "observed_loss", "regularisation": "regularization_loss",
          "gravity": "gravity_loss", "test": "test_error_observed"}


def loss_cell(term: str, column: str) -> Source:
    if column == "package":
        return recorded("03", "model1", term)
    return constant(f"bench_training.NOTEBOOK_PRINTED[{term!r}]",
                    lambda: bench_training_constant("NOTEBOOK_PRINTED")[term])


COLD_LABEL = "cold_weight 0.5"


def cold_cell(row: tuple[str, str], column: str) -> Source | None:
    """A cell of the cold-artist table: notebook 5's ``cold`` or notebook 6's runs."""
    notebook, label = row
    if notebook == "05":
        field = {"ndcg": "ndcg@10", "rows": "cold rows", "recovered": "recovered"}[column]
        return recorded("05", "cold", label, field)
    if column == "ndcg":
        return None if label == "item-knn" else recorded("06", "literature", label, "ndcg@10")
    field = {"rows": "cold_rows", "recovered": "cold_recovered@10"}[column]
    return recorded("06", "literature_cold", label, field)


TABLES = [
    Table("README.md", "Results",
          {"hybrid (EASE + ALS + tags + friends)": "hybrid", "als (tuned)": "als",
           "ease": "ease", "plain-als (implicit as commonly configured)": "plain-als",
           "popularity": "popularity"},
          pick(HOLDOUT_METRICS, "NDCG@10", "P@10", "R@10", "MAP@10", "coverage@10"),
          lambda model, metric: recorded("05", "test", model, metric)),
    Table("docs/results.md", "Ranking held-out listens",
          {"hybrid (EASE + ALS + tags + friends)": "hybrid",
           "als (tuned implicit ALS)": "als", "ease": "ease",
           "plain-als (64 factors, reg 0.05, 15 iterations, log1p)": "plain-als",
           "item-knn": "item-knn", "rp3beta": "rp3beta", "popularity": "popularity",
           "random": "random", "sgd-mf (the original's objective)": "sgd-mf"},
          HOLDOUT_METRICS, lambda model, metric: recorded("05", "test", model, metric)),
    Table("docs/results.md", "Artists nobody has played yet",
          {"per-user holdout: hybrid": ("05", "cold_weight 0"),
           "per-user holdout: hybrid + cold artists": ("05", COLD_LABEL),
           "papers' protocol: hybrid (all signals)": ("06", "hybrid (all signals)"),
           "papers' protocol: hybrid + cold artists (all signals)":
               ("06", "hybrid + cold artists (all signals)"),
           "papers' protocol: every other model": ("06", "item-knn")},
          {"NDCG@10": "ndcg", "test rows of such artists": "rows", "in a top 10": "recovered"},
          cold_cell),
    Table("docs/results.md", "New users",
          {"hybrid, fold-in": "hybrid", "als, fold-in": "als",
           "plain-als, fold-in": "plain-als", "item-knn": "item-knn",
           "popularity": "popularity", "sgd-mf, fold-in": "sgd-mf",
           "sgd-mf, the original's similar-users heuristic": "sgd-mf-similar-users"},
          pick(HOLDOUT_METRICS, "NDCG@10", "P@10", "R@10", "MAP@10", "listeners of recs"),
          lambda model, metric: recorded("05", "new_users", model, metric)),
    Table("docs/results.md", "Against the published social recommenders",
          {**LITERATURE_ROWS, **PUBLISHED_ROWS}, LITERATURE_METRICS, literature_cell),
    Table("docs/results.md", "Graph models, measured here", GRAPH_ROWS, GRAPH_COLUMNS,
          graph_cell),
    Table("docs/results.md", "Per split", LITERATURE_ROWS,
          {f"seed {seed}": i for i, seed in enumerate((0, 1, 2))},
          lambda model, i: recorded("06", "literature_per_seed", model, i)),
    Table("docs/results.md", "Which differences are real",
          {"als (tuned implicit ALS)": "als", "ease": "ease", "plain-als": "plain-als",
           "item-knn": "item-knn", "rp3beta": "rp3beta", "popularity": "popularity"},
          {"difference in NDCG@10": "difference", "interval from": "ci_low",
           "interval to": "ci_high"},
          lambda model, field: recorded("05", "significance", model, field)),
    Table("docs/results.md", "Ablation",
          {"ease (play counts, per-user holdout)": ("plays", "ease"),
           "als (play counts)": ("plays", "als"),
           "hybrid (play counts: EASE + ALS + tags + friends)": ("plays", "hybrid"),
           "als (0/1 pairs, the published protocol)": ("binary", "als"),
           "ease (0/1 pairs)": ("binary", "ease"),
           "hybrid (0/1 pairs + friends: EASE + ALS on 0/1 + RP3beta + friends' artists)":
               ("binary", "hybrid")},
          {"validation NDCG@10": None}, lambda row, _: tuned_validation(*row)),
    Table("docs/reproducibility.md", "Another CPU or BLAS kernel",
          {kind: kind for kind in TOLERANCES},
          {"what": None, "relative": "rel", "absolute": "abs"},
          tolerance_cell),
    Table("docs/original.md", "The TensorFlow model: reproducible and fast", LOSSES,
          {"package (seed 42)": "package", "original (printed)": "original"}, loss_cell),
    Table("docs/spark.md", "Measured", SPARK_ROWS,
          {"rows": "rows", "fit seconds": "fit_seconds", "peak MB": "peak_mb",
           "NDCG@10": "ndcg10"}, spark_cell),
    Table("docs/performance.md", "Training the original objective",
          {"the original loop (reference, kept in bench/bench_training.py)": 0,
           "CFModel.train (the hand-derived gradient in a compiled kernel: per step, one "
           "pass over each user's entries and one over the artists)": 1,
           'solver="als" (alternating least squares, 15 sweeps)': 2},
          {"seconds": "seconds", "steps/s": "steps_per_s", "final loss": "final_total_loss",
           "speed-up": "speedup_vs_reference"},
          lambda method, field: (None if (method, field) == (2, "steps_per_s")
                                 else measured("training", "methods", method, field))),
    Table("docs/performance.md", "The whole story", NOTEBOOKS, {"seconds": "seconds"},
          lambda name, field: measured("notebooks", "notebooks", ("notebook", name), field)),
    Table("docs/performance.md", "Serving", SERVING, {"value": None},
          lambda keys, _: measured("serving", *keys)),
    Table("docs/performance.md", "Growth",
          {"load + prepare": "load", "implicit ALS fit (the registry's als)": "fit_implicit",
           "the original's objective, ALS solver (five sweeps)": "fit_cf",
           "recommend, per user": "recommend"},
          {"1× time": (1, "time"), "1× peak RSS": (1, "peak"), "10× time": (10, "time"),
           "10× peak RSS": (10, "peak"), "exponent": (None, "exponent")},
          growth_cell),
]

BEST = recorded("05", "test", "hybrid", "ndcg@10")
ALS = recorded("05", "test", "als", "ndcg@10")
PLAIN_ALS = recorded("05", "test", "plain-als", "ndcg@10")
POPULARITY = recorded("05", "test", "popularity", "ndcg@10")
LIT_BEST = recorded("06", "literature", "hybrid (all signals)", "ndcg@10")
LIT_SD = recorded("06", "literature", "hybrid (all signals)", "ndcg@10 sd")
N_USERS = measured("serving", "cold", "n_users")
N_ARTISTS = recorded("01", "shapes", "artists", 0)
N_ROWS = recorded("01", "shapes", "user_artists", 0)
USERS_EVALUATED = recorded("05", "users_evaluated")
SEED = recorded("05", "seed")


def spark_vs_implicit(data: str) -> Source:
    if data == "real":
        return percent_apart(recorded("07", "real_ndcg10", "spark-als"),
                             recorded("07", "real_ndcg10", "als (implicit)"))
    return percent_apart(recorded("07", "ndcg10", f"{data} spark-als"),
                         recorded("07", "ndcg10", f"{data} als (implicit)"))


def recbole(name: str) -> Source:
    from lastfm_rec.evaluation.literature import RECBOLE_NDCG10

    return constant(f"literature.RECBOLE_NDCG10[{name!r}]", lambda: RECBOLE_NDCG10[name],
                    exact=True)


def top3_tags(artist: str) -> Source:
    return recorded("02", "top3_tags", artist)


HEADLINE = Prose("README.md", r"ranks them with \*\*NDCG@10 {n}\*\*", BEST)

PROSE = [
    Prose("docs/results.md", r"the gain, \+{n} NDCG@10", recorded(
        "05", "cold_significance", COLD_LABEL, "difference")),
    Prose("docs/results.md", r"NDCG@10 \(bootstrap interval \+{n} to", recorded(
        "05", "cold_significance", COLD_LABEL, "ci_low")),
    Prose("docs/results.md", r"interval \+[\d.]+ to \+{n}\), holds", recorded(
        "05", "cold_significance", COLD_LABEL, "ci_high")),
    Prose("README.md", r"data \({n} users", N_USERS),
    Prose("README.md", r"users, {n} artists", N_ARTISTS),
    Prose("README.md", r"artists, {n} user–artist play counts", N_ROWS),
    HEADLINE,
    Prose("README.md", r"{n}% above tuned", percent_apart(BEST, ALS)),
    Prose("README.md", r"tuned `implicit` ALS \({n}\)", ALS),
    Prose("README.md", r"{n}% above plainly", percent_apart(BEST, PLAIN_ALS)),
    Prose("README.md", r"configured ALS \({n}\)", PLAIN_ALS),
    Prose("README.md", r"and {n}× the popularity", ratio(BEST, POPULARITY)),
    Prose("README.md", r"popularity baseline \({n}\)", POPULARITY),
    Prose("README.md", r"\*\*{n} ± [\d.]+\*\*", LIT_BEST),
    Prose("README.md", r"\*\*[\d.]+ ± {n}\*\*", LIT_SD),
    Prose("README.md", r"against {n} for SocialLGN", recorded("06", "published_ndcg10",
                                                              "SocialLGN")),
    Prose("README.md", r"and {n} for MHCN", recorded("06", "published_ndcg10", "MHCN")),
    Prose("README.md", r"Held-out listens of {n} users", USERS_EVALUATED),
    Prose("docs/results.md", r"held out \(seed {n}\)", SEED),
    Prose("docs/results.md", r"and {n} users evaluated", USERS_EVALUATED),
    Prose("docs/results.md", r"baseline {n}×", ratio(BEST, POPULARITY)),
    Prose("docs/results.md", r"ALS by {n}%", percent_apart(BEST, PLAIN_ALS)),
    Prose("docs/results.md", r"NDCG@10 {n} \(hybrid\)", tuned_validation("plays", "hybrid")),
    Prose("docs/results.md", r"{n} \(als\)", tuned_validation("plays", "als")),
    Prose("docs/results.md", r"{n} \(ease\)", tuned_validation("plays", "ease")),
    Prose("docs/results.md", r"\({n} evaluated\)", recorded("05", "new_users_evaluated")),
    Prose("docs/results.md", r"all {n} rows", N_ROWS),
    Prose("docs/results.md", r"\({n} users with test rows", recorded("06", "literature_users")),
    *(Prose("docs/results.md", rf"{{n}} for {name}", recbole(name))
      for name in ("LightGCN", "MHCN", "SEPT", "NGCF")),
    Prose("docs/original.md", r"so {n}% of tag", scaled(recorded("02", "misaligned_share"),
                                                        100, "in %")),
    Prose("docs/original.md", r'Lady Gaga\'s top tags are "([^"]+)"', top3_tags("Lady Gaga")),
    Prose("docs/original.md", r'Kanye West\'s "([^"]+)"', top3_tags("Kanye West")),
    Prose("docs/original.md", r"rock: {n} assignments", recorded("01", "top_tags", "rock")),
    Prose("docs/original.md", r"{n} rows above", recorded("01", "rows_removed")),
    Prose("docs/original.md", r"rows above {n} plays", recorded("01", "weight_q99")),
    Prose("docs/original.md", r"trimmed, {n} are left", recorded("01", "trimmed_rows")),
    Prose("docs/original.md", r"\(NDCG@10 {n}, against",
          recorded("05", "test", "sgd-mf", "ndcg@10")),
    Prose("docs/original.md", r"against {n} for a random order",
          recorded("05", "test", "random", "ndcg@10")),
    Prose("docs/reproducibility.md", r"the split: {n};", SEED),
    *(Prose("docs/reproducibility.md", pattern, recorded("06", "literature_seeds", i))
      for i, pattern in enumerate((r"splits: {n},", r"splits: \d+, {n} and",
                                   r"splits: \d+, \d+ and {n};"))),
    Prose("docs/spark.md", r"\({n} rows trimmed", recorded("07", "preprocessing",
                                                          "rows_removed")),
    Prose("docs/spark.md", r"trimmed at {n},", recorded("07", "preprocessing", "threshold")),
    Prose("docs/spark.md", r", {n} left\)", recorded("07", "preprocessing", "rows_left")),
    *(Prose("docs/spark.md", pattern, recorded("07", key)) for key, pattern in (
        ("factors", r"\({n} factors, \d+ iterations\)"),
        ("iterations", r"factors, {n} iterations\)"),
        ("spark_regularization", r"`regParam` was {n}"),
        ("implicit_regularization", r"`regularization` {n}\. "),
        ("factors", r"ratios\); {n} factors"),
        ("iterations", r"ratios\); \d+ factors, {n} iterations"),
        ("alpha", r"iterations, alpha {n},"),
        ("spark_regularization", r"Spark `regParam` {n}, `implicit`"),
        ("implicit_regularization", r"`implicit` `regularization` {n}:"),
        ("session_seconds", r"session started in {n} s"),
    )),
    Prose("docs/spark.md", r"Spark took {n} s", recorded("07", "preprocessing",
                                                        "spark_seconds")),
    Prose("docs/spark.md", r"within {n}% of each other", spark_vs_implicit("real")),
    Prose("docs/spark.md", r"Spark was {n}% lower at 1×", spark_vs_implicit("1x")),
    Prose("docs/spark.md", r"and {n}% higher at 10×", spark_vs_implicit("10x")),
    Prose("docs/spark.md", r"user–artist pairs\) at {n} GiB",
          recorded("07", "outlook_gib", "LFM-1b (user-artist pairs)", "implicit GiB")),
    Prose("docs/spark.md", r"and Spark's at {n} GiB",
          recorded("07", "outlook_gib", "LFM-1b (user-artist pairs)", "spark GiB")),
    Prose("docs/performance.md", r"k = {n},", measured("training", "model", "embedding_dim")),
    Prose("docs/performance.md", r"λ_r = {n},",
          measured("training", "model", "regularization_coeff")),
    Prose("docs/performance.md", r"λ_g = {n}\)", measured("training", "model",
                                                          "gravity_coeff")),
    Prose("docs/performance.md", r"for {n} gradient steps", measured("settings",
                                                                     "training_steps")),
    Prose("docs/performance.md", r"after {n} sweep",
          measured("training", "methods", 2, "sweeps_to_reference_loss")),
    Prose("docs/performance.md", r"in {n} s: \d+× faster",
          measured("training", "methods", 2, "seconds_to_reference_loss")),
    Prose("docs/performance.md", r"s: {n}× faster",
          measured("training", "methods", 2, "speedup_to_reference_loss")),
    Prose("docs/performance.md", r"took {n} s, with a peak RSS",
          measured("notebooks", "make_run", "wall_seconds")),
    Prose("docs/performance.md", r"with a peak RSS of {n} MB",
          measured("notebooks", "make_run", "peak_rss_mb")),
    Prose("docs/performance.md", r"and {n} MB for all its processes",
          measured("notebooks", "make_run", "tree_peak_rss_mb")),
]

#: Numbers that are settings, names or sizes of things rather than results; exempt from the
#: rule that every number in a covered file is checked.
NOT_RESULTS = [
    r"[Nn]otebooks? \d+(?:[–-]\d+)?(?: and \d+)?",  # which notebook
    r"notebooks 01–0[56]", r"Python 3\.11\+", r"`implicit` 0\.7", r"HetRec 2011", r"Java 17",
    r"\d+% (?:of each user's artists|of the users|held out)", r"95% bootstrap interval",
    r"p < 0\.05", r"80/20", r"8:1:1",
    r"the 250 artists", r"about 2\.5 MB", r"exit status \d+", r"with status 130",
    r"(?:k|λ_r|λ_g) = \d+(?:\.\d+)?", r"`init_stddev` 1", r"default 0\.99",
    r"seeds? \d+(?:'s)?", r"1× and 10×", r"at 1×", r"at 10×", r"0/1", r"top 10",
    r"counting as 0", r"TensorFlow 1-style", r"20% of seed",
]
#: Files whose every number must be a checked figure or in NOT_RESULTS.
COVERED = ["README.md", "docs/results.md", "docs/original.md", "docs/reproducibility.md",
           "docs/spark.md", "docs/performance.md"]
