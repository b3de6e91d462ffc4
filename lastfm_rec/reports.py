"""Executed notebooks and HTML reports, and the key results notebooks record.

Owns running ``notebooks/*.ipynb`` top to bottom with nbclient (parameters injected after the
cell tagged ``parameters``, as papermill does), writing the executed copy and an HTML report,
and the machine-readable results channel: a notebook calls :func:`record` and its numbers are
stored in the notebook's outputs under :data:`RESULTS_MIME`, where :func:`read_results` finds
them again. ``python -m lastfm_rec.reports notebooks --out reports`` is what ``make run``
calls.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RESULTS_MIME = "application/vnd.lastfm-rec.results+json"
PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"
#: Notebooks left out of a whole-folder run: they have their own make target (run-spark).
SEPARATE = ("06_scaling_out.ipynb",)


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


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def execute_notebook(path: str | os.PathLike, out_dir: str | os.PathLike,
                     parameters: Mapping[str, Any] | None = None, html: bool = True,
                     timeout: int = 900) -> ExecutedNotebook:
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
                            resources={"metadata": {"path": str(path.parent.resolve())}})
    client.execute()
    seconds = time.perf_counter() - start
    executed = out / path.name
    _write_atomically(executed, nbformat.writes(notebook))
    html_path = None
    if html:
        from nbconvert import HTMLExporter

        body, _ = HTMLExporter().from_notebook_node(notebook)
        html_path = executed.with_suffix(".html")
        _write_atomically(html_path, body)
    return ExecutedNotebook(executed, html_path, read_results(notebook), seconds)


def main(argv: list[str] | None = None) -> int:
    """Execute every notebook in a folder, in name order, into HTML reports."""
    parser = argparse.ArgumentParser(prog="python -m lastfm_rec.reports",
                                     description=main.__doc__)
    parser.add_argument("notebooks", type=Path, help="folder of .ipynb files")
    parser.add_argument("--out", type=Path, default=Path("reports"), help="output folder")
    parser.add_argument("--only", nargs="*", default=None,
                        help="names (or prefixes) of notebooks to run, e.g. 01 03")
    parser.add_argument("--no-html", dest="html", action="store_false",
                        help="write only the executed notebooks")
    args = parser.parse_args(argv)
    paths = sorted(args.notebooks.glob("*.ipynb"))
    if args.only:
        paths = [p for p in paths if any(p.name.startswith(o) for o in args.only)]
    else:
        paths = [p for p in paths if p.name not in SEPARATE]
    if not paths:
        print(f"error: no notebooks found in {args.notebooks}", file=sys.stderr)
        return 2
    total = time.perf_counter()
    for path in paths:
        print(f"running {path.name} ...", flush=True)
        done = execute_notebook(path, args.out, html=args.html)
        print(f"  {done.seconds:6.1f} s  -> {done.html or done.notebook}", flush=True)
    print(f"{len(paths)} notebooks in {time.perf_counter() - total:.1f} s; "
          f"reports in {args.out.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
