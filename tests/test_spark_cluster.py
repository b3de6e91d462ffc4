"""``lastfm-rec scale fit`` on a Spark standalone cluster, and its model folder served alone.

The test starts a standalone master and one worker of the installed pyspark (its
``bin/spark-class``; nothing is downloaded) on 127.0.0.1 with free ports, runs the real
command line against ``spark://127.0.0.1:PORT`` as docs/spark.md shows it, checks through the
master's status JSON that the application ran there and finished (its tasks ran in an
executor of the worker, not in the driver), and serves the written folder with ``lastfm-rec
recommend --model-dir`` in a process that cannot import pyspark and has no data folder.
Every Spark process writes its logs and scratch files under the test's ``tmp_path`` and is
stopped with its process group whatever happens. Skipped as the other Spark tests are
(locally without pyspark or Java 17+; never in CI).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from lastfm_rec.data.hetrec import load_dataset
from lastfm_rec.data.matrices import load_study
from lastfm_rec.data.sheets import write_rec_sheet
from lastfm_rec.serving.model_dir import MODEL_FILE, TOP_N_FILE, read_parquet
from lastfm_rec.serving.session import describe_artists

pytestmark = pytest.mark.spark

ROOT = Path(__file__).resolve().parents[1]
#: Seconds to wait for the cluster to come up, and for the master to see the app finish.
START_SECONDS = 90
#: Seconds a ``lastfm-rec`` process may take (a fit on a loaded 2-core machine included).
COMMAND_SECONDS = 600


@dataclass(frozen=True)
class Cluster:
    """A running standalone cluster: its master URL, the master's status JSON address and
    the worker's folder of application work directories."""

    master: str
    status_url: str
    work_dir: Path

    def status(self) -> dict:
        with urllib.request.urlopen(self.status_url, timeout=5) as response:
            return json.load(response)

    def wait_for(self, what: str, ready, seconds: float = START_SECONDS) -> dict:
        """The master's status once ``ready(status)`` holds; fails after ``seconds``."""
        deadline, last = time.monotonic() + seconds, None
        while time.monotonic() < deadline:
            try:
                last = self.status()
                if ready(last):
                    return last
            except OSError:  # the master's web UI is not up yet
                pass
            time.sleep(0.5)
        pytest.fail(f"standalone cluster: {what} within {seconds} s; last status {last}")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (bound to port 0, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def spark_env(tmp_path: Path) -> dict[str, str]:
    """The environment of every process of the test: Spark home of the installed pyspark,
    only 127.0.0.1, and every log, work and scratch folder under ``tmp_path``."""
    import pyspark

    conf = tmp_path / "conf"
    conf.mkdir(exist_ok=True)
    # Read by the driver's spark-submit: small executors, the driver reachable on 127.0.0.1.
    (conf / "spark-defaults.conf").write_text(
        "spark.executor.memory 512m\nspark.executor.cores 1\n"
        "spark.driver.host 127.0.0.1\nspark.driver.bindAddress 127.0.0.1\n")
    folders = {name: tmp_path / name.lower() for name in
               ("SPARK_LOG_DIR", "SPARK_WORKER_DIR", "SPARK_LOCAL_DIRS", "SPARK_PID_DIR")}
    for folder in folders.values():
        folder.mkdir(exist_ok=True)
    python_path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, **{name: str(folder) for name, folder in folders.items()},
            "SPARK_HOME": str(Path(pyspark.__file__).parent), "SPARK_CONF_DIR": str(conf),
            "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_DAEMON_MEMORY": "512m",
            "TMPDIR": str(tmp_path), "PYTHONPATH": python_path}


def start(command: list[str], env: dict[str, str], log: Path, cwd: Path) -> subprocess.Popen:
    """A process in a session (process group) of its own, its output in ``log``."""
    with log.open("wb") as out:
        return subprocess.Popen(command, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)


def stop(process: subprocess.Popen) -> None:
    """End ``process`` and its process group (a worker's executors with it): TERM, then KILL."""
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:  # the group is gone
            break
        try:
            process.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture
def cluster(spark_installed: None, tmp_path: Path) -> Iterator[Cluster]:
    """A standalone master and one worker (1 core, 1 GB) on 127.0.0.1, stopped afterwards."""
    env = spark_env(tmp_path)
    spark_class = Path(env["SPARK_HOME"], "bin", "spark-class")
    port, web, worker_web = free_port(), free_port(), free_port()
    master = f"spark://127.0.0.1:{port}"
    logs = Path(env["SPARK_LOG_DIR"])
    processes = []
    try:
        processes.append(start(
            ["bash", str(spark_class), "org.apache.spark.deploy.master.Master",
             "--host", "127.0.0.1", "--port", str(port), "--webui-port", str(web)],
            env, logs / "master.log", tmp_path))
        processes.append(start(
            ["bash", str(spark_class), "org.apache.spark.deploy.worker.Worker", master,
             "--host", "127.0.0.1", "--cores", "1", "--memory", "1g", "--webui-port",
             str(worker_web), "--work-dir", env["SPARK_WORKER_DIR"]],
            env, logs / "worker.log", tmp_path))
        running = Cluster(master, f"http://127.0.0.1:{web}/json/",
                          Path(env["SPARK_WORKER_DIR"]))
        running.wait_for("no worker registered", lambda status: any(
            worker["state"] == "ALIVE" for worker in status["workers"]))
        yield running
    finally:
        for process in reversed(processes):
            stop(process)


def lastfm_rec(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    """``lastfm-rec ARGS`` (the console script's module) as a process of its own."""
    process = subprocess.Popen([sys.executable, "-m", "lastfm_rec.serving.cli", *args], env=env,
                               cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    try:
        out, err = process.communicate(timeout=COMMAND_SECONDS)
    finally:
        stop(process)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def test_scale_fit_on_a_standalone_cluster_writes_a_folder_that_serves_alone(
        cluster: Cluster, synthetic_dir: Path, tmp_path: Path) -> None:
    env = spark_env(tmp_path)
    out = tmp_path / "model"
    fitted = lastfm_rec(["scale", "fit", "--input", str(synthetic_dir), "--out", str(out),
                         "--master", cluster.master, "--driver-memory", "512m",
                         "--local-dir", env["SPARK_LOCAL_DIRS"], "--factors", "8",
                         "--iterations", "5", "--top-n", "5"], env, tmp_path)
    assert fitted.returncode == 0, fitted.stderr
    assert f"fitting ALS on {cluster.master} ..." in fitted.stderr

    status = cluster.wait_for("the application did not finish", lambda status: any(
        app["name"] == "lastfm-rec" for app in status["completedapps"]))
    (app,) = status["completedapps"]
    assert app["state"] == "FINISHED" and not status["activeapps"]
    # Its tasks ran in an executor the worker launched for it, not in the driver.
    assert (cluster.work_dir / app["id"] / "0" / "stderr").is_file()

    # Served by a process that can import neither pyspark nor the data.
    blocked = tmp_path / "no-pyspark"
    (blocked / "pyspark").mkdir(parents=True)
    (blocked / "pyspark" / "__init__.py").write_text(
        "raise ImportError('serving a model folder must not need pyspark')\n")
    serve_env = {**env, "PYTHONPATH": os.pathsep.join([str(blocked), env["PYTHONPATH"]]),
                 "LASTFM_REC_DATA": str(tmp_path / "no-data")}
    artists = describe_artists(load_dataset(synthetic_dir))
    likes = artists.sort_values("listeners", ascending=False)["name"].head(3).tolist()
    sheet = write_rec_sheet(artists, tmp_path / "likes.csv", n=50, likes=likes)
    served = lastfm_rec(["recommend", "--model-dir", str(out), "--likes", str(sheet), "-k", "4",
                         "--json"], serve_env, tmp_path)
    assert served.returncode == 0, served.stderr
    payload = json.loads(served.stdout)
    assert payload["model"] == "spark-als" and len(payload["results"]) == 4
    assert not set(likes) & {row["name"] for row in payload["results"]}

    top = read_parquet(out / TOP_N_FILE)
    user = int(top["userID"].min())
    known = lastfm_rec(["recommend", "--model-dir", str(out), "--user", str(user), "--json"],
                       serve_env, tmp_path)
    assert known.returncode == 0, known.stderr
    expected = top[top["userID"] == user].sort_values("rank")
    assert [row["a_id"] for row in json.loads(known.stdout)["results"]] == \
        expected["a_id"].tolist()
    heard = load_study(synthetic_dir).plays[int(expected["u_id"].iloc[0])].indices
    assert len(expected) == 5 and not set(expected["a_id"]) & set(heard.tolist())
    assert (out / MODEL_FILE).is_file()
