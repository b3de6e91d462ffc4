"""Shared fixtures: a seeded synthetic data set, and the real data when it is available."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lastfm_rec.data.synthetic import SyntheticSpec, generate_hetrec

IN_CI = os.environ.get("CI", "").lower() == "true"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Synthetic data is not the published release: silence that warning where it is used
    (every test but the real-data ones, where a difference from the release would matter).

    Tests about the warning see it anyway (``pytest.warns`` records every warning).
    """
    quiet = pytest.mark.filterwarnings("ignore::lastfm_rec.data.hetrec.DataDifferenceWarning")
    for item in items:
        if "real_data_dir" not in getattr(item, "fixturenames", ()):
            item.add_marker(quiet)


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small HetRec-format data set (100 users, 400 artists), the same bytes every run."""
    return generate_hetrec(tmp_path_factory.mktemp("synthetic"), SyntheticSpec(), seed=7)


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """The real HetRec files from LASTFM_REC_DATA: skipped locally without them, an error in CI."""
    path = os.environ.get("LASTFM_REC_DATA")
    if path and (Path(path) / "user_artists.dat").is_file():
        return Path(path)
    reason = f"real data not found: set LASTFM_REC_DATA to the HetRec folder (now {path!r})"
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
def spark():
    """One local Spark session for the whole run: skipped locally without pyspark or Java
    17+, an error in CI (which installs both)."""
    reason = spark_missing()
    if reason:
        if IN_CI:
            pytest.fail(reason + "; CI must run the Spark tests")
        pytest.skip(reason)
    from lastfm_rec.spark.session import SparkSettings, spark_session

    session = spark_session(SparkSettings(master="local[2]", driver_memory="1g",
                                          shuffle_partitions=4))
    yield session
    session.stop()
