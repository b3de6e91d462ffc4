"""The model cache in lastfm_rec.serving.cache: format, checks, healing, atomic writes, listing."""

from __future__ import annotations

import json
import mmap
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lastfm_rec.data.matrices import StudyData, load_study, side_data
from lastfm_rec.files import FORMAT_VERSION, MANIFEST
from lastfm_rec.models import Recommender, create, side_params
from lastfm_rec.serving import cache
from lastfm_rec.serving.cache import (
    CacheWarning,
    cached_model,
    clear,
    entries,
    restore,
    store,
)


@pytest.fixture(scope="module")
def study(synthetic_dir: Path) -> StudyData:
    return load_study(synthetic_dir)


@pytest.fixture(scope="module")
def hybrid(study: StudyData) -> Recommender:
    return create("hybrid", **side_data(side_params("hybrid"), study, exclude=None)).fit(
        study.plays, show_progress=False)


@pytest.fixture()
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


def stored_dtypes(path: Path) -> set[np.dtype]:
    with np.load(path, allow_pickle=False) as stored:
        return {stored[key].dtype for key in stored.files}


def test_float64_is_stored_as_float32_and_read_back_as_float64(hybrid, study, tmp_path) -> None:
    path = tmp_path / "hybrid.npz"
    store(hybrid, path)
    assert np.dtype(np.float64) not in stored_dtypes(path)
    loaded = restore(path, "HybridRecommender", study.plays.shape)
    assert loaded.friend_plays_.dtype == hybrid.friend_plays_.dtype == np.float64
    assert loaded.tags_.dtype == hybrid.tags_.dtype == np.float64
    assert loaded.weights_.dtype == hybrid.weights_.dtype == np.float32
    assert isinstance(loaded.weights_.base, mmap.mmap)  # mapped from the file, not read
    np.testing.assert_array_equal(loaded.weights_, hybrid.weights_)
    np.testing.assert_allclose(loaded.tags_.toarray(), hybrid.tags_.toarray(), rtol=1e-7)
    assert (loaded.train_ != hybrid.train_).nnz == 0  # play counts are exact in float32
    assert list(tmp_path.iterdir()) == [path]


def test_first_call_answers_as_later_ones(study, synthetic_dir, folder) -> None:
    calls = []

    def fit() -> Recommender:
        calls.append(1)
        return create("item-knn").fit(study.plays)

    first = cached_model(synthetic_dir, "item-knn", study.plays.shape, fit)
    second = cached_model(synthetic_dir, "item-knn", study.plays.shape, fit)
    assert len(calls) == 1
    users = np.arange(study.plays.shape[0])
    for a, b in zip(first.recommend(users, study.plays[users], N=10),
                    second.recommend(users, study.plays[users], N=10), strict=True):
        np.testing.assert_array_equal(a, b)


def damage_truncated(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def damage_empty(path: Path) -> None:
    path.write_bytes(b"")


def damage_random(path: Path) -> None:
    path.write_bytes(np.random.default_rng(0).bytes(path.stat().st_size))


def damage_wrong_arrays(path: Path) -> None:
    with path.open("wb") as handle:
        np.savez(handle, user_factors=np.zeros((3, 2)))


def damage_flipped_byte(path: Path) -> None:
    content = bytearray(path.read_bytes())
    content[len(content) // 2] ^= 0xFF  # inside an array: the zip CRC no longer matches
    path.write_bytes(bytes(content))


def raw_arrays(path: Path) -> tuple[dict[str, np.ndarray], dict]:
    """A cache file's arrays without the manifest, and the manifest."""
    with np.load(path, allow_pickle=False) as stored:
        arrays = {key: stored[key] for key in stored.files}
    return arrays, json.loads(str(arrays.pop(MANIFEST)))


def damage_old_format(path: Path) -> None:
    """The layout of cache files before the model file format: the arrays of the old
    ``Recommender.save`` with the cache's own format number and manifest."""
    arrays, manifest = raw_arrays(path)
    old = {"__class__": np.array(manifest["model"]),
           "__params__": np.array(json.dumps(manifest["params"])),
           "__shape__": np.array(manifest["meta"]["shape"]),
           "__listeners__": arrays.pop("arr:item_listeners_"), **arrays}
    listing = {key: {"shape": list(value.shape), "dtype": value.dtype.str}
               for key, value in old.items()}
    with path.open("wb") as handle:
        np.savez(handle, **old, **{"cache:format": np.array(1),
                                   "cache:manifest": np.array(json.dumps(listing))})


def damage_newer_version(path: Path) -> None:
    arrays, manifest = raw_arrays(path)
    manifest["version"] = FORMAT_VERSION + 1
    with path.open("wb") as handle:
        np.savez(handle, **arrays, **{MANIFEST: np.array(json.dumps(manifest))})


DAMAGES = [damage_truncated, damage_empty, damage_random, damage_wrong_arrays,
           damage_flipped_byte, damage_old_format, damage_newer_version]
#: The reason a warning gives, where it matters which.
REASONS = {damage_old_format: "(no manifest)",
           damage_newer_version: f"format version {FORMAT_VERSION + 1} is newer"}


@pytest.mark.parametrize("damage", DAMAGES, ids=lambda f: f.__name__.removeprefix("damage_"))
def test_damaged_cache_warns_once_and_is_refitted(study, synthetic_dir, folder,
                                                  damage) -> None:
    def fit() -> Recommender:
        return create("item-knn").fit(study.plays)

    cached_model(synthetic_dir, "item-knn", study.plays.shape, fit)
    (path,) = folder.glob("*.npz")
    damage(path)
    with pytest.warns(CacheWarning) as record:
        model = cached_model(synthetic_dir, "item-knn", study.plays.shape, fit)
    assert len(record) == 1, [str(w.message) for w in record]
    message = str(record[0].message)
    assert message.startswith(f"cache {path} is damaged (") and message.endswith("; retraining")
    assert REASONS.get(damage, "") in message
    assert "\n" not in message
    assert model.similarity_.shape == (study.plays.shape[1],) * 2
    assert sorted(p.name for p in folder.iterdir()) == [path.name]
    restore(path, "ItemKNNRecommender", study.plays.shape)  # valid again


def test_another_model_shape_or_name_is_damaged(study, tmp_path) -> None:
    path = tmp_path / "model.npz"
    store(create("popularity").fit(study.plays), path)
    with pytest.raises(cache.DamagedCacheError, match="holds PopularityRecommender, not a Item"):
        restore(path, "ItemKNNRecommender", study.plays.shape)
    with pytest.raises(cache.DamagedCacheError, match="another play matrix"):
        restore(path, "PopularityRecommender", (study.plays.shape[0] + 1, 5))
    copy = Path(shutil.copyfile(path, tmp_path / "popularity-other-key.npz"))
    with pytest.raises(cache.DamagedCacheError, match=r"stored as 'model\.npz', not as popul"):
        restore(copy, "PopularityRecommender", study.plays.shape)
    restore(path, "PopularityRecommender", study.plays.shape)  # the original is valid


def test_interrupted_write_leaves_no_temporary_file(study, tmp_path, monkeypatch) -> None:
    model = create("popularity").fit(study.plays)

    def interrupted(stream, array, **options) -> None:  # Ctrl-C amid the first array
        stream.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(np.lib.format, "write_array", interrupted)
    with pytest.raises(KeyboardInterrupt):
        store(model, tmp_path / "cache" / "popularity.npz")
    assert list((tmp_path / "cache").iterdir()) == []


def test_entries_and_clear(study, folder) -> None:
    store(create("popularity").fit(study.plays), folder / "popularity-abc.npz")
    leftover = folder / ".item-knn-def.npz.x1y2.tmp"
    leftover.write_bytes(b"12345")
    (folder / "notes.txt").write_text("not ours")
    listed = entries()
    assert [(e.path.name, e.model) for e in listed] == [
        (leftover.name, None), ("popularity-abc.npz", "popularity")]
    assert listed[1].size == (folder / "popularity-abc.npz").stat().st_size
    assert clear() == listed
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]
    assert entries(folder / "absent") == []


def test_cache_command_lists_and_clears(study, tmp_path) -> None:
    folder = tmp_path / "cache"
    store(create("popularity").fit(study.plays), folder / "popularity-abc.npz")
    size = (folder / "popularity-abc.npz").stat().st_size
    command = shutil.which("lastfm-rec", path=str(Path(sys.executable).parent))
    env = {**os.environ, cache.CACHE_ENV: str(folder)}

    def run(*args: str) -> list[str]:
        result = subprocess.run([command, "cache", *args], capture_output=True, text=True,
                                env=env, timeout=120, check=False)
        assert result.returncode == 0 and result.stderr == "", result.stderr
        return result.stdout.splitlines()

    listed = run()
    assert listed[0].split() == [f"{size / 1e6:.1f}", "MB", "popularity", "popularity-abc.npz"]
    assert listed[1] == f"1 files, {size / 1e6:.1f} MB in {folder}"
    assert run("--clear")[-1] == f"1 files, {size / 1e6:.1f} MB deleted from {folder}"
    assert list(folder.iterdir()) == []
    assert run() == [f"0 files, 0.0 MB in {folder}"]


def test_unwritable_cache_warns_and_answers(study, synthetic_dir, tmp_path,
                                            monkeypatch) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(cache.CACHE_ENV, str(blocker))
    with pytest.warns(CacheWarning, match=f"cannot write the cache {blocker}/popularity-"):
        model = cached_model(synthetic_dir, "popularity", study.plays.shape,
                             lambda: create("popularity").fit(study.plays))
    assert model.n_items == study.plays.shape[1]
    assert blocker.read_text() == "not a folder"


def test_sessions_loaded_together_share_the_hybrids_als_part(synthetic_dir, folder,
                                                            monkeypatch) -> None:
    from lastfm_rec.models.als import ALSRecommender
    from lastfm_rec.serving.session import load_session, load_sessions

    solves = []
    solve = ALSRecommender._solve
    monkeypatch.setattr(ALSRecommender, "_solve",
                        lambda self, *args: solves.append(1) or solve(self, *args))
    together = load_sessions(synthetic_dir, ["hybrid", "als"])
    assert len(solves) == 1  # the hybrid's ALS part and the tuned als are one fit
    clear()
    alone = load_session(synthetic_dir, "als")
    assert len(solves) == 2
    np.testing.assert_array_equal(together["als"].model.item_factors, alone.model.item_factors)
    np.testing.assert_array_equal(together["als"].model.item_factors,
                                  together["hybrid"].model.als_.item_factors)
    assert list(together) == ["hybrid", "als"]
