"""A quiet local or cluster Spark session, and the checks that Spark and Java are there.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import warnings
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


_log = logging.getLogger(__name__)

MASTER_ENV = "LASTFM_REC_SPARK_MASTER"

MEMORY_ENV = "LASTFM_REC_SPARK_MEMORY"

LOCAL_DIR_ENV = "LASTFM_REC_SPARK_LOCAL_DIR"

MIN_JAVA = 17

INSTALL_HINT = "install the Spark extra: `make install-spark` (or pip install -e '.[spark]')"

class SparkUnavailableError(RuntimeError):
    """pyspark or a Java 17+ runtime is missing; the message says how to get it."""

@dataclass(frozen=True)
class SparkSettings:
    """What a session is built from.

    Attributes
    ----------
    master
        Spark master URL: ``local[*]`` (every core here), ``local[2]``, or a cluster's
        (``spark://host:7077``, ``yarn``, ``k8s://...``).
    driver_memory
        JVM heap of the driver (in local mode it runs every task), e.g. ``"2g"``.
    local_dir
        Scratch folder for shuffle and spill files; None leaves Spark's default (/tmp).
    shuffle_partitions
        Partitions after a shuffle; small for one machine, raise it on a cluster.
    """

    master: str = "local[*]"
    driver_memory: str = "2g"
    local_dir: str | None = None
    shuffle_partitions: int = 8

    @classmethod
    def from_env(cls, **overrides: Any) -> SparkSettings:
        """Defaults, then ``LASTFM_REC_SPARK_MASTER``/``_MEMORY``/``_LOCAL_DIR``, then the
        non-None ``overrides`` (command-line options)."""
        settings = cls(master=os.environ.get(MASTER_ENV) or cls.master,
                       driver_memory=os.environ.get(MEMORY_ENV) or cls.driver_memory,
                       local_dir=os.environ.get(LOCAL_DIR_ENV) or None)
        return replace(settings, **{k: v for k, v in overrides.items() if v is not None})

def java_version() -> int:
    """Major version of the ``java`` on PATH (or under ``JAVA_HOME``).

    Raises
    ------
    SparkUnavailableError
        No Java, or one older than 17.
    """
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home, "bin", "java")) if home else shutil.which("java")
    fix = "install Java 17+ (Debian/Ubuntu: apt-get install -y openjdk-17-jre-headless)"
    if not java or not Path(java).exists():
        raise SparkUnavailableError(f"Spark needs Java {MIN_JAVA}+ but none was found: {fix}")
    output = subprocess.run([java, "-version"], capture_output=True, text=True,
                            check=False).stderr
    found = re.search(r'version "(\d+)(?:\.(\d+))?', output)
    if not found:
        raise SparkUnavailableError(f"cannot read the Java version from {java}: {fix}")
    major = int(found.group(1))
    major = int(found.group(2)) if major == 1 else major  # "1.8" is Java 8
    if major < MIN_JAVA:
        raise SparkUnavailableError(f"Spark needs Java {MIN_JAVA}+, {java} is Java {major}: {fix}")
    return major

def spark_session(settings: SparkSettings | None = None) -> SparkSession:
    """A quiet Spark session: UI and console progress off, log4j at ERROR, the JVM's own
    output in a file (:func:`jvm_log_path`), workers on this interpreter (``PYSPARK_PYTHON``).
    Returns the running session if there is one (its settings stay as they were).

    Raises
    ------
    SparkUnavailableError
        pyspark is not installed or Java 17+ is missing.
    """
    try:
        from pyspark import SparkConf, SparkContext
        from pyspark.sql import SparkSession
    except ImportError:
        raise SparkUnavailableError(f"pyspark is not installed: {INSTALL_HINT}") from None
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    java_version()
    settings = settings or SparkSettings.from_env()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    log4j = resources.files("lastfm_rec.spark").joinpath("log4j2.properties")
    # ALS's lineage grows with each iteration and Java serialises it recursively when a
    # task is sent. With the default 1 MB thread stacks a 15-iteration fit overflowed once in
    # three full test runs, on a loaded machine (interpreted frames are larger than compiled
    # ones). 16 MB stacks are reserved address space, committed only as they are used.
    java_options = f"-Dlog4j2.configurationFile={log4j} -Xss16m"
    conf = (SparkConf().setMaster(settings.master).setAppName("lastfm-rec")
            .set("spark.driver.memory", settings.driver_memory)
            .set("spark.driver.extraJavaOptions", java_options)  # local: runs the tasks
            .set("spark.ui.enabled", "false")
            .set("spark.ui.showConsoleProgress", "false")
            .set("spark.sql.shuffle.partitions", str(settings.shuffle_partitions))
            .set("spark.sql.execution.arrow.pyspark.enabled", "false"))  # toPandas, row by row
    if settings.local_dir:
        conf = conf.set("spark.local.dir", settings.local_dir)
    # pyspark 4.3 warns on every toPandas that it does not fully support pandas 3.
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas",
                            category=FutureWarning)
    session = SparkSession(SparkContext(conf=conf, gateway=_quiet_gateway(conf)))
    session.sparkContext.setLogLevel("ERROR")
    return session


def jvm_log_path() -> Path:
    """Where this process's Spark JVM writes its own output (:func:`spark_session`)."""
    return Path(tempfile.gettempdir()) / "lastfm-rec-spark" / f"jvm-{os.getpid()}.log"


def _quiet_gateway(conf: Any) -> Any:
    """The JVM Spark runs in, started with its standard output and error in
    :func:`jvm_log_path`: the JVM writes lines of its own that log4j does not see (Java's
    notice of the incubator vector module, netlib's failed search for a native BLAS), and
    they are not the package's to show. Errors still reach Python as exceptions with the
    Java stack trace."""
    from pyspark.java_gateway import launch_gateway

    path = jvm_log_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as log:  # the JVM keeps its own copy of the descriptor
        gateway = launch_gateway(conf, popen_kwargs={"stdout": log, "stderr": log})
    _log.debug("the Spark JVM writes its output to %s", path)
    return gateway
