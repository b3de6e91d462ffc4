"""The bench without running a benchmark: public names only, the report, the runner.

The bench is a user of the library like any other: it reads only public ``lastfm_rec`` names,
so a refactor that keeps the public interface keeps the bench working. Its report is checked
on a small made-up result, its runner on processes that take milliseconds.
"""

from __future__ import annotations

import argparse
import ast
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import report, runner, workers  # noqa: E402
from bench.sections import SECTIONS, growth  # noqa: E402
from bench.sections import notebooks as notebooks_section  # noqa: E402
from lastfm_rec import models  # noqa: E402
from lastfm_rec.models import base  # noqa: E402

BENCH_FILES = sorted((ROOT / "bench").rglob("*.py"))


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_references(source: str) -> list[str]:
    """Private names the source takes from ``lastfm_rec``: imported modules or names, and any
    ``x._name`` or ``getattr(x, "_name")`` (the bench has no private attributes of its own)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("lastfm_rec"):
            found += [node.module for part in node.module.split(".") if _private(part)]
            found += [f"{node.module}.{a.name}" for a in node.names if _private(a.name)]
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("lastfm_rec")
                      and any(_private(part) for part in a.name.split("."))]
        elif isinstance(node, ast.Attribute) and _private(node.attr):
            found.append(f"._{node.attr.lstrip('_')}")
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id in {"getattr", "hasattr", "setattr"} and len(node.args) > 1
              and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)
              and _private(node.args[1].value)):
            found.append(f"{node.func.id}(..., {node.args[1].value!r})")
    return found


def test_the_checker_sees_private_names():
    source = ("from lastfm_rec.models.base import _BATCH\nimport lastfm_rec._x\n"
              "from lastfm_rec._y import z\nm._loss\ngetattr(base, '_BLOCK_ENTRIES')\n"
              "from lastfm_rec.models.base import users_per_batch\nx.__version__\n")
    assert private_references(source) == [
        "lastfm_rec.models.base._BATCH", "lastfm_rec._x", "lastfm_rec._y", "._loss",
        "getattr(..., '_BLOCK_ENTRIES')"]


@pytest.mark.parametrize("path", BENCH_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_bench_uses_only_public_names(path):
    assert private_references(path.read_text()) == []


def test_every_bench_module_has_a_docstring():
    missing = [str(p.relative_to(ROOT)) for p in BENCH_FILES
               if not ast.get_docstring(ast.parse(p.read_text()))]
    assert missing == []


def test_help_lists_the_sections_and_flags():
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "run.py"), "--help"],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    for word in [*SECTIONS, "--quick", "--with-100x", "--only", "--repeats", "--threads",
                 "--out", "--plot", "--keep", "--timeout", "--serving-model", "--notebooks"]:
        assert word in done.stdout


# ------------------------------------------------------------------ the report


def _measured(peak: float) -> dict:
    return {"wall_seconds": 1.5, "peak_rss_mb": peak, "tree_peak_rss_mb": 1.5 * peak,
            "cpu_seconds": 1.4, "log": "x.log"}


def _size(factor: int) -> dict:
    """Every number linear in the size factor: each growth exponent must be 1."""
    def step(**numbers: float) -> dict:
        out = {k: v * factor for k, v in numbers.items()}
        out.setdefault("peak_rss_mb", 100.0 * factor)
        out.setdefault("imports_peak_mb", 40.0 * factor)
        return out

    return {"factor": factor, "repeats": 1,
            "generate": step(seconds=0.5, file_mb=30.0),
            "load": {**step(load_seconds=0.3, prepare_seconds=0.4), "n_users": 1892 * factor,
                     "n_artists": 17632 * factor, "rows": 92834 * factor,
                     "tag_rows": 186479 * factor},
            "fit_implicit": step(seconds=9.0), "fit_cf": step(seconds=0.6, build_seconds=0.2),
            "recommend": {**step(ms_per_user=0.5, users_per_s=2000.0), "users_per_call": 256}}


@pytest.fixture
def fake_report(tmp_path) -> dict:
    """A whole result as ``run.py`` writes it: two notebooks, two growth sizes."""
    sizes = [_size(1), _size(10)]
    machine = {"cpu_model": "Test CPU", "cores": 2, "cores_available": 2, "memory_gb": 8.0,
               "blas": [], "python": "3.11", "numpy": "2", "scipy": "1", "pandas": "2",
               "tensorflow": "2", "implicit": "0.7", "load_average_start": [1.0, 1.0, 1.0],
               "load_average_end": [1.5, 1.0, 1.0]}
    methods = [{"method": name, "seconds": s, "steps_per_s": 2000 / s, "final_total_loss": 1.8,
                "speedup_vs_reference": 20 / s, "seconds_to_reference_loss": s,
                "speedup_to_reference_loss": 20 / s, "sweeps_to_reference_loss": sweeps}
               for name, s, sweeps in (("reference", 20.0, None), ("gradient", 4.0, None),
                                       ("als", 1.0, 1))]
    warm = {"session_load_seconds": 0.8, "sheet_read_ms": 2.0, "liked": 12, "calls": 50,
            "latency_ms_median": 41.0, "latency_ms_p90": 45.0, "model_recommend_ms_median": 30.0,
            "batch_users": 1892, "batch_users_per_s": 2170.0, "batch_seconds_median": 0.87,
            "peak_rss_mb": 257.0}
    wall = {"runs": 3, "seconds_median": 1.48, "peak_rss_mb": 200.0}
    return {
        "machine": machine,
        "settings": {"threads": 1, "sections": ["training", "notebooks", "serving", "growth"]},
        "training": {"process": _measured(900.0), "repeats": 3, "methods": methods,
                     "data": {"ratings": 92198, "n_users": 1892, "n_artists": 17632}},
        "notebooks": {"notebooks": [{"notebook": "01.ipynb", "seconds": 11.0,
                                     "execute_seconds": 10.0, "peak_rss_mb": 300.0,
                                     "repeats": 1},
                                    {"notebook": "02.ipynb", "seconds": 7.0,
                                     "execute_seconds": 6.5, "peak_rss_mb": 310.0,
                                     "repeats": 1}],
                      "sum_seconds": 18.0, "make_run": _measured(1900.0)},
        "serving": {"model": "als", "sheet": "rec_sheets/example_artists.csv",
                    "cold": {"cold_session_seconds": 12.6, "peak_rss_mb": 250.0},
                    "warm": warm, "cli_help": {**wall, "runs": 5}, "cli_recommend": wall,
                    "cli_recommend_models": {
                        "als": wall, "hybrid": {**wall, "seconds_median": 1.85,
                                                "peak_rss_mb": 420.0, "fill_seconds": 40.0}}},
        "growth": {"sizes": sizes, "measures": growth.growth_measures(sizes),
                   "plot": str(tmp_path / "growth.png")},
        "total_seconds": 780.0, "failed": [],
    }


def _memory_rows(text: str) -> list[str]:
    lines = text.split("4. Peak memory")[1].split("\n\n")[0].splitlines()
    return lines[3:]  # after the title's rest, the header and the rule


def test_summary_shows_every_section_and_every_process(fake_report, tmp_path):
    text = report.summary(fake_report, SECTIONS, tmp_path / "bench.json")
    titles = ["1. Training speed", "2. The whole story", "3. Serving", "4. Peak memory",
              "5. Growth"]
    positions = [text.index(title) for title in titles]
    assert positions[:3] == sorted(positions[:3]) and positions[3] > positions[4]
    assert "Machine: Test CPU, 2 cores; no BLAS found (2 available), 8.0 GB" in text
    assert "load average at end 1.50, 1.00, 1.00" in text
    # training 1 + notebooks 2 + make run 2 (its largest process, all at once) + serving 4
    # (+ hybrid's command) + growth 5 steps x 2 sizes
    rows = _memory_rows(text)
    assert len(rows) == 1 + 2 + 2 + 5 + 5 * 2
    assert any(row.startswith("lastfm-rec recommend --model hybrid") and row.endswith("420")
               for row in rows)
    assert rows[0].startswith("training: bench_training.py") and rows[0].endswith("900")
    assert text.splitlines()[-3:] == [f"growth plot: {tmp_path / 'growth.png'}",
                                      f"results: {tmp_path / 'bench.json'}", "total 13.0 min"]


def test_a_failed_section_is_left_out_and_named(fake_report, tmp_path):
    fake_report["serving"] = {"error": "serving exited with status 1"}
    fake_report["failed"] = ["serving"]
    text = report.summary(fake_report, SECTIONS, tmp_path / "bench.json")
    assert "3. Serving" not in text
    assert not any(row.startswith(("serving", "lastfm-rec")) for row in _memory_rows(text))
    assert text.endswith("total 13.0 min; FAILED sections: serving")


def test_section_tables(fake_report):
    training = SECTIONS["training"].render(fake_report["training"])
    assert "medians of 3" in training and "after 1 sweep(s)" in training
    assert training.splitlines()[3].split() == ["reference", "20.0", "100", "1.80", "1.00",
                                                "20.0", "1.00"]
    notebooks = SECTIONS["notebooks"].render(fake_report["notebooks"])
    assert notebooks.splitlines()[-2].split()[-4:] == ["18.0", "-", "-", "-"]
    make_run = [line for line in notebooks.splitlines()
                if line.startswith("make run equivalent (two notebooks at a time)")]
    assert len(make_run) == 1 and make_run[0].split()[-2:] == ["1,900", "2,850"]
    serving = SECTIONS["serving"].render(fake_report["serving"])
    assert "2,170 users/s (0.87 s)" in serving and "41.0 ms (p90 45.0)" in serving
    assert "1.85 s (1.25x als)" in serving  # the hybrid's command against the serving model's
    del fake_report["serving"]["cli_recommend_models"]  # a result from before it was measured
    assert "--model hybrid" not in SECTIONS["serving"].render(fake_report["serving"])


def test_growth_exponents_and_plot(fake_report, tmp_path):
    measures = fake_report["growth"]["measures"]
    assert [m["measure"] for m in measures] == [m.name for m in growth.MEASURES]
    assert all(m["exponent"] == pytest.approx(1.0) for m in measures)
    assert growth.exponent([1, 10], [2.0, 200.0]) == pytest.approx(2.0)
    assert growth.exponent([1, 10], [0.0, 5.0]) is None  # one positive point: no line
    text = SECTIONS["growth"].render(fake_report["growth"])
    assert text.splitlines()[3].split()[:4] == ["1x", "1892", "17632", "92834"]
    path = tmp_path / "plots" / "growth.png"
    growth.plot_growth(fake_report["growth"], path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_numbers_and_tables_are_formatted_alike():
    assert [report.fmt(v) for v in (None, "x", 7, 0.0, 12345.6, 1.5, 0.012345)] == [
        "-", "x", "7", "0", "12,346", "1.50", "0.0123"]
    lines = report.table("T", ["name", "value"], [["a", 1.5], ["long name", 12]]).splitlines()
    assert lines == ["T", "name       value", "----------------", "a           1.50",
                     "long name     12"]


def test_json_is_written_atomically(tmp_path):
    path = tmp_path / "out" / "bench.json"
    report.write_json(path, {"a": [1, 2]})
    assert json.loads(path.read_text()) == {"a": [1, 2]}
    assert [p.name for p in path.parent.iterdir()] == ["bench.json"]


# ------------------------------------------------------------------ the runner


def test_runner_measures_a_process_and_reports_a_failure(tmp_path):
    run = runner.Runner(tmp_path, dict(runner.child_env(tmp_path, tmp_path / "cache", 1)), 60)
    measured = run.run([sys.executable, "-c", "b = bytearray(64 << 20)"], "alloc")
    assert measured["peak_rss_mb"] >= 64 and measured["wall_seconds"] > 0
    with pytest.raises(runner.ChildFailed, match=r"(?s)boom exited with status 3 .*went wrong"):
        run.run([sys.executable, "-c", "import sys; print('went wrong'); sys.exit(3)"], "boom")


def test_child_env_sets_data_cache_and_threads(tmp_path):
    env = runner.child_env(tmp_path / "data", tmp_path / "cache", 2)
    assert env["LASTFM_REC_DATA"] == str(tmp_path / "data")
    assert env["LASTFM_REC_CACHE"] == str(tmp_path / "cache")
    assert all(env[name] == "2" for name in runner.THREAD_VARS)


def test_worker_protocol_round_trip(tmp_path):
    result = tmp_path / "result.json"
    code = runner.serve({"double": lambda p: {"twice": 2 * p["x"]}},
                        ["double", "--params", '{"x": 21}', "--result", str(result)])
    out = json.loads(result.read_text())
    assert code == 0 and out["twice"] == 42 and out["final_self_peak_mb"] > 0


def test_unknown_worker_fails_in_its_subprocess(tmp_path):
    run = runner.Runner(tmp_path, runner.child_env(tmp_path, tmp_path / "cache", 1), 60)
    with pytest.raises(runner.ChildFailed, match="invalid choice: 'nope'"):
        run.work("nope", {})
    assert set(workers.WORKERS) == {"notebook", "serving_cold", "serving", "generate", "load",
                                    "fit_implicit", "fit_cf", "recommend"}


# ------------------------------------------------------------------ the recommend bound


def test_recommend_scores_in_batches_of_users_per_batch(monkeypatch):
    assert base.users_per_batch(100) == 256
    assert base.users_per_batch(1 << 20) == base.BLOCK_ENTRIES >> 20
    assert base.users_per_batch(base.BLOCK_ENTRIES * 2) == 1
    monkeypatch.setattr(base, "BLOCK_ENTRIES", 1000)
    plays = sp.random(25, 100, density=0.2, format="csr", random_state=0) * 5
    model = models.create("popularity").fit(plays)
    sizes = []
    score = type(model)._score

    def recording(self, userids, user_items, recalculate_user):
        sizes.append(len(userids))
        return score(self, userids, user_items, recalculate_user)

    monkeypatch.setattr(type(model), "_score", recording)
    ids, _ = model.recommend(np.arange(25), plays, N=3)
    assert sizes == [10, 10, 5] and ids.shape == (25, 3)
    assert workers.users_per_call(100) == (10, True)


def test_profile_rows_sum_each_call_path_in_order():
    records = [{"path": p, "seconds": s, "cpu_seconds": s / 2}
               for p, s in (("fit ease / EASE solve", 1.0), ("fit ease", 1.5),
                            ("fit ease / EASE solve", 2.0), ("fit ease", 2.5))]
    assert workers.profile_rows(records) == [
        {"path": "fit ease / EASE solve", "calls": 2, "seconds": 3.0, "cpu_seconds": 1.5},
        {"path": "fit ease", "calls": 2, "seconds": 4.0, "cpu_seconds": 2.0}]


def test_cell_rows_read_the_executed_notebooks_timestamps(tmp_path):
    import nbformat

    cells = [nbformat.v4.new_markdown_cell("# title"),
             nbformat.v4.new_code_cell("# a comment\nresult = run_study()"),
             nbformat.v4.new_code_cell("never run")]
    cells[1].metadata["execution"] = {"iopub.execute_input": "2024-01-01T10:00:00.000000Z",
                                      "shell.execute_reply": "2024-01-01T10:00:02.500000Z"}
    path = tmp_path / "nb.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    assert workers.cell_rows(path) == [{"cell": 1, "source": "result = run_study()",
                                        "seconds": 2.5}]


def test_the_profile_table_splits_a_notebooks_seconds():
    measured = {"notebook": "05_ranking.ipynb", "seconds": 10.0,
                "cells": [{"cell": 2, "source": "import numpy", "seconds": 0.2},
                          {"cell": 5, "source": "result = run_study()", "seconds": 6.0},
                          {"cell": 7, "source": "table", "seconds": 0.1}],
                "profile": [{"path": "test als / fit als", "calls": 1, "seconds": 3.0,
                             "cpu_seconds": 2.9},
                            {"path": "test als", "calls": 1, "seconds": 4.0,
                             "cpu_seconds": 3.8}]}
    rows = notebooks_section.profile_table(measured)
    assert [(r["label"], r["calls"], r["seconds"]) for r in rows] == [
        ("whole notebook, with HTML", 1, 10.0),
        ("kernel start-up, HTML, saving", 1, pytest.approx(3.7)),
        ("cell [5] result = run_study()", 1, 6.0),
        ("2 cells under 0.5 s", 2, pytest.approx(0.3)),
        ("    fit als", 1, 3.0), ("  test als", 1, 4.0)]
    assert [r["share"] for r in rows][-2:] == [0.3, 0.4]
    text = notebooks_section.render({"notebooks": [{**measured, "execute_seconds": 9.0,
                                                    "peak_rss_mb": 900.0, "repeats": 1}],
                                     "sum_seconds": 10.0, "profile": rows})
    profile = text.split("2b. Where the seconds go")[1].splitlines()
    assert profile[4].split() == ["05", "kernel", "start-up,", "HTML,", "saving", "1", "3.70",
                                  "-", "37%"]
    assert profile[-2].startswith("05     fit als ")  # indented under its caller
    assert profile[-2].split()[-4:] == ["1", "3.00", "2.90", "30%"]


def test_a_table_without_rows_has_its_header():
    assert report.table("t", ["a", "bb"], []).splitlines() == ["t", "a  bb", "-----"]


def test_serving_starts_from_an_empty_cache(tmp_path, monkeypatch):
    """The notebooks section fills the shared model cache; the serving section's cold session
    must not find those models."""
    from bench.sections import serving

    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "als-stale.npz").write_bytes(b"fitted by a notebook")
    seen = []

    class FakeRunner:
        def __init__(self) -> None:
            self.env = {"LASTFM_REC_CACHE": str(cache)}

        def work(self, name, params, label):
            seen.append((name, cache.exists() and any(cache.iterdir())))
            raise RuntimeError("stop after the first worker")

    args = argparse.Namespace(data_dir=tmp_path, serving_model="als", quick=True, repeats=1)
    with pytest.raises(RuntimeError, match="stop after the first worker"):
        serving.measure(FakeRunner(), args)
    assert seen == [("serving_cold", False)]
