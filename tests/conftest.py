"""Shared fixtures: a seeded synthetic data set, the real data when it is available, one
Spark session, and notebook executions shared by every test that reads them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from notebook_runs import FULL, NotebookRuns, real_data_path

from lastfm_rec.data.synthetic import SyntheticSpec, generate_hetrec

IN_CI = os.environ.get("CI", "").lower() == "true"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Synthetic data is not the published release: silence that warning where it is used
    (every test but the real-data ones, where a difference from the release would matter).
    Tests about the warning see it anyway (``pytest.warns`` records every warning).

    Tests that read notebook runs (marked ``notebook``) go last, in their order: the
    notebooks execute in the background meanwhile (:func:`notebooks_ahead`).
    """
    quiet = pytest.mark.filterwarnings("ignore::lastfm_rec.data.hetrec.DataDifferenceWarning")
    for item in items:
        if "real_data_dir" not in getattr(item, "fixturenames", ()):
            item.add_marker(quiet)
    items.sort(key=lambda item: item.get_closest_marker("notebook") is not None)


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small HetRec-format data set (100 users, 400 artists), the same bytes every run."""
    return generate_hetrec(tmp_path_factory.mktemp("synthetic"), SyntheticSpec(), seed=7)


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """The real HetRec files from LASTFM_REC_DATA: skipped locally without them, an error in CI."""
    path = real_data_path()
    if path is not None:
        return path
    reason = ("real data not found: set LASTFM_REC_DATA to the HetRec folder "
              f"(now {os.environ.get('LASTFM_REC_DATA')!r})")
    if IN_CI:
        pytest.fail(reason + "; CI must run the real-data tests")
    pytest.skip(reason)


def spark_missing() -> str | None:
    """Why Spark cannot run here (pyspark or Java 17+ missing), or None when it can."""
    from lastfm_rec.spark.session import SparkUnavailableError, java_version

    try:
        import pyspark  # noqa: F401

        java_version()
    except ImportError:
        return "pyspark is not installed: run `make install-spark`"
    except SparkUnavailableError as exc:
        return str(exc)
    return None


@pytest.fixture(scope="session")
def spark_installed() -> None:
    """pyspark and Java 17+ are here: skipped locally without them, an error in CI (which
    installs both)."""
    reason = spark_missing()
    if reason:
        if IN_CI:
            pytest.fail(reason + "; CI must run the Spark tests")
        pytest.skip(reason)


@pytest.fixture(scope="session")
def spark(spark_installed: None):
    """One local Spark session for the whole run (skipped or failed as
    :func:`spark_installed`)."""
    from lastfm_rec.spark.session import SparkSettings, spark_session

    session = spark_session(SparkSettings(master="local[2]", driver_memory="1g",
                                          shuffle_partitions=4))
    yield session
    session.stop()


@pytest.fixture(scope="session")
def notebooks(synthetic_dir: Path, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[NotebookRuns]:
    """Notebook executions, each ``(kind, name)`` once per run (``notebook_runs``)."""
    runs = NotebookRuns(tmp_path_factory.mktemp("notebooks"), synthetic_dir, os.environ)
    yield runs
    runs.close()


@pytest.fixture(scope="session", autouse=True)
def notebooks_ahead(request: pytest.FixtureRequest) -> None:
    """Start, when the session starts, every notebook run a selected test reads (its
    ``notebook(kind, name)`` marks), so they execute while the other tests run. A run that
    cannot work here (no real data, no Spark) is left to its test, which skips or fails."""
    marked = [item for item in request.session.items if item.get_closest_marker("notebook")]
    if any(item.get_closest_marker("spark") for item in marked) and spark_missing():
        marked = [item for item in marked if not item.get_closest_marker("spark")]
    wanted = dict.fromkeys(mark.args for item in marked for mark in item.iter_markers("notebook")
                           if mark.args[0] != FULL or real_data_path() is not None)
    if wanted:
        runs = request.getfixturevalue("notebooks")
        for kind, name in wanted:
            runs.start(kind, name)
