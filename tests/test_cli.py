"""The installed ``lastfm-rec`` command, run in subprocesses as a user would."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from lastfm_rec import load_dataset, prepare
from lastfm_rec.data.sheets import write_rec_sheet

EXAMPLE_SHEET = Path(__file__).resolve().parent.parent / "rec_sheets" / "example_artists.csv"
METAL_SHEET = EXAMPLE_SHEET.with_name("metal_artists.csv")
METAL_LIKES = {"Metallica", "Slayer", "Megadeth", "Pantera", "Sepultura"}
COMMAND = shutil.which("lastfm-rec", path=str(Path(sys.executable).parent))


def run(*args: str, cache: Path, data_dir: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "LASTFM_REC_CACHE": str(cache)}
    extra = ["--data-dir", str(data_dir)] if data_dir else []
    argv = [COMMAND, *args[:1], *extra, *args[1:]] if args and args[0] != "--help" else [
        COMMAND, *args]
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300,
                          check=False)


def assert_usage_error(result: subprocess.CompletedProcess, fragment: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.strip().splitlines()
             if "differ from the published release" not in line]  # synthetic data
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert fragment in lines[0]
    assert "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def artists(synthetic_dir):
    return prepare(load_dataset(synthetic_dir)).artists


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture()
def sheet(tmp_path, artists) -> Path:
    likes = artists.sort_values("listeners", ascending=False)["name"].head(3).tolist()
    return write_rec_sheet(artists, tmp_path / "likes.csv", n=50, likes=likes)


def test_command_is_installed() -> None:
    assert COMMAND is not None, "lastfm-rec is not on the environment's PATH"


def test_help_answers_without_importing_heavy_libraries() -> None:
    result = run("--help", cache=Path("/nonexistent"))
    assert result.returncode == 0
    for command in ("data", "recommend", "artists", "neighbors", "evaluate", "models", "cache"):
        assert command in result.stdout
    probe = ("import sys; from lastfm_rec.serving.cli import build_parser; build_parser(); "
             "print(sorted(m for m in ('tensorflow', 'pandas', 'implicit') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True)
    assert loaded.stdout.strip() == "[]"


def test_recommend_json_excludes_likes_and_is_cached(synthetic_dir, sheet, artists,
                                                     cache) -> None:
    first = run("recommend", "--likes", str(sheet), "-k", "7", "--json", cache=cache,
                data_dir=synthetic_dir)
    assert first.returncode == 0, first.stderr
    assert "training als" in first.stderr
    payload = json.loads(first.stdout)
    names = [row["name"] for row in payload["results"]]
    assert len(names) == 7
    liked = set(artists.sort_values("listeners", ascending=False)["name"].head(3))
    assert not liked & set(names)
    scores = [row["score"] for row in payload["results"]]
    assert scores == sorted(scores, reverse=True)
    assert len(list(cache.glob("als-*.npz"))) == 1
    second = run("recommend", "--likes", str(sheet), "-k", "7", "--json", cache=cache,
                 data_dir=synthetic_dir)
    assert second.returncode == 0, second.stderr
    assert "training" not in second.stderr
    assert json.loads(second.stdout)["results"] == payload["results"]


def test_recommend_parses_each_data_file_once(synthetic_dir, sheet, tmp_path) -> None:
    # The command in a process that counts the .dat files parsed (stderr's last line).
    probe = ("import sys; from lastfm_rec.data import hetrec; parsed = []; "
             "read = hetrec._read_table; "
             "hetrec._read_table = lambda folder, table: parsed.append(table.file) or "
             "read(folder, table); from lastfm_rec.serving.cli import main; "
             "status = main(sys.argv[1:]); print(sorted(parsed), file=sys.stderr); "
             "sys.exit(status)")
    argv = [sys.executable, "-c", probe, "recommend", "--data-dir", str(synthetic_dir),
            "--likes", str(sheet), "--model", "popularity", "--json"]
    env = {**os.environ, "LASTFM_REC_CACHE": str(tmp_path / "cache")}
    for call in ("fits and caches", "reads the cache"):
        result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300,
                                check=False)
        assert result.returncode == 0, result.stderr
        parsed = result.stderr.strip().splitlines()[-1]
        assert parsed == str(sorted(f.name for f in synthetic_dir.glob("*.dat"))), call


@pytest.mark.parametrize("measure", ["dot", "cosine"])
def test_neighbors_with_a_measure_start_with_the_artist(synthetic_dir, artists, cache,
                                                        measure) -> None:
    name = artists.sort_values("listeners", ascending=False)["name"].iloc[0]
    result = run("neighbors", name.upper(), "-k", "4", "--measure", measure, "--json",
                 cache=cache, data_dir=synthetic_dir)
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["query"] == name
    assert len(payload["results"]) == 4
    if measure == "cosine":
        assert payload["results"][0]["name"] == name
        assert payload["results"][0]["score"] == pytest.approx(1.0)


def test_table_output_for_another_model(synthetic_dir, sheet, cache) -> None:
    result = run("recommend", "--likes", str(sheet), "--model", "popularity", cache=cache,
                 data_dir=synthetic_dir)
    assert result.returncode == 0, result.stderr
    assert "model popularity" in result.stdout
    assert len(result.stdout.strip().splitlines()) == 2 + 10


@pytest.mark.parametrize(("content", "fragment"), [
    (None, "does not exist"),
    ("artist,Like\nX,1\n", "lacks the column(s) name"),
    ("name,Like\nX,\n", "likes no artist"),
    ("name,Like\nX,2\n", "Like must be 1 or blank"),
    ("name,Like\nArtist 99999999,1\n", "is not in the data"),
])
def test_bad_sheets(synthetic_dir, tmp_path, cache, content, fragment) -> None:
    path = tmp_path / "sheet.csv"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    result = run("recommend", "--likes", str(path), "--model", "popularity", cache=cache,
                 data_dir=synthetic_dir)
    assert_usage_error(result, fragment)


def test_unknown_artist_suggests_close_names(synthetic_dir, artists, cache) -> None:
    name = artists["name"].iloc[5]
    result = run("neighbors", name[:-1] + "x", "--model", "popularity", cache=cache,
                 data_dir=synthetic_dir)
    assert_usage_error(result, "close names:")


def test_sheet_liking_every_artist(synthetic_dir, artists, tmp_path, cache) -> None:
    path = write_rec_sheet(artists, tmp_path / "all.csv", n=len(artists),
                           likes=artists["name"].tolist())
    result = run("recommend", "--likes", str(path), "--model", "popularity", cache=cache,
                 data_dir=synthetic_dir)
    assert_usage_error(result, "nothing left to recommend")


@pytest.mark.parametrize(("args", "fragment"), [
    (["recommend", "--likes", "x.csv", "-k", "0"], "must be at least 1"),
    (["recommend", "--likes", "x.csv", "--model", "nope"], "unknown model 'nope'"),
    (["neighbors", "x", "--model", "popularity", "--measure", "cosine"], "has none"),
    (["recommend"], "one of the arguments --likes --user is required"),
    (["recommend", "--likes", "x.csv", "--user", "2"], "not allowed with argument"),
    (["recommend", "--user", "2"], "--user serves a known user from a model folder"),
    (["recommend", "--user", "2", "--model-dir", "d", "--explain"], "leave --explain and"),
    (["recommend", "--likes", "x.csv", "--model-dir", "d", "--model-file", "f"],
     "not allowed with argument"),
    (["recommend", "--likes", "x.csv", "--model-dir", "nowhere"], "model folder nowhere not"),
])
def test_bad_arguments(synthetic_dir, sheet, cache, args, fragment) -> None:
    args = [a if a != "x.csv" else str(sheet) for a in args]
    if args[0] == "neighbors":
        args[1] = "Beyoncé Tribute"
    assert_usage_error(run(*args, cache=cache, data_dir=synthetic_dir), fragment)


def test_sheet_names_are_checked_before_any_training(synthetic_dir, tmp_path) -> None:
    cache = tmp_path / "cache"
    path = tmp_path / "sheet.csv"
    path.write_text("name,Like\nBeyonce Tribut,1\n", encoding="utf-8")
    result = subprocess.run([COMMAND, "recommend", "--data-dir", str(synthetic_dir), "--likes",
                             str(path), "--model", "hybrid"], capture_output=True, text=True,
                            env={**os.environ, "LASTFM_REC_CACHE": str(cache)}, timeout=60,
                            check=False)
    assert_usage_error(result, "'Beyonce Tribut' is not in the data (close matches: Beyoncé "
                               "Tribute")
    assert "training" not in result.stderr
    assert not cache.exists()


def test_sheet_names_match_ignoring_case_and_beyond_the_listed_artists(
        synthetic_dir, artists, sheet, cache) -> None:
    listed = set(pd.read_csv(sheet, dtype=str, keep_default_na=False)["name"])
    extra = next(n for n in artists.sort_values("listeners")["name"] if n not in listed)
    with sheet.open("a", encoding="utf-8") as handle:
        handle.write(f"{extra.upper()},1\n")
    result = run("recommend", "--likes", str(sheet), "--model", "popularity", "--json",
                 cache=cache, data_dir=synthetic_dir)
    assert result.returncode == 0, result.stderr
    assert f"{extra.upper()!r} taken as {extra!r}" in result.stderr
    assert "Top 10 artists for the 4 you like" not in result.stdout  # JSON, not the table
    assert len(json.loads(result.stdout)["results"]) == 10


def test_artists_command_lists_exact_names(synthetic_dir, artists, cache) -> None:
    result = run("artists", "beyONCÉ", "--json", cache=cache, data_dir=synthetic_dir)
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert [row["name"] for row in payload["results"]] == ["Beyoncé Tribute"]
    table = run("artists", "artist 0000", "-k", "3", cache=cache, data_dir=synthetic_dir)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.strip().splitlines()
    assert lines[0].endswith("whose name contains 'artist 0000', the 3 most listened:")
    assert len(lines) == 2 + 3
    assert_usage_error(run("artists", "zzzz", cache=cache, data_dir=synthetic_dir),
                       "no artist named 'zzzz'")


def test_explain_names_liked_artists_that_add_up_the_score(synthetic_dir, sheet, artists,
                                                           cache) -> None:
    result = run("recommend", "--likes", str(sheet), "--model", "item-knn", "--explain",
                 "--json", cache=cache, data_dir=synthetic_dir)
    assert result.returncode == 0, result.stderr
    liked = set(artists.sort_values("listeners", ascending=False)["name"].head(3))
    reasons = [row["because_you_like"] for row in json.loads(result.stdout)["results"]]
    assert len(reasons) == 10 and all(reasons)
    assert all(1 <= len(r) <= 3 and set(r) <= liked for r in reasons)
    table = run("recommend", "--likes", str(sheet), "--model", "item-knn", "--explain",
                cache=cache, data_dir=synthetic_dir)
    assert table.returncode == 0, table.stderr
    assert "because_you_like" in table.stdout.splitlines()[1]


@pytest.mark.parametrize(("args", "fragment"), [
    (["--model", "popularity"], "model popularity has no per-artist explanation"),
    (["--measure", "cosine"], "leave --measure out"),
])
def test_explain_refuses_before_training(synthetic_dir, sheet, tmp_path, args,
                                         fragment) -> None:
    cache = tmp_path / "cache"
    result = run("recommend", "--likes", str(sheet), "--explain", *args, cache=cache,
                 data_dir=synthetic_dir)
    assert_usage_error(result, fragment)
    assert not cache.exists()


def test_data_command_refuses_files_that_fail_their_checksums(synthetic_dir, cache) -> None:
    assert_usage_error(run("data", cache=cache, data_dir=synthetic_dir), "artists.dat")


@pytest.mark.realdata
def test_real_data_flows(real_data_dir, cache) -> None:
    data = run("data", cache=cache, data_dir=real_data_dir)
    assert data.returncode == 0, data.stderr
    assert str(real_data_dir.resolve()) in data.stdout
    recs = run("recommend", "--likes", str(EXAMPLE_SHEET), "--json", cache=cache,
               data_dir=real_data_dir)
    assert recs.returncode == 0, recs.stderr
    names = [row["name"] for row in json.loads(recs.stdout)["results"]]
    assert len(names) == 10
    assert not {"Lady Gaga", "Rihanna", "Beyoncé", "Kanye West", "Justin Bieber"} & set(names)
    neighbours = run("neighbors", "justin bieber", "--json", cache=cache,
                     data_dir=real_data_dir)
    assert neighbours.returncode == 0, neighbours.stderr
    payload = json.loads(neighbours.stdout)
    assert payload["query"] == "Justin Bieber"
    assert payload["results"][0]["name"] == "Justin Bieber"
    assert "Justin Bieber  ft Rascal Flatts" in payload["other_candidates"]  # as in the file


def tag_share(rows: list[dict], keywords: tuple[str, ...]) -> float:
    return sum(any(k in tag for tag in row["top3_tags"].split(" / ") for k in keywords)
               for row in rows) / len(rows)


@pytest.mark.realdata
def test_real_sheets_give_their_genre_with_reasons(real_data_dir, cache, tmp_path) -> None:
    metal = run("recommend", "--likes", str(METAL_SHEET), "--model", "hybrid", "--explain",
                "--json", cache=cache, data_dir=real_data_dir)
    assert metal.returncode == 0, metal.stderr
    rows = json.loads(metal.stdout)["results"]
    assert len(rows) == 10 and tag_share(rows, ("metal",)) > 0.5
    assert all(row["because_you_like"] and set(row["because_you_like"]) <= METAL_LIKES
               for row in rows)
    pop = run("recommend", "--likes", str(EXAMPLE_SHEET), "--model", "hybrid", "--explain",
              "--json", cache=cache, data_dir=real_data_dir)
    assert pop.returncode == 0, pop.stderr
    assert "training" not in pop.stderr  # the hybrid is cached now
    assert tag_share(json.loads(pop.stdout)["results"], ("pop", "rnb", "dance")) > 0.5
    lower = tmp_path / "burzum.csv"
    lower.write_text("name,Like\nburzum,1\n", encoding="utf-8")
    accepted = run("recommend", "--likes", str(lower), "--model", "hybrid", "--json",
                   cache=cache, data_dir=real_data_dir)
    assert accepted.returncode == 0, accepted.stderr
    assert "'burzum' taken as 'Burzum'" in accepted.stderr


def test_evaluate_json_on_synthetic_data(synthetic_dir, cache) -> None:
    result = run("evaluate", "--model", "popularity", "--model", "item-knn", "--json",
                 cache=cache, data_dir=synthetic_dir)
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    test = {row["model"]: row for row in payload["test"]}
    assert {"popularity", "item-knn"} <= set(test)
    for row in test.values():
        assert 0 <= row["ndcg@10"] <= 1 and row["users"] > 0
    # The synthetic users mostly listen within one genre: a neighbour model must find it.
    assert test["item-knn"]["ndcg@10"] > test["popularity"]["ndcg@10"]
    assert {row["model"] for row in payload["new_users"]} == {"item-knn", "popularity"}
