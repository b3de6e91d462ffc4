"""Measured subprocesses: the runner, the worker protocol and the child environment.

Each measured process is a subprocess waited for with ``os.wait4``, whose ``ru_maxrss`` is
the peak resident memory of the process and of the descendants it waited for (notebook
kernels). A *worker* is a function of :mod:`bench.workers` run in such a subprocess: its
parameters go in as JSON on the command line, its numbers come back as a JSON file, and
:meth:`Runner.work` adds the wall time, CPU time and peak RSS of its process.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.report import write_json

ROOT = Path(__file__).resolve().parents[1]
WORKER_SCRIPT = Path(__file__).resolve().with_name("workers.py")
#: Steps whose run takes longer than this are not repeated (a median of 3 would cost minutes).
LONG_RUN_SECONDS = 20.0
#: Seconds before a measured subprocess is killed (``--timeout``).
CHILD_TIMEOUT = 3600
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
               "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")

Worker = Callable[[dict], dict]


class ChildFailed(RuntimeError):
    """A measured subprocess exited with a non-zero status (its log's tail in the message)."""


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """``(seconds, fn())``, timed with ``time.perf_counter``."""
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def rss_mb() -> dict[str, float]:
    """Peak RSS so far of this process and of its waited-for children, in MB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"self_peak_mb": own, "children_peak_mb": children}


def child_env(data_dir: Path, cache_dir: Path, threads: int) -> dict[str, str]:
    """The environment of every measured process.

    ``LASTFM_REC_DATA`` points at ``data_dir`` (notebooks find the data through it),
    ``LASTFM_REC_CACHE`` at ``cache_dir`` (serving starts from an empty cache), and each
    BLAS/OpenMP library gets ``threads`` threads (0 leaves the libraries' defaults).
    """
    env = dict(os.environ)
    env["LASTFM_REC_DATA"] = str(data_dir)
    env["LASTFM_REC_CACHE"] = str(cache_dir)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("MPLBACKEND", "Agg")
    if threads:
        for name in THREAD_VARS:
            env[name] = str(threads)
    return env


#: Interval of the process-tree RSS samples.
TREE_SAMPLE_SECONDS = 0.1


class TreeSampler:
    """Samples, in a thread, the summed RSS of process ``pid`` and its descendants; the
    largest sum (MB) is ``peak_mb`` once :meth:`stop` returns, the largest RSS of ``pid``
    alone ``root_peak_mb`` and the largest sum of its descendants' ``children_peak_mb``."""

    def __init__(self, pid: int) -> None:
        import psutil

        self.peak_mb = self.root_peak_mb = self.children_peak_mb = 0.0
        self.done = threading.Event()
        try:
            self.root = psutil.Process(pid)
        except psutil.NoSuchProcess:  # finished before the first sample
            self.root = None
            return
        self.thread = threading.Thread(target=self.sample, daemon=True)
        self.thread.start()

    def sample(self) -> None:
        import psutil

        while not self.done.wait(TREE_SAMPLE_SECONDS):
            children = 0
            try:
                root = self.root.memory_info().rss
                for process in self.root.children(recursive=True):
                    with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                        children += process.memory_info().rss
            except psutil.NoSuchProcess:  # the root ended between two samples
                return
            self.peak_mb = max(self.peak_mb, (root + children) / 2**20)
            self.root_peak_mb = max(self.root_peak_mb, root / 2**20)
            self.children_peak_mb = max(self.children_peak_mb, children / 2**20)

    def stop(self) -> None:
        self.done.set()
        if self.root is not None:
            self.thread.join()


class Runner:
    """Runs measured subprocesses one at a time, logging their output under ``workdir``."""

    def __init__(self, workdir: Path, env: dict[str, str], timeout: int) -> None:
        self.workdir = workdir
        self.logs = workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.env = env
        self.timeout = timeout
        self.count = 0

    def run(self, cmd: Sequence[str], label: str, cwd: Path = ROOT) -> dict:
        """Run ``cmd``; wall time, CPU time and peak RSS (MB) from ``os.wait4`` (the largest
        single process of the tree), and ``tree_peak_rss_mb``: the largest sum of the RSS of
        the process and all its descendants at one moment (sampled every
        :data:`TREE_SAMPLE_SECONDS`), what the machine must hold when processes run at once,
        and of the same samples ``root_peak_rss_mb`` (the process alone) and
        ``children_peak_rss_mb`` (its descendants, e.g. a Spark driver's JVM).

        Raises
        ------
        ChildFailed
            The process exited with a non-zero status (or was killed after the timeout).
        """
        self.count += 1
        log_path = self.logs / f"{self.count:03d}-{label}.log"
        with log_path.open("wb") as log:
            start = time.perf_counter()
            proc = subprocess.Popen(list(cmd), stdout=log, stderr=subprocess.STDOUT,
                                    env=self.env, cwd=cwd, stdin=subprocess.DEVNULL)
            timer = threading.Timer(self.timeout, proc.kill)
            timer.start()
            tree = TreeSampler(proc.pid)
            try:
                _, status, usage = os.wait4(proc.pid, 0)
            except BaseException:
                proc.kill()
                os.waitpid(proc.pid, 0)
                raise
            finally:
                timer.cancel()
                tree.stop()
            wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        result = {"wall_seconds": wall, "peak_rss_mb": usage.ru_maxrss / 1024,
                  "tree_peak_rss_mb": max(tree.peak_mb, usage.ru_maxrss / 1024),
                  "root_peak_rss_mb": tree.root_peak_mb,
                  "children_peak_rss_mb": tree.children_peak_mb,
                  "cpu_seconds": usage.ru_utime + usage.ru_stime, "log": str(log_path)}
        if proc.returncode != 0:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-15:]
            raise ChildFailed(f"{label} exited with status {proc.returncode} after "
                              f"{wall:.1f} s; last lines of {log_path}:\n  "
                              + "\n  ".join(tail))
        return result

    def work(self, name: str, params: dict, label: str | None = None) -> dict:
        """One worker run: its own numbers plus the wait4 measures of its process."""
        result_path = self.workdir / f"result-{self.count + 1:03d}.json"
        measured = self.run([sys.executable, str(WORKER_SCRIPT), name,
                             "--params", json.dumps(params), "--result", str(result_path)],
                            label or name)
        out = json.loads(result_path.read_text())
        result_path.unlink()
        out.update(measured)
        return out

    def repeat(self, name: str, params: Callable[[int], dict], repeats: int,
               label: str) -> dict:
        """Up to ``repeats`` worker runs (one only if it takes over ``LONG_RUN_SECONDS``):
        medians of every number, peak RSS the largest."""
        runs = [self.work(name, params(0), f"{label}-1")]
        while len(runs) < repeats and runs[0]["wall_seconds"] <= LONG_RUN_SECONDS:
            runs.append(self.work(name, params(len(runs)), f"{label}-{len(runs) + 1}"))
        summary: dict[str, Any] = {"repeats": len(runs)}
        for key, value in runs[0].items():
            values = [r[key] for r in runs]
            if isinstance(value, bool) or not isinstance(value, int | float):
                summary[key] = value
            elif key == "peak_rss_mb" or key.endswith("_peak_mb"):
                summary[key] = max(values)
            else:
                summary[key] = statistics.median(values)
        if len(runs) > 1:
            summary["seconds_all"] = [r.get("seconds", r["wall_seconds"]) for r in runs]
        return summary


def serve(workers: Mapping[str, Worker], argv: Sequence[str] | None = None) -> int:
    """The child's side of the protocol: ``workers.py NAME --params JSON --result PATH``.

    Runs ``workers[NAME]`` on the parameters and writes its numbers, plus this process's
    final peak RSS (``final_self_peak_mb``, ``final_children_peak_mb``), to ``PATH``.
    """
    parser = argparse.ArgumentParser(description="Run one bench worker (used by bench/run.py).")
    parser.add_argument("name", choices=sorted(workers))
    parser.add_argument("--params", required=True, help="the worker's parameters, as JSON")
    parser.add_argument("--result", required=True, type=Path, help="JSON file to write")
    args = parser.parse_args(argv)
    out = workers[args.name](json.loads(args.params))
    out.update({f"final_{k}": v for k, v in rss_mb().items()})
    write_json(args.result, out, indent=None)
    return 0
