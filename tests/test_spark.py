"""The Spark back end: preprocessing equal to pandas, MLlib ALS as a registered model, the
``scale fit`` command and notebook 07.

One local Spark session serves the whole run (the ``spark`` fixture of conftest.py): these
tests skip with a reason without pyspark or Java 17+, and fail in CI, which installs both.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from notebook_runs import QUICK_RUN

from lastfm_rec.data.hetrec import load_dataset
from lastfm_rec.data.matrices import load_study
from lastfm_rec.data.preprocessing import prepare
from lastfm_rec.data.sheets import write_rec_sheet
from lastfm_rec.evaluation.ranking import evaluate
from lastfm_rec.evaluation.splits import holdout_split
from lastfm_rec.files import read_model_file
from lastfm_rec.models import EXTRAS, create
from lastfm_rec.models.base import Recommender
from lastfm_rec.reports import read_results
from lastfm_rec.serving import model_dir
from lastfm_rec.serving.cli import main
from lastfm_rec.serving.session import describe_artists
from lastfm_rec.spark import als, io, preprocessing, session

pytestmark = pytest.mark.spark

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "07_scaling_out.ipynb"
RATING_COLUMNS = ["userID", "artistID", "weight", "w_mm", "u_id", "a_id"]
ARTIST_COLUMNS = ["artistID", "name", "a_id", "top3_tags", "top1_tags", "popularity_score",
                  "listeners"]


def _collect(frame, columns, order) -> pd.DataFrame:
    rows = frame.select(*columns).orderBy(*order).collect()
    return pd.DataFrame([row.asDict() for row in rows], columns=columns)


def _assert_same_as_pandas(spark, source: Path, expected_dir: Path) -> preprocessing.SparkPrepared:
    prepared = preprocessing.prepare(spark, str(source))
    reference = prepare(load_dataset(expected_dir))
    assert prepared.rows_removed == reference.rows_removed
    assert prepared.scaler == reference.scaler
    assert (prepared.n_users, prepared.n_artists) == (reference.n_users, reference.n_artists)
    ratings = _collect(prepared.ratings, RATING_COLUMNS, ["u_id", "a_id"])
    expected = reference.ratings[RATING_COLUMNS].sort_values(["u_id", "a_id"]).reset_index(
        drop=True)
    pd.testing.assert_frame_equal(ratings, expected, check_dtype=False, rtol=1e-15)
    artists = _collect(prepared.artists, ARTIST_COLUMNS, ["a_id"])
    pd.testing.assert_frame_equal(artists, reference.artists[ARTIST_COLUMNS],
                                  check_dtype=False, rtol=1e-12)
    return prepared


# --------------------------------------------------------------------------- preprocessing

@pytest.mark.realdata
def test_preprocessing_equals_pandas_on_the_real_data(spark, real_data_dir) -> None:
    prepared = _assert_same_as_pandas(spark, real_data_dir, real_data_dir)
    assert prepared.threshold == pytest.approx(7228.01)
    assert prepared.rows_removed == 929
    assert prepared.ratings.count() == 91_905


def test_preprocessing_equals_pandas_on_synthetic_tsv_and_parquet(spark, synthetic_dir,
                                                                  tmp_path) -> None:
    _assert_same_as_pandas(spark, synthetic_dir, synthetic_dir)
    io.write_parquet(spark, synthetic_dir, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"{name}.parquet" for name in io.TABLES)
    _assert_same_as_pandas(spark, tmp_path, synthetic_dir)
    only_rows = preprocessing.prepare(spark, str(tmp_path / "user_artists.parquet"))
    assert only_rows.ratings.count() == len(prepare(load_dataset(synthetic_dir)).ratings)


def test_exact_percentile_matches_numpy(spark) -> None:
    weights = np.random.default_rng(3).integers(1, 10_000, 501)
    frame = spark.createDataFrame([(int(w),) for w in weights], "weight BIGINT")
    for q in (0.5, 0.9, 0.99, 1.0):
        assert preprocessing.outlier_threshold(frame, q) == pytest.approx(np.quantile(weights, q),
                                                                rel=1e-12)


def test_reading_errors_name_the_fix(tmp_path) -> None:
    with pytest.raises(ValueError, match="unknown table 'nope'"):
        io.read_table(None, tmp_path, "nope")
    with pytest.raises(ValueError, match=r"neither user_artists\.dat nor user_artists\.parquet"):
        io.read_table(None, tmp_path)
    with pytest.raises(ValueError, match="is not a folder"):
        io.read_table(None, tmp_path / "missing")
    with pytest.raises(ValueError, match="tags needs a folder"):
        io.read_table(None, tmp_path / "rows.parquet", "tags")


def test_settings_come_from_env_then_options(monkeypatch) -> None:
    monkeypatch.setenv(session.MASTER_ENV, "spark://head:7077")
    monkeypatch.setenv(session.MEMORY_ENV, "8g")
    settings = session.SparkSettings.from_env(driver_memory=None, local_dir="/scratch")
    assert settings == session.SparkSettings("spark://head:7077", "8g", "/scratch")
    assert session.SparkSettings.from_env(master="local[2]").master == "local[2]"


def test_missing_java_is_one_clear_error(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    with pytest.raises(session.SparkUnavailableError, match="openjdk-17-jre-headless"):
        session.java_version()


# --------------------------------------------------------------------------- spark-als

SMALL = {"factors": 8, "regularization": 0.05, "alpha": 5.0, "iterations": 10}


def test_a_long_als_fit_does_not_overflow_the_drivers_stack(spark) -> None:
    # ALS's lineage is serialised recursively with each task: 60 iterations overflowed the
    # default 1 MB thread stacks on every try; the session's 16 MB stacks take them.
    rng = np.random.default_rng(0)
    plays = sp.csr_matrix((rng.random((60, 40)) < 0.2) * rng.integers(1, 30, (60, 40)),
                          dtype=np.float64)
    model = create("spark-als", iterations=60, factors=4).fit(plays, show_progress=False)
    assert model.item_factors.shape == (40, 4) and np.isfinite(model.item_factors).all()


@pytest.fixture(scope="module")
def synthetic_split(synthetic_dir):
    study = load_study(synthetic_dir)
    return holdout_split(study.plays, seed=42)


@pytest.fixture(scope="module")
def spark_als(spark, synthetic_split) -> Recommender:
    return create("spark-als", **SMALL).fit(synthetic_split[0])


def test_spark_als_is_registered_as_an_extra() -> None:
    assert EXTRAS == {"spark-als": "spark"}
    assert create("spark-als").get_params()["factors"] == 64


def test_fold_in_reproduces_the_factors_spark_learnt(spark_als, synthetic_split) -> None:
    train = synthetic_split[0]
    folded = spark_als.user_vectors(train)
    assert folded.shape == spark_als.user_factors.shape
    np.testing.assert_allclose(folded, spark_als.user_factors, atol=2e-3, rtol=2e-3)


def test_spark_als_saves_and_loads(spark_als, synthetic_split, tmp_path) -> None:
    spark_als.save(tmp_path / "m.npz")
    loaded = Recommender.load(tmp_path / "m.npz")
    train = synthetic_split[0]
    np.testing.assert_array_equal(loaded.recommend(np.arange(5), train[:5])[0],
                                  spark_als.recommend(np.arange(5), train[:5])[0])


def test_spark_als_ranks_as_well_as_implicit_on_synthetic(spark_als, synthetic_split) -> None:
    train, test = synthetic_split
    implicit = create("als", factors=8, regularization=1.0, alpha=5.0, iterations=10).fit(train)
    ours, theirs = evaluate(spark_als, train, test), evaluate(implicit, train, test)
    popularity = evaluate(create("popularity").fit(train), train, test)
    assert ours["ndcg@10"] > popularity["ndcg@10"]
    assert ours["ndcg@10"] >= 0.9 * theirs["ndcg@10"]


def test_fit_from_a_dataframe_is_seeded_and_ranks_on_spark(spark, spark_als, synthetic_split,
                                                           tmp_path) -> None:
    """The same rows as a DataFrame give the factors and listener counts of the matrix fit
    (same seed), and the top-N computed on Spark is the factor ranking without the heard
    artists."""
    train = synthetic_split[0]
    coo = train.tocoo()
    frame = spark.createDataFrame(
        list(zip(coo.row.tolist(), coo.col.tolist(), coo.data.astype(int).tolist(),
                 strict=True)), "u_id INT, a_id INT, weight BIGINT")
    model = create("spark-als", **SMALL).fit_frame(frame, *train.shape)
    np.testing.assert_allclose(model.item_factors, spark_als.item_factors, rtol=1e-4,
                               atol=1e-5)
    assert model.train_ is None  # the rows stayed on Spark
    np.testing.assert_array_equal(model.item_listeners_, spark_als.item_listeners_)
    als.recommend_to_parquet(model.spark_model_, frame, 5, tmp_path / "top")
    top = _collect(spark.read.parquet(str(tmp_path / "top")), ["u_id", "rank", "a_id", "score"],
                   ["u_id", "rank"])
    ids, scores = model.recommend(np.arange(train.shape[0]), train, N=5)
    assert len(top) == ids.size
    np.testing.assert_allclose(top["score"], scores.ravel(), rtol=1e-4, atol=1e-5)
    assert (top["a_id"].to_numpy() == ids.ravel()).mean() > 0.97  # float32 near-ties aside


# --------------------------------------------------------------------------- command

@pytest.fixture(scope="module")
def model_folder(spark, synthetic_dir, tmp_path_factory) -> Path:
    """``scale fit --top-n 3`` of the synthetic data, in this process's Spark session."""
    out = tmp_path_factory.mktemp("scale") / "model"
    assert main(["scale", "fit", "--input", str(synthetic_dir), "--out", str(out),
                 "--factors", "8", "--iterations", "5", "--top-n", "3"]) == 0
    return out


@pytest.fixture
def no_data_folder(monkeypatch, tmp_path) -> None:
    """Serving finds no HetRec folder: LASTFM_REC_DATA and the default path lead nowhere."""
    monkeypatch.setenv("LASTFM_REC_DATA", str(tmp_path / "no-data"))
    monkeypatch.chdir(tmp_path)


def _likes_sheet(synthetic_dir: Path, path: Path, n: int = 3) -> tuple[Path, list[str]]:
    artists = describe_artists(load_dataset(synthetic_dir))
    likes = artists.sort_values("listeners", ascending=False)["name"].head(n).tolist()
    return write_rec_sheet(artists, path, n=50, likes=likes), likes


def test_scale_fit_writes_a_model_folder_without_the_rows(model_folder, synthetic_dir) -> None:
    study = load_study(synthetic_dir)
    content = read_model_file(model_folder / model_dir.MODEL_FILE)
    assert not [name for name in content.arrays if "train_" in name]  # no play matrix
    assert content.meta[model_dir.LIKE_PLAYS] == np.median(study.plays.data)
    model = Recommender.load(model_folder / model_dir.MODEL_FILE)
    assert (model.n_users, model.n_items) == study.plays.shape and model.train_ is None
    np.testing.assert_array_equal(model.item_listeners_,
                                  np.bincount(study.plays.indices, minlength=model.n_items))
    artists = model_dir.read_parquet(model_folder / model_dir.ARTISTS_FILE).sort_values("a_id")
    expected = describe_artists(load_dataset(synthetic_dir))
    assert artists["a_id"].tolist() == list(range(model.n_items))
    assert artists["artistID"].tolist() == study.artists.ids.tolist()
    assert artists["name"].tolist() == expected["name"].tolist()
    top = model_dir.read_parquet(model_folder / model_dir.TOP_N_FILE)
    assert len(top) == 3 * model.n_users
    assert set(top["userID"]) == set(study.users.ids.tolist())
    np.testing.assert_array_equal(np.sort(study.users.to_index(top["userID"].to_numpy())),
                                  np.sort(top["u_id"].to_numpy()))


def test_recommend_serves_a_model_folder_without_the_data(model_folder, synthetic_dir,
                                                          tmp_path, monkeypatch,
                                                          capsys) -> None:
    """``--model-dir`` needs no HetRec folder, and answers as ``--model-file`` with the data
    (the same factors, artists and median play count)."""
    sheet, likes = _likes_sheet(synthetic_dir, tmp_path / "likes.csv")
    capsys.readouterr()
    assert main(["recommend", "--data-dir", str(synthetic_dir), "--model-file",
                 str(model_folder / model_dir.MODEL_FILE), "--likes", str(sheet), "-k", "4",
                 "--json"]) == 0
    with_data = json.loads(capsys.readouterr().out)
    monkeypatch.setenv("LASTFM_REC_DATA", str(tmp_path / "no-data"))
    monkeypatch.chdir(tmp_path)
    assert main(["recommend", "--model-dir", str(model_folder), "--likes", str(sheet),
                 "-k", "4", "--json"]) == 0
    alone = json.loads(capsys.readouterr().out)
    assert alone["model"] == "spark-als" and len(alone["results"]) == 4
    assert not set(likes) & {row["name"] for row in alone["results"]}
    assert alone["results"] == with_data["results"]


def test_recommend_serves_a_known_user_from_top_n(model_folder, synthetic_dir, no_data_folder,
                                                  capsys) -> None:
    top = model_dir.read_parquet(model_folder / model_dir.TOP_N_FILE)
    user = int(top["userID"].iloc[0])
    expected = top[top["userID"] == user].sort_values("rank")
    assert main(["recommend", "--model-dir", str(model_folder), "--user", str(user), "-k",
                 "5", "--json"]) == 0
    captured = capsys.readouterr()
    payload = json.loads(captured.out)
    assert [row["a_id"] for row in payload["results"]] == expected["a_id"].tolist()
    np.testing.assert_allclose([row["score"] for row in payload["results"]],
                               expected["score"], rtol=1e-6)
    heard = load_study(synthetic_dir).plays[int(expected["u_id"].iloc[0])].indices
    assert not set(expected["a_id"]) & set(heard.tolist())
    assert "holds the best 3 artists of each user" in captured.err  # -k 5 > --top-n 3


def test_model_folder_errors_say_what_to_do(model_folder, tmp_path, no_data_folder,
                                            capsys) -> None:
    assert main(["recommend", "--model-dir", str(model_folder), "--user", "999999"]) == 2
    assert "no user '999999' in" in capsys.readouterr().err
    assert main(["recommend", "--model-dir", str(model_folder), "--user", "x"]) == 2
    assert "whole-number ids" in capsys.readouterr().err
    without_top = tmp_path / "no-top"
    shutil.copytree(model_folder, without_top, ignore=shutil.ignore_patterns("top_n*"))
    assert main(["recommend", "--model-dir", str(without_top), "--user", "2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "rerun `lastfm-rec scale fit --top-n N" in err
    assert main(["recommend", "--model-dir", str(tmp_path / "nowhere"), "--user", "2"]) == 2
    assert "model folder" in capsys.readouterr().err
    (without_top / model_dir.MODEL_FILE).unlink()
    assert main(["recommend", "--model-dir", str(without_top), "--user", "2"]) == 2
    assert "has no spark-als.npz" in capsys.readouterr().err


def test_scale_fit_prints_only_the_packages_lines(spark, synthetic_dir, tmp_path) -> None:
    """The JVM's own lines (Java's incubator-module notice, netlib's failed search for a
    native BLAS) go to the JVM's log file, not to the terminal. A process of its own: the
    JVM is started once per process."""
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    process = subprocess.Popen(
        [sys.executable, "-m", "lastfm_rec.serving.cli", "scale", "fit", "--input",
         str(synthetic_dir), "--out", str(tmp_path / "out"), "--factors", "4",
         "--iterations", "2", "--master", "local[1]"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err
    assert re.fullmatch(r"\d+ users x \d+ artists \(\d+ rows trimmed\); fitting ALS on "
                        r"local\[1\] \.\.\.\n", err), err
    assert out.startswith("model folder written to ")
    jvm_log = tmp_path / "lastfm-rec-spark" / f"jvm-{process.pid}.log"
    assert "jdk.incubator.vector" in jvm_log.read_text()  # where the JVM's notice went


def test_recommend_rejects_a_model_of_other_data(tmp_path, synthetic_dir, capsys) -> None:
    model = create("popularity").fit(load_study(synthetic_dir).plays[:, :10])
    model.save(tmp_path / "m.npz")
    artists = describe_artists(load_dataset(synthetic_dir))
    likes = artists.sort_values("listeners", ascending=False)["name"].head(2).tolist()
    sheet = write_rec_sheet(artists, tmp_path / "likes.csv", n=20, likes=likes)
    assert main(["recommend", "--data-dir", str(synthetic_dir), "--model-file",
                 str(tmp_path / "m.npz"), "--likes", str(sheet)]) == 2
    assert "scores 10 artists" in capsys.readouterr().err


# --------------------------------------------------------------------------- notebook 07

@pytest.mark.slow
@pytest.mark.notebook(QUICK_RUN, NOTEBOOK.name)
def test_notebook_runs_with_quick_parameters(spark, notebooks) -> None:
    """Notebook 07 with ``notebook_runs.QUICK["07"]``; its kernel is a process of its own,
    with a Spark session of its own (a JVM is not shared between processes)."""
    results = notebooks.run(QUICK_RUN, NOTEBOOK.name).results
    assert (results["scales"], results["factors"]) == ([0.05], 8)
    assert set(results["ndcg10"]) == {"0.05x spark-als", "0.05x als (implicit)"}
    assert all(value > 0 for value in results["ndcg10"].values())
    assert results["jvm_peak_mb"]["0.05x spark-als"] > 100  # the JVM is measured too


def test_recorded_results_of_notebook_07_hold_its_claims() -> None:
    """The committed run (``make run-spark``, real data plus 1x and 10x synthetic data)."""
    r = read_results(NOTEBOOK)
    assert r["real_data"] and r["scales"] == [1, 10]
    prep = r["preprocessing"]
    assert (prep["rows_removed"], prep["rows_left"]) == (929, 91_905)
    assert prep["threshold"] == pytest.approx(7228.01)
    assert prep["ratings_equal"] and prep["artists_equal"]
    real = r["real_ndcg10"]
    assert real["spark-als"] == pytest.approx(real["als (implicit)"], rel=0.03)
    assert r["rows"]["10x spark-als"] > 9 * r["rows"]["1x spark-als"]
    for scale in r["scales"]:  # settings tuned on the real data: the synthetic gap is wider
        spark_ndcg, implicit_ndcg = (r["ndcg10"][f"{scale}x {e}"]
                                     for e in ("spark-als", "als (implicit)"))
        assert 0.75 < spark_ndcg / implicit_ndcg < 1.33
        assert r["fit_seconds"][f"{scale}x spark-als"] > r["fit_seconds"][
            f"{scale}x als (implicit)"]  # honest: slower on one machine
        assert r["peak_mb"][f"{scale}x spark-als"] > r["peak_mb"][f"{scale}x als (implicit)"]
