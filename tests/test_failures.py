"""Failure paths through the installed ``lastfm-rec`` command, run in subprocesses.

Damaged caches of each kind, two first calls at once, Ctrl-C during a fit and damaged data
files: each answers with its exit status and one ``warning:``/``error:`` line naming the
file, never a traceback, and leaves the data folder and the cache valid. The synthetic data
is not the published release, so every run also prints that one warning.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from lastfm_rec.data.matrices import load_study
from lastfm_rec.data.synthetic import SyntheticSpec, generate_hetrec
from lastfm_rec.serving.cache import model_path, restore

COMMAND = shutil.which("lastfm-rec", path=str(Path(sys.executable).parent))
RELEASE_WARNING = "differ from the published release: figures will differ from the original's"
QUERY = "Beyoncé Tribute"  # an artist of the synthetic data
MODEL = "item-knn"  # fits in well under a second on the synthetic data


def command(data_dir: Path, model: str = MODEL) -> list[str]:
    return [COMMAND, "neighbors", QUERY, "--data-dir", str(data_dir), "--model", model,
            "--json"]


def env(cache: Path) -> dict[str, str]:
    return {**os.environ, "LASTFM_REC_CACHE": str(cache)}


def run(data_dir: Path, cache: Path, model: str = MODEL) -> subprocess.CompletedProcess:
    return subprocess.run(command(data_dir, model), capture_output=True,
                          text=True, env=env(cache), timeout=300, check=False)


def messages(result: subprocess.CompletedProcess | str, release: int = 1) -> list[str]:
    """stderr lines other than the ``release`` warnings that the data is not the published
    release and the "training ..." progress line."""
    stderr = result if isinstance(result, str) else result.stderr
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    release_lines = [line for line in lines if RELEASE_WARNING in line]
    assert len(release_lines) == release, stderr
    assert all(line.startswith("warning: ") for line in release_lines)
    return [line for line in lines
            if line not in release_lines and not line.startswith("training ")]


def cache_files(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


@pytest.fixture(scope="module")
def data_dir(synthetic_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(shutil.copytree(synthetic_dir, tmp_path_factory.mktemp("data") / "d"))


@pytest.fixture(scope="module")
def valid(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A cache folder holding the fitted model, and the answer it gives."""
    cache = tmp_path_factory.mktemp("valid-cache")
    result = run(data_dir, cache)
    assert result.returncode == 0, result.stderr
    assert messages(result) == []
    assert "training item-knn" in result.stderr
    return cache, json.loads(result.stdout)


@pytest.fixture()
def cache_copy(valid: tuple[Path, dict], tmp_path: Path) -> Path:
    return Path(shutil.copytree(valid[0], tmp_path / "cache"))


def truncated(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def empty(path: Path) -> None:
    path.write_bytes(b"")


def random_bytes(path: Path) -> None:
    path.write_bytes(np.random.default_rng(1).bytes(path.stat().st_size))


def wrong_arrays(path: Path) -> None:
    with path.open("wb") as handle:
        np.savez(handle, similarity_=np.eye(3))


def assert_cache_valid(cache: Path, data_dir: Path) -> None:
    """One cached model, readable as :func:`lastfm_rec.serving.session.load_session` reads it."""
    (path,) = cache.iterdir()  # no temporary file beside it
    study = load_study(data_dir)
    assert path.name == model_path(data_dir, MODEL).name  # the key the command computes
    restore(path, "ItemKNNRecommender", study.plays.shape)


@pytest.mark.parametrize("damage", [truncated, empty, random_bytes, wrong_arrays],
                         ids=lambda f: f.__name__)
def test_damaged_cache_warns_and_heals(data_dir, valid, cache_copy,
                                       damage: Callable[[Path], None]) -> None:
    (path,) = cache_copy.glob("*.npz")
    damage(path)
    result = run(data_dir, cache_copy)
    assert result.returncode == 0, result.stderr
    (line,) = messages(result)
    assert line.startswith(f"warning: cache {path} is damaged (") and line.endswith(
        "; retraining")
    assert json.loads(result.stdout) == valid[1]
    assert_cache_valid(cache_copy, data_dir)


def test_another_models_file_under_this_name(data_dir, valid, cache_copy) -> None:
    popularity = cache_copy / "other"
    assert run(data_dir, popularity, model="popularity").returncode == 0
    (path,) = cache_copy.glob("*.npz")
    (other,) = popularity.glob("*.npz")
    shutil.copyfile(other, path)
    shutil.rmtree(popularity)
    result = run(data_dir, cache_copy)
    assert result.returncode == 0, result.stderr
    (line,) = messages(result)
    assert f"cache {path} is damaged (holds PopularityRecommender" in line
    assert_cache_valid(cache_copy, data_dir)


def test_two_first_calls_at_once(data_dir, valid, tmp_path) -> None:
    cache = tmp_path / "cache"
    calls = [subprocess.Popen(command(data_dir), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env(cache))
             for _ in range(2)]
    for call in calls:
        stdout, stderr = call.communicate(timeout=300)
        assert call.returncode == 0, stderr
        assert messages(stderr) == []
        assert json.loads(stdout) == valid[1]
    assert_cache_valid(cache, data_dir)


@pytest.fixture(scope="module")
def larger_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Synthetic data large enough that fitting ALS takes a few seconds."""
    spec = SyntheticSpec().scaled(0.5)
    return generate_hetrec(tmp_path_factory.mktemp("larger"), spec, seed=3)


def test_ctrl_c_during_a_fit(larger_data, tmp_path) -> None:
    cache = tmp_path / "cache"
    call = subprocess.Popen(command(larger_data, "als"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env(cache))
    stderr = ""
    while "training als" not in stderr:  # the line is printed just before the fit starts
        line = call.stderr.readline()
        assert line, f"ended before training: {stderr}"
        stderr += line
    call.send_signal(signal.SIGINT)
    call.wait(timeout=300)
    stdout = call.stdout.read()
    stderr += call.stderr.read()
    assert call.returncode == 130, stderr
    assert messages(stderr) == ["interrupted"]
    assert stdout == ""
    assert cache_files(cache) == []


def edit_line(path: Path, number: int, edit: Callable[[str], str]) -> None:
    lines = path.read_bytes().decode("utf-8").split("\n")
    lines[number - 1] = edit(lines[number - 1])
    path.write_bytes("\n".join(lines).encode("utf-8"))


def cut_mid_line(path: Path) -> None:
    content = path.read_bytes()
    path.write_bytes(content[: content.rindex(b"\t", 0, len(content) // 2)])


DAMAGED_FILES = {
    "short-row": ("user_artists.dat", lambda p: edit_line(p, 5, lambda s: s.rsplit("\t", 1)[0]),
                  "line 5 has 2 fields, expected 3"),
    "long-row": ("user_friends.dat", lambda p: edit_line(p, 6, lambda s: s + "\t9"),
                 "line 6 has 3 fields, expected 2"),
    "non-numeric": ("user_artists.dat", lambda p: edit_line(p, 7, lambda s: s + "x"),
                    "line 7: column weight has"),
    "nan": ("user_artists.dat", lambda p: edit_line(p, 8, lambda s: s.rsplit("\t", 1)[0]
                                                    + "\tNaN"), "line 8: column weight has 'NaN'"),
    "negative": ("user_artists.dat", lambda p: edit_line(p, 9, lambda s: s.rsplit("\t", 1)[0]
                                                         + "\t-3"), "line 9: column weight has -3"),
    "invalid-utf8": ("artists.dat",
                     lambda p: p.write_bytes(p.read_bytes().replace(b"Artist", b"Art\xff", 1)),
                     "is not valid utf-8 on line"),
    "no-header": ("tags.dat", lambda p: p.write_bytes(p.read_bytes().split(b"\n", 1)[1]),
                  "the header (line 1) lacks column tagID, tagValue"),
    "duplicate": ("user_artists.dat",
                  lambda p: edit_line(p, 11, lambda s: p.read_text().split("\n")[9]),
                  "line 11 repeats line 10"),
    "truncated": ("user_taggedartists.dat", cut_mid_line, "fields, expected 6"),
}


@pytest.mark.parametrize("kind", DAMAGED_FILES)
def test_damaged_data_file(data_dir, valid, cache_copy, tmp_path, kind: str) -> None:
    name, damage, fragment = DAMAGED_FILES[kind]
    folder = Path(shutil.copytree(data_dir, tmp_path / "data"))
    damage(folder / name)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    cached = {p.name: p.read_bytes() for p in cache_copy.iterdir()}
    result = run(folder, cache_copy)
    assert result.returncode == 2, result.stderr
    (line,) = messages(result, release=0)  # the error, not the release warning, matters
    assert line.startswith(f"error: {folder / name}"), line
    assert fragment in line
    assert result.stdout == ""
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert {p.name: p.read_bytes() for p in cache_copy.iterdir()} == cached
