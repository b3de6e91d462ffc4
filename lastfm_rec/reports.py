"""Executed notebooks and HTML reports, and the key results notebooks record.

Owns running ``notebooks/*.ipynb`` top to bottom with nbclient (parameters injected after the
cell tagged ``parameters``, as papermill does), writing the executed copy and an HTML report,
and the machine-readable results channel: a notebook calls :func:`record` and its numbers are
stored in the notebook's outputs under :data:`RESULTS_MIME`, where :func:`read_results` finds
them again. Each executed notebook also carries, in its metadata, the machine it ran on
(:func:`machine_info`: CPU model, BLAS library and kernel, package versions), since float
results agree bit for bit only on one CPU and build. ``python -m lastfm_rec.reports notebooks
--out reports`` is what ``make run`` calls: it runs two notebooks at a time on a 2-core
machine (:func:`run_notebooks`), each kernel on one core.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lastfm_rec.files import atomic_write

RESULTS_MIME = "application/vnd.lastfm-rec.results+json"
MACHINE_KEY = "lastfm_rec_machine"
PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"
#: Notebooks left out of a whole-folder run: they have their own make targets (run-spark,
#: run-graph).
SEPARATE = ("07_scaling_out.ipynb", "08_graph_models.ipynb")
#: Seconds a notebook cell may run before its execution fails (a hung kernel stops the run).
CELL_TIMEOUT = 900


def plot_history(history: Any, groups: list[list[str]], xlabel: str = "iteration") -> None:
    """Plot a training history (``CFModel.history``) like the original notebook: one subplot
    per group of metric columns, against ``history["iteration"]``, on a new figure."""
    import matplotlib.pyplot as plt

    fig = plt.figure()
    fig.set_size_inches(len(groups) * 10, 8)
    for i, names in enumerate(groups):
        ax = fig.add_subplot(1, len(groups), i + 1)
        for name in names:
            ax.plot(history["iteration"], history[name], label=name)
        if len(history) > 1:
            ax.set_xlim([history["iteration"].iloc[0], history["iteration"].iloc[-1]])
        ax.set_xlabel(xlabel)
        ax.legend()


def _jsonable(value: Any) -> Any:
    """Plain JSON types for numpy scalars/arrays and pandas objects; NaN becomes None."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "tolist"):
        return _jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if hasattr(value, "item"):
        return _jsonable(value.item())
    raise TypeError(f"cannot record {type(value).__name__} as a result; use numbers or text")


def record(**results: Any) -> None:
    """Show ``results`` in a notebook and store them where :func:`read_results` finds them."""
    from IPython.display import display

    payload = _jsonable(results)
    text = "\n".join(f"{k}: {json.dumps(v, ensure_ascii=False)}" for k, v in payload.items())
    display({RESULTS_MIME: payload, "text/plain": text}, raw=True)


def read_results(notebook: Any) -> dict[str, Any]:
    """Every result recorded in an executed notebook (a path or an nbformat node)."""
    import nbformat

    if not hasattr(notebook, "cells"):
        notebook = nbformat.read(notebook, as_version=4)
    results: dict[str, Any] = {}
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if RESULTS_MIME in data:
                results.update(data[RESULTS_MIME])
    return results


def machine_info() -> dict[str, Any]:
    """The CPU, BLAS and package versions that numeric results depend on.

    ``blas`` lists what ``threadpoolctl`` reports for the loaded BLAS libraries (library,
    version, the kernel architecture it chose, threads); ``OPENBLAS_CORETYPE`` is included
    because it overrides that choice.
    """
    from importlib import metadata

    import numpy  # noqa: F401  (loads the BLAS that threadpoolctl reports)
    from threadpoolctl import threadpool_info

    def version(*names: str) -> str | None:
        for name in names:
            try:
                return metadata.version(name)
            except metadata.PackageNotFoundError:
                continue
        return None

    cpu = platform.processor() or None
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                    if line.startswith("model name")), cpu)
    blas = [{key: pool.get(key) for key in ("internal_api", "version", "architecture",
                                            "num_threads")}
            for pool in threadpool_info() if pool.get("user_api") == "blas"]
    return {
        "cpu_model": cpu, "cores": os.cpu_count(), "platform": platform.platform(),
        "blas": blas, "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        "python": platform.python_version(),
        **{name: version(*dists) for name, dists in {
            "numpy": ("numpy",), "scipy": ("scipy",), "pandas": ("pandas",),
            "tensorflow": ("tensorflow-cpu", "tensorflow"), "implicit": ("implicit",)}.items()},
    }


def describe_machine(machine: dict[str, Any]) -> str:
    """One line naming the CPU and BLAS kernel of :func:`machine_info`."""
    blas = ", ".join(f"{b['internal_api']} {b['version']} ({b['architecture']} kernels)"
                     for b in machine["blas"]) or "no BLAS found"
    return f"{machine['cpu_model']}, {machine['cores']} cores; {blas}"


def read_machine(notebook: Any) -> dict[str, Any] | None:
    """The :func:`machine_info` stored in an executed notebook (a path or nbformat node)."""
    import nbformat

    if not hasattr(notebook, "metadata"):
        notebook = nbformat.read(notebook, as_version=4)
    return notebook.metadata.get(MACHINE_KEY)


@dataclass(frozen=True)
class Tolerance:
    """How far a recorded float may move and still count as the same figure:
    ``|fresh - stored| <= max(rel * |stored|, abs)``."""

    rel: float
    abs: float


#: Agreement expected between runs on different CPUs or BLAS kernels, by kind of figure,
#: about twice the largest difference measured (docs/reproducibility.md). Accuracy
#: metrics, correlations, losses and exact figures fail on a change of one unit in their
#: third significant digit; list statistics on a change of 0.3%, spreads over seeds on a
#: change of 0.0005.
TOLERANCES: dict[str, Tolerance] = {
    # Means over users of accuracy@K (NDCG, MAP, precision, recall): float noise in factors
    # can swap two nearly tied artists across the cut for a few users. Measured: 5.3e-4.
    "ranking": Tolerance(rel=1e-3, abs=0.0),
    # Statistics of the recommended lists (coverage@K, mean listeners of recommended
    # artists): one swapped artist moves them more. Measured: 1.5e-3.
    "list statistic": Tolerance(rel=3e-3, abs=0.0),
    # Standard deviations over seeds of accuracy@K (about 0.001-0.005): each input may move
    # by the ranking tolerance, so the spread moves by as much in absolute terms.
    "spread": Tolerance(rel=0.0, abs=5e-4),
    # Rank correlations near zero, where relative error means nothing. Measured: 5.9e-8.
    "correlation": Tolerance(rel=0.0, abs=5e-7),
    # Losses of the original objective (TensorFlow float32, the numpy ALS solver). Measured:
    # bit-identical.
    "loss": Tolerance(rel=1e-6, abs=0.0),
    # Paired comparisons of two models (mean, difference, interval ends): each mean may move
    # by the ranking tolerance (about 1.4e-4 at NDCG@10 0.26), their difference by twice as
    # much. Derived from the ranking tolerance, not measured on a second CPU.
    "paired": Tolerance(rel=0.0, abs=5e-4),
    # p-values of those comparisons: tiny ones change by orders of magnitude relative to
    # themselves but not in absolute terms; one near 0.05 could still cross it.
    "p-value": Tolerance(rel=0.0, abs=0.02),
    # Everything else (counts, data statistics, cosines of a vector with itself): exact up to
    # float64 rounding.
    "exact": Tolerance(rel=1e-12, abs=1e-12),
}


def figure_kind(path: str) -> str:
    """The :data:`TOLERANCES` key for a recorded figure named by its dotted ``path``.

    The leaf's name decides (``ndcg@10``, ``coverage@10``, ``observed_loss``, ``... sd``);
    a list of per-seed metrics takes its kind from the name of the list's parent
    (``literature_per_seed.als[0]``).
    """
    parts = [part.split("[", 1)[0].lower() for part in path.split(".")]
    name = parts[-1]
    if "spearman" in path.lower():
        return "correlation"
    if any(part.endswith("significance") for part in parts):
        return "p-value" if name.endswith("_p") else "paired" if name != "users" else "exact"
    if name.endswith(" sd"):
        return "spread"
    if name.startswith(("coverage@", "popularity@")):
        return "list statistic"
    if "@" in name or any(part.endswith("per_seed") for part in parts):
        return "ranking"
    if name.endswith(("loss", "error_observed")):
        return "loss"
    return "exact"


#: Parts of a path that name a list of artists ranked by a model: an artist nearly tied with
#: the next may swap with it on another CPU (measured: one of 25 tuned-ALS neighbours).
RANKED_NAMES = ("neighbours", "recommendations", "because")


def _is_ranked_names(where: str, values: list[Any]) -> bool:
    return bool(values) and all(isinstance(v, str) for v in values) and any(
        word in where.lower() for word in RANKED_NAMES)


def compare_results(fresh: Any, stored: Any, where: str = "") -> list[str]:
    """Where two recorded results disagree beyond :data:`TOLERANCES` (empty when they agree).

    Floats compare within their kind's tolerance; a list of artists ranked by a model
    (:data:`RANKED_NAMES`) may differ in one entry in five; everything else (counts, names,
    keys) must be equal.
    """
    if isinstance(stored, dict):
        if not isinstance(fresh, dict) or fresh.keys() != stored.keys():
            return [f"{where}: keys differ"]
        return [m for key in stored for m in compare_results(fresh[key], stored[key],
                                                             f"{where}.{key}".lstrip("."))]
    if isinstance(stored, list):
        if not isinstance(fresh, list) or len(fresh) != len(stored):
            return [f"{where}: lengths differ"]
        if _is_ranked_names(where, stored):
            differ = sum(a != b for a, b in zip(fresh, stored, strict=True))
            if differ > max(1, len(stored) // 5):
                return [f"{where}: {fresh!r} now, {stored!r} recorded (ranked names)"]
            return []
        return [m for i, (a, b) in enumerate(zip(fresh, stored, strict=True))
                for m in compare_results(a, b, f"{where}[{i}]")]
    if isinstance(stored, float) and isinstance(fresh, float):
        tolerance = TOLERANCES[figure_kind(where)]
        if abs(fresh - stored) > max(tolerance.rel * abs(stored), tolerance.abs):
            return [f"{where}: {fresh!r} now, {stored!r} recorded ({figure_kind(where)})"]
        return []
    return [] if fresh == stored else [f"{where}: {fresh!r} now, {stored!r} recorded"]


def inject_parameters(notebook: Any, parameters: Mapping[str, Any]) -> None:
    """Insert a cell assigning ``parameters`` right after the cell tagged ``parameters``."""
    import nbformat

    if not parameters:
        return
    index = next((i for i, cell in enumerate(notebook.cells)
                  if PARAMETERS_TAG in cell.get("metadata", {}).get("tags", [])), None)
    if index is None:
        raise ValueError("the notebook has no cell tagged 'parameters' to override")
    source = "# Parameters injected for this run\n" + "\n".join(
        f"{name} = {value!r}" for name, value in parameters.items())
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": [INJECTED_TAG]})
    notebook.cells = [c for c in notebook.cells
                      if INJECTED_TAG not in c.get("metadata", {}).get("tags", [])]
    notebook.cells.insert(index + 1, cell)


@dataclass(frozen=True)
class ExecutedNotebook:
    """Where an executed notebook went, what it recorded and how long it took."""

    notebook: Path
    html: Path | None
    results: dict[str, Any]
    seconds: float


def _kernel_config() -> Any:
    """Kernel settings: CurveZMQ-encrypted transport where the kernel supports it (ipykernel
    does), so the kernel neither talks in plain text over TCP nor warns that it does."""
    import zmq
    from traitlets.config import Config

    policy = "auto" if zmq.has("curve") else "disabled"
    return Config({"KernelManager": {"transport_encryption": policy}})


def execute_notebook(path: str | os.PathLike, out_dir: str | os.PathLike,
                     parameters: Mapping[str, Any] | None = None, html: bool = True,
                     timeout: int = CELL_TIMEOUT) -> ExecutedNotebook:
    """Execute a notebook top to bottom and write the executed copy (and HTML) to ``out_dir``.

    The kernel runs with the notebook's own folder as working directory, as it would in
    Jupyter. A failing cell raises ``nbclient.exceptions.CellExecutionError``; nothing is
    written for a notebook that failed.
    """
    import nbformat
    from nbclient import NotebookClient

    path = Path(path)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    notebook = nbformat.read(path, as_version=4)
    inject_parameters(notebook, parameters or {})
    start = time.perf_counter()
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent.resolve())}},
                            config=_kernel_config())
    client.execute()
    seconds = time.perf_counter() - start
    notebook.metadata[MACHINE_KEY] = machine_info()
    executed = out / path.name
    with atomic_write(executed, text=True) as stream:
        stream.write(nbformat.writes(notebook))
    html_path = None
    if html:
        from nbconvert import HTMLExporter

        body, _ = HTMLExporter().from_notebook_node(notebook)
        html_path = executed.with_suffix(".html")
        with atomic_write(html_path, text=True) as stream:
            stream.write(body)
    return ExecutedNotebook(executed, html_path, read_results(notebook), seconds)


#: Environment variables that set a process's BLAS/OpenMP threads.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def default_jobs() -> int:
    """Notebooks run at once by default: one per core, at most two (two lanes already keep
    both cores of the 2-core machine busy; more would only share them)."""
    return max(1, min(2, os.cpu_count() or 1))


def _share_cores(jobs: int) -> None:
    """Give each of ``jobs`` concurrent kernels its share of the cores (threads the user
    set are kept): two kernels each running two BLAS threads on two cores slow each other
    down far more than they gain."""
    if jobs > 1:
        share = str(max(1, (os.cpu_count() or 1) // jobs))
        for name in THREAD_VARIABLES:
            os.environ.setdefault(name, share)


def _run_one(path: Path, out: Path, html: bool, jobs: int, timeout: int) -> ExecutedNotebook:
    _share_cores(jobs)
    return execute_notebook(path, out, html=html, timeout=timeout)


def run_notebooks(paths: list[Path], out: Path, html: bool = True, jobs: int = 1,
                  timeout: int = CELL_TIMEOUT) -> Iterator[ExecutedNotebook]:
    """Execute ``paths`` into ``out``, ``jobs`` at a time, yielding each as it finishes.

    With more than one job each notebook runs in a worker process of its own (its kernel
    inherits the worker's thread settings, :func:`_share_cores`), and the notebooks start
    from the last name: later notebooks are the longer ones, so the longest starts first
    and the short ones fill the other lane. A failed notebook's error is raised once the
    notebooks already running have finished. ``timeout``: seconds a cell may run.
    """
    if jobs <= 1 or len(paths) <= 1:
        for path in paths:
            yield execute_notebook(path, out, html=html, timeout=timeout)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    context = multiprocessing.get_context("spawn")  # no zmq state copied into the workers
    with ProcessPoolExecutor(max_workers=min(jobs, len(paths)), mp_context=context) as pool:
        futures = [pool.submit(_run_one, path, out, html, jobs, timeout)
                   for path in sorted(paths, reverse=True)]
        for future in as_completed(futures):
            yield future.result()


def main(argv: list[str] | None = None) -> int:
    """Execute every notebook in a folder into HTML reports, two at a time on two cores."""
    parser = argparse.ArgumentParser(prog="python -m lastfm_rec.reports",
                                     description=main.__doc__)
    parser.add_argument("notebooks", type=Path, help="folder of .ipynb files")
    parser.add_argument("--out", type=Path, default=Path("reports"), help="output folder")
    parser.add_argument("--only", nargs="*", default=None,
                        help="names (or prefixes) of notebooks to run, e.g. 01 03")
    parser.add_argument("--no-html", dest="html", action="store_false",
                        help="write only the executed notebooks")
    parser.add_argument("--jobs", type=int, default=default_jobs(),
                        help="notebooks executed at once (default: %(default)s, one per core "
                             "up to two)")
    parser.add_argument("--timeout", type=int, default=CELL_TIMEOUT, metavar="SECONDS",
                        help="longest a cell may run (default: %(default)s; notebook 08's "
                             "fits need more)")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    if args.timeout < 1:
        parser.error("--timeout must be at least 1 second")
    paths = sorted(args.notebooks.glob("*.ipynb"))
    if args.only:
        paths = [p for p in paths if any(p.name.startswith(o) for o in args.only)]
    else:
        paths = [p for p in paths if p.name not in SEPARATE]
    if not paths:
        print(f"error: no notebooks found in {args.notebooks}", file=sys.stderr)
        return 2
    total = time.perf_counter()
    if args.jobs > 1 and len(paths) > 1:
        print(f"running {len(paths)} notebooks, {min(args.jobs, len(paths))} at a time ...",
              flush=True)
    for done in run_notebooks(paths, args.out, html=args.html, jobs=args.jobs,
                              timeout=args.timeout):
        print(f"{done.notebook.name} ... {done.seconds:.1f} s -> {done.html or done.notebook}",
              flush=True)
    print(f"{len(paths)} notebooks in {time.perf_counter() - total:.1f} s; "
          f"reports in {args.out.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
