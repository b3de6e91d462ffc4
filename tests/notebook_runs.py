"""Notebook executions shared by the whole run: each notebook with the same parameters is
executed once, in a background process, while the other tests go on.

Two kinds of run: ``FULL`` (the notebook's own settings on the real data, what the
real-data tier checks) and ``QUICK_RUN`` (the synthetic data set with the small parameters
of :data:`QUICK`). A test that reads a run is marked ``notebook(kind, name)``; conftest.py
queues every marked run when the session starts, executed one at a time, and runs the
marked tests last, so that the notebooks execute while the rest of the suite does; a test
that would wait executes queued runs itself, beside the queue's.

Run as a script (``python notebook_runs.py NOTEBOOK OUT PARAMETERS_JSON``) it executes one
notebook; every execution is such a process, so a test that changes the environment
(``monkeypatch.setenv``) cannot reach a kernel started meanwhile.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import warnings
from collections.abc import Mapping
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lastfm_rec.reports import SEPARATE

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
#: The notebooks of ``make run`` (07 needs the Spark extra: tests/test_spark.py runs it).
MAKE_RUN = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb") if p.name not in SEPARATE)
FULL, QUICK_RUN = "full", "quick"
DATA_ENV = "LASTFM_REC_DATA"
# Artists of the synthetic data (lastfm_rec.data.synthetic names its two most popular so).
SYNTHETIC_ARTISTS = ["Beyoncé Tribute", '"Weird" Ensemble']


class Artist(int):
    """A placeholder for the synthetic artist of this rank (by listeners, then name)."""


class Sheet(str):
    """A placeholder for a rec sheet liking the synthetic artists ranked in ``slice``."""


#: Small parameters per notebook (by its number); ``data_dir`` is always the synthetic data.
#: A notebook added to ``notebooks/`` needs an entry (every data-specific choice, artist
#: names too, must be a parameter for this to work).
QUICK: dict[str, dict[str, Any]] = {
    "01": {},
    "02": {"tag_examples": SYNTHETIC_ARTISTS},
    "03": {"embedding_dim": 3, "iterations": 30, "als_sweeps": 2},
    "04": {"iterations": 50, "rec_sheet": Sheet("0:3"), "fallback_sheet": Sheet("0:3"),
           "metal_sheet": Sheet("3:8"), "neighbour_queries": [Artist(0), Artist(1), Artist(2)],
           "pop_query": Artist(0), "map_labels": [Artist(4)], "map_min_listeners": 10,
           "best_k": 5},
    "05": {},
    "06": {},
    "07": {"real_data": False, "scales": [0.05], "factors": 8, "iterations": 3},
    "08": {"max_epochs": 6, "eval_every": 2, "patience": 2, "reference_models": ["ease"]},
}


def real_data_path() -> Path | None:
    """The HetRec folder named by ``LASTFM_REC_DATA``, or None when it holds no data."""
    path = os.environ.get(DATA_ENV)
    return Path(path) if path and (Path(path) / "user_artists.dat").is_file() else None


def quick_stands_for_itself(name: str) -> bool:
    """Whether the quick run of ``name`` tests more than its full run: it does when it sets
    parameters of its own (it shows they take effect), or when there is no real data."""
    return bool(QUICK[name[:2]]) or real_data_path() is None


@dataclass(frozen=True)
class Run:
    """An executed notebook: its parameters, recorded results and output folder."""

    parameters: dict[str, Any]
    results: dict[str, Any]
    folder: Path


class NotebookRuns:
    """Executes notebooks in one background worker, each ``(kind, name)`` once.

    ``env`` is the environment of every execution (taken when the run starts, so nothing a
    test sets meanwhile leaks into a kernel); quick runs get their own model cache in ``out``.
    """

    def __init__(self, out: Path, synthetic_dir: Path, env: Mapping[str, str]) -> None:
        self.out, self.synthetic_dir, self.env = out, synthetic_dir, dict(env)
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="notebooks")
        self._runs: dict[tuple[str, str], tuple[dict[str, Any], Future[Run]]] = {}
        self._names: list[str] | None = None
        self._processes: set[subprocess.Popen] = set()
        self._closed = False
        self._lock = threading.Lock()

    def start(self, kind: str, name: str) -> None:
        """Queue ``name``'s ``kind`` run unless it is queued already."""
        if (kind, name) not in self._runs:
            parameters = self.parameters(kind, name)
            self._runs[kind, name] = parameters, self._worker.submit(
                self._execute, kind, name, parameters)

    def run(self, kind: str, name: str) -> Run:
        """The ``kind`` run of ``name``, waiting for it (started now if it was not queued).

        Rather than wait for the worker, the caller executes queued runs itself: this one if
        it is still queued, else the last one queued (the worker takes the first), so that
        both cores share the last runs.
        """
        key = (kind, name)
        self.start(kind, name)
        while not self._runs[key][1].done() and any(
                self._execute_here(queued) for queued in [key, *reversed(list(self._runs))]):
            pass
        return self._runs[key][1].result()

    def _execute_here(self, key: tuple[str, str]) -> bool:
        """Execute the run ``key`` in this thread; False when it is not queued any more."""
        parameters, queued = self._runs[key]
        if not queued.cancel():
            return False
        done: Future[Run] = Future()
        self._runs[key] = parameters, done
        try:
            done.set_result(self._execute(*key, parameters))
        except Exception as error:  # kept for every test reading this run
            done.set_exception(error)
        return True

    def parameters(self, kind: str, name: str) -> dict[str, Any]:
        """The parameters injected into ``name`` for a ``kind`` run."""
        if kind == FULL:
            data = real_data_path()
            if data is None:
                raise RuntimeError(f"{name}: the full run needs {DATA_ENV}")
            return {"data_dir": str(data)}
        assert name[:2] in QUICK, f"add quick parameters for {name} to notebook_runs.QUICK"
        return {"data_dir": str(self.synthetic_dir),
                **{key: self._fill(value) for key, value in QUICK[name[:2]].items()}}

    def synthetic_names(self) -> list[str]:
        """Synthetic artist names by listeners (most first), then name."""
        if self._names is None:
            self._names = self._synthetic_artists().sort_values(
                ["listeners", "name"], ascending=[False, True])["name"].tolist()
        return self._names

    def _synthetic_artists(self) -> Any:
        from lastfm_rec import load_dataset
        from lastfm_rec.data.hetrec import DataDifferenceWarning
        from lastfm_rec.serving.session import describe_artists

        with warnings.catch_warnings():  # synthetic data is not the release, by design
            warnings.simplefilter("ignore", DataDifferenceWarning)
            return describe_artists(load_dataset(self.synthetic_dir))

    def _fill(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self._fill(v) for v in value]
        if isinstance(value, Artist):
            return self.synthetic_names()[value]
        if isinstance(value, Sheet):
            return str(self._sheet(*(int(x) for x in value.split(":"))))
        return value

    def _sheet(self, start: int, stop: int) -> Path:
        from lastfm_rec.data.sheets import write_rec_sheet

        path = self.out / "sheets" / f"likes_{start}_{stop}.csv"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            write_rec_sheet(self._synthetic_artists(), path, n=50,
                            likes=self.synthetic_names()[start:stop])
        return path

    def _execute(self, kind: str, name: str, parameters: dict[str, Any]) -> Run:
        from lastfm_rec.reports import read_results

        folder = self.out / kind / name[:2]
        env = dict(self.env)
        if kind == QUICK_RUN:
            env["LASTFM_REC_CACHE"] = str(self.out / "quick-cache")
        with self._lock:
            if self._closed:
                raise CancelledError(f"{name} ({kind} run): the session ended first")
            process = subprocess.Popen(
                [sys.executable, __file__, str(NOTEBOOKS / name), str(folder),
                 json.dumps(parameters)], env=env, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            self._processes.add(process)
        printed, _ = process.communicate()
        with self._lock:
            self._processes.discard(process)
        if process.returncode != 0:
            raise RuntimeError(f"{name} ({kind} run) failed:\n{printed[-6000:]}")
        return Run(parameters, read_results(folder / name), folder)

    def close(self) -> None:
        """Drop runs not started yet and end the one under way (a run of a selection of
        tests need not wait for notebooks it does not read)."""
        import psutil

        self._worker.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            self._closed, processes = True, list(self._processes)
        # The kernel is in a session of its own (and Spark's JVM is its child): end the whole
        # tree, not only the process that started it.
        tree = []
        for process in processes:
            with contextlib.suppress(psutil.NoSuchProcess):
                root = psutil.Process(process.pid)
                tree += [*root.children(recursive=True), root]
        for member in tree:
            with contextlib.suppress(psutil.NoSuchProcess):
                member.kill()
        psutil.wait_procs(tree, timeout=60)
        self._worker.shutdown(wait=True)


def main(argv: list[str]) -> int:
    from lastfm_rec.reports import execute_notebook

    notebook, out, parameters = argv
    execute_notebook(notebook, out, json.loads(parameters), html=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
