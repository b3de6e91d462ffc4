"""A quiet local or cluster Spark session, and the checks that Spark and Java are there.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import warnings
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


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
    """A quiet Spark session: UI and console progress off, log4j at ERROR, workers on this
    interpreter (``PYSPARK_PYTHON``). Returns the running session if there is one (its
    settings stay as they were).

    Raises
    ------
    SparkUnavailableError
        pyspark is not installed or Java 17+ is missing.
    """
    try:
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
    builder = (SparkSession.builder.master(settings.master).appName("lastfm-rec")
               .config("spark.driver.memory", settings.driver_memory)
               .config("spark.driver.extraJavaOptions", java_options)  # local: runs the tasks
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.shuffle.partitions", str(settings.shuffle_partitions))
               .config("spark.sql.execution.arrow.pyspark.enabled", "false"))  # no pyarrow
    if settings.local_dir:
        builder = builder.config("spark.local.dir", settings.local_dir)
    # pyspark 4.3 warns on every toPandas that it does not fully support pandas 3.
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas",
                            category=FutureWarning)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session
