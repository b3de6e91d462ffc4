"""lastfm_rec.files: atomic writes, the model file format and the checks of a loaded model."""

from __future__ import annotations

import io
import json
import mmap
import os
import pickle
import threading
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from lastfm_rec import files
from lastfm_rec.files import (
    FORMAT_VERSION,
    MANIFEST,
    ModelFile,
    ModelFileError,
    atomic_write,
    read_model_file,
    write_model_file,
)
from lastfm_rec.models import Recommender, create

REFIT = "; refit the model and save it again"


def temporaries(folder: Path) -> list[Path]:
    return sorted(folder.glob(f".*{files.TEMP_SUFFIX}"))


# --------------------------------------------------------------------------- atomic writes


def test_two_writers_get_their_own_temporary_and_both_complete(tmp_path) -> None:
    target = tmp_path / "sheet.csv"
    with atomic_write(target) as first:
        first.write(b"first")
        with atomic_write(target) as second:
            second.write(b"second")
            names = [p.name for p in temporaries(tmp_path)]
            assert len(names) == 2 and all(n.startswith(".sheet.csv.") for n in names)
        assert target.read_bytes() == b"second"
    assert target.read_bytes() == b"first"  # the last rename wins, whole
    assert list(tmp_path.iterdir()) == [target]


def test_a_new_file_is_never_visible_half_written(tmp_path) -> None:
    target = tmp_path / "new.bin"
    with atomic_write(target) as stream:
        stream.write(b"x" * 1000)
        stream.flush()
        assert not target.exists()
        stream.write(b"y" * 1000)
    assert target.read_bytes() == b"x" * 1000 + b"y" * 1000


def test_readers_see_the_old_or_the_new_file_whole(tmp_path) -> None:
    """Two threads rewrite one file 20 times each with 1 MB of one repeated byte while a
    reader reads it: every read is 1 MB of a single byte value."""
    target = tmp_path / "shared.bin"
    target.write_bytes(bytes(1 << 20))
    done = threading.Event()
    seen: list[bytes] = []

    def write(value: int) -> None:
        for _ in range(20):
            with atomic_write(target) as stream:
                for _ in range(16):
                    stream.write(bytes([value]) * (1 << 16))

    def read() -> None:
        while not done.is_set():
            content = target.read_bytes()
            seen.append(content if len(set(content)) != 1 or len(content) != 1 << 20
                        else b"ok")

    reader = threading.Thread(target=read)
    writers = [threading.Thread(target=write, args=(value,)) for value in (1, 2)]
    reader.start()
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()
    done.set()
    reader.join()
    assert seen and set(seen) == {b"ok"}
    assert target.read_bytes() in (b"\1" * (1 << 20), b"\2" * (1 << 20))
    assert temporaries(tmp_path) == []


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_a_failure_leaves_the_previous_file_and_no_temporary(tmp_path, error) -> None:
    target = tmp_path / "notebook.ipynb"
    target.write_text("previous")
    with pytest.raises(error), atomic_write(target, text=True) as stream:
        stream.write("half of the new")
        raise error
    assert target.read_text() == "previous"
    assert list(tmp_path.iterdir()) == [target]


def test_a_failure_on_a_new_file_leaves_nothing(tmp_path) -> None:
    with pytest.raises(OSError), atomic_write(tmp_path / "new.npz") as stream:
        stream.write(b"half")
        raise OSError("disk full")
    assert list(tmp_path.iterdir()) == []


def test_written_files_get_the_usual_permissions_and_exact_text(tmp_path) -> None:
    previous = os.umask(0o027)
    try:
        with atomic_write(tmp_path / "sheet.csv", text=True) as stream:
            stream.write("name,Like\nBeyoncé,1\r\n")
    finally:
        os.umask(previous)
    path = tmp_path / "sheet.csv"
    assert path.stat().st_mode & 0o777 == 0o640
    assert path.read_bytes() == "name,Like\nBeyoncé,1\r\n".encode()


# --------------------------------------------------------------------------- model files

PARAMS = {"als__factors": 8, "als__regularization": 0.05, "weights": [0.5, 0.25],
          "scaling": "log1p", "flag": True, "missing": None, "nested": {"k": [1, "a"]}}


def content() -> ModelFile:
    arrays = {"f64": np.linspace(0, 1, 12).reshape(3, 4), "f32": np.arange(5, dtype=np.float32),
              "i32": np.arange(4, dtype=np.int32), "scalar": np.array(7),
              "text": np.array("a name")}
    return ModelFile("SomeModel", PARAMS, arrays, {"shape": [3, 4], "key": "abc"})


def raw(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as stored:
        return {key: stored[key] for key in stored.files}


def rewrite(path: Path, **changes) -> None:
    """Write ``path`` again with manifest entries changed (``None`` removes one)."""
    arrays = raw(path)
    manifest = json.loads(str(arrays[MANIFEST]))
    manifest.update(changes)
    arrays[MANIFEST] = np.array(json.dumps({k: v for k, v in manifest.items() if v is not None}))
    with path.open("wb") as handle:
        np.savez(handle, **arrays)


def check_error(error: pytest.ExceptionInfo, path: Path, fragment: str,
                advice: str = REFIT) -> None:
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ") and message.endswith(advice), message
    assert fragment in message, message


def test_round_trip_keeps_arrays_dtypes_params_and_meta(tmp_path) -> None:
    path = tmp_path / "model.npz"
    written = content()
    write_model_file(path, written)
    read = read_model_file(path)
    assert (read.model, read.params, read.meta, read.source) == (
        "SomeModel", PARAMS, {"shape": [3, 4], "key": "abc"}, str(path))
    assert read.arrays.keys() == written.arrays.keys()
    for name, value in written.arrays.items():
        assert read.arrays[name].dtype == value.dtype
        np.testing.assert_array_equal(read.arrays[name], value)
    assert list(tmp_path.iterdir()) == [path]


def test_the_manifest_describes_the_file(tmp_path) -> None:
    path = tmp_path / "model"  # written exactly there: no .npz appended
    write_model_file(path, content())
    arrays = raw(path)
    manifest = json.loads(str(arrays.pop(MANIFEST)))
    assert manifest["format"] == files.FORMAT and manifest["version"] == FORMAT_VERSION
    assert manifest["model"] == "SomeModel" and manifest["params"] == PARAMS
    assert manifest["arrays"] == {name: {"shape": list(value.shape), "dtype": value.dtype.str}
                                  for name, value in arrays.items()}


def test_compact_stores_float64_as_float32_and_gives_float64_back(tmp_path) -> None:
    path = tmp_path / "cache.npz"
    write_model_file(path, content(), compact=True)
    assert {key: value.dtype for key, value in raw(path).items() if key != MANIFEST} == {
        "f64": np.float32, "f32": np.float32, "i32": np.int32, "scalar": np.array(7).dtype,
        "text": np.array("a name").dtype}
    read = read_model_file(path)
    assert read.arrays["f64"].dtype == np.float64
    np.testing.assert_array_equal(read.arrays["f64"],
                                  content().arrays["f64"].astype(np.float32))


def test_a_file_on_disk_is_mapped_aligned_and_never_written(tmp_path) -> None:
    path = tmp_path / "model.npz"
    write_model_file(path, content())
    written = path.read_bytes()
    read = read_model_file(path)
    for name, value in read.arrays.items():
        assert isinstance(value.base, mmap.mmap), name  # mapped, not read into memory
        assert value.ctypes.data % files.ALIGN == 0, name
    read.arrays["f32"][:] = -1  # copy-on-write: the caller's own pages
    assert path.read_bytes() == written
    np.testing.assert_array_equal(read_model_file(path).arrays["f32"], content().arrays["f32"])


def test_equal_content_gives_equal_files(tmp_path) -> None:
    write_model_file(tmp_path / "a.npz", content())
    write_model_file(tmp_path / "b.npz", content())
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()


def test_a_file_in_numpys_own_layout_reads_the_same(tmp_path) -> None:
    path = tmp_path / "model.npz"
    write_model_file(path, content())
    rewrite(path)  # np.savez: each array wherever the zip headers before it end
    read = read_model_file(path)
    for name, value in content().arrays.items():
        assert read.arrays[name].dtype == value.dtype
        np.testing.assert_array_equal(read.arrays[name], value)


def test_an_open_file_round_trips() -> None:
    buffer = io.BytesIO()
    write_model_file(buffer, content())
    buffer.seek(0)
    assert read_model_file(buffer).params == PARAMS


def test_the_manifest_name_is_reserved(tmp_path) -> None:
    with pytest.raises(ValueError, match=MANIFEST):
        write_model_file(tmp_path / "m.npz", ModelFile("X", {}, {MANIFEST: np.zeros(1)}))
    assert list(tmp_path.iterdir()) == []


def test_a_newer_version_gives_a_one_line_error(tmp_path) -> None:
    path = tmp_path / "model.npz"
    create("popularity").fit(sp.csr_matrix(np.eye(3))).save(path)
    rewrite(path, version=FORMAT_VERSION + 1)
    advice = "; upgrade lastfm-rec, or refit the model and save it again with this version"
    with pytest.raises(ModelFileError) as error:
        read_model_file(path)
    check_error(error, path, f"format version {FORMAT_VERSION + 1} is newer", advice)
    with pytest.raises(ModelFileError) as error:
        Recommender.load(path)
    check_error(error, path, "is newer", advice)


def write_plain_npz(path: Path) -> None:
    with path.open("wb") as handle:
        np.savez(handle, user_factors=np.zeros((3, 2)))


def write_other_format(path: Path) -> None:
    write_model_file(path, content())
    rewrite(path, format="another model")


def write_old_recommender_file(path: Path) -> None:
    """The layout ``Recommender.save`` wrote before the model file format."""
    with path.open("wb") as handle:
        np.savez(handle, __class__=np.array("PopularityRecommender"),
                 __params__=np.array("{}"), __shape__=np.array([3, 3]),
                 __listeners__=np.ones(3, dtype=np.int64))


def write_unknown_version(path: Path) -> None:
    write_model_file(path, content())
    rewrite(path, version="one")


def write_without_params(path: Path) -> None:
    write_model_file(path, content())
    rewrite(path, params=None)


def write_with_a_missing_array(path: Path) -> None:
    write_model_file(path, content())
    arrays = raw(path)
    del arrays["f32"]
    with path.open("wb") as handle:
        np.savez(handle, **arrays)


def write_with_a_reshaped_array(path: Path) -> None:
    write_model_file(path, content())
    arrays = raw(path)
    arrays["f64"] = arrays["f64"].reshape(4, 3)
    with path.open("wb") as handle:
        np.savez(handle, **arrays)


def write_truncated(path: Path) -> None:
    write_model_file(path, content())
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def write_flipped_byte(path: Path) -> None:
    write_model_file(path, content())
    data = bytearray(path.read_bytes())
    data[data.index(content().arrays["f64"].tobytes()) + 5] ^= 0xFF  # its CRC fails now
    path.write_bytes(bytes(data))


def write_random_bytes(path: Path) -> None:
    path.write_bytes(np.random.default_rng(0).bytes(2000))


def write_single_array(path: Path) -> None:
    with path.open("wb") as handle:
        np.save(handle, np.zeros(3))


def write_pickled_array(path: Path) -> None:
    with path.open("wb") as handle:
        np.savez(handle, objects=np.array([{"a": 1}], dtype=object),
                 **{MANIFEST: np.array("{}")})


BAD_FILES = {
    "plain-npz": (write_plain_npz, "not a lastfm-rec model file (no manifest)"),
    "old-recommender-file": (write_old_recommender_file, "(no manifest)"),
    "other-format": (write_other_format, "format 'another model', not 'lastfm-rec model'"),
    "unknown-version": (write_unknown_version, "unknown format version 'one'"),
    "no-params": (write_without_params, "manifest entries params missing"),
    "missing-array": (write_with_a_missing_array, "array f32 is missing"),
    "reshaped-array": (write_with_a_reshaped_array, "array f64 is float64 (4, 3)"),
    "truncated": (write_truncated, "not a readable .npz file"),
    "empty": (lambda path: path.write_bytes(b""), "not an .npz file (empty)"),
    "random-bytes": (write_random_bytes, "not an .npz file"),
    "single-array": (write_single_array, "not an .npz file"),
    "pickled-array": (write_pickled_array, "not a readable .npz file (ValueError: Object arr"),
    "flipped-byte": (write_flipped_byte, "not a readable .npz file (BadZipFile: Bad CRC-32"),
}


@pytest.mark.parametrize("kind", BAD_FILES)
def test_a_damaged_or_foreign_file_gives_a_one_line_error(tmp_path, kind) -> None:
    path = tmp_path / "model.npz"
    write, fragment = BAD_FILES[kind]
    write(path)
    with pytest.raises(ModelFileError) as error:
        read_model_file(path)
    check_error(error, path, fragment)
    assert fragment in error.value.problem and REFIT not in error.value.problem


def test_the_error_survives_pickling() -> None:
    error = pickle.loads(pickle.dumps(ModelFileError("m.npz", "no manifest")))
    assert (str(error), error.problem) == (f"m.npz: no manifest{REFIT}", "no manifest")


def test_a_missing_file_is_not_found(tmp_path) -> None:
    with pytest.raises(FileNotFoundError):
        read_model_file(tmp_path / "absent.npz")


# --------------------------------------------------------------------------- loaded models


def plays() -> sp.csr_matrix:
    return sp.random(12, 9, density=0.5, random_state=np.random.default_rng(0),
                     format="csr") * 10


def edited(path: Path, name: str, edit) -> None:
    """Rewrite the array ``name`` of a model file, and its manifest entry, with ``edit``."""
    arrays = raw(path)
    arrays[name] = edit(arrays[name].copy())
    manifest = json.loads(str(arrays[MANIFEST]))
    manifest["arrays"][name] = {"shape": list(arrays[name].shape),
                                "dtype": arrays[name].dtype.str}
    arrays[MANIFEST] = np.array(json.dumps(manifest))
    with path.open("wb") as handle:
        np.savez(handle, **arrays)


def nan_at_first(values: np.ndarray) -> np.ndarray:
    values.flat[0] = np.nan
    return values


EDITS = {
    "als-nan-factor": ("als", "arr:item_factors", nan_at_first,
                       "item_factors holds NaN or infinite values"),
    "als-inf-factor": ("als", "arr:user_factors", lambda v: v * np.inf,
                       "user_factors holds NaN or infinite values"),
    "als-short-factors": ("als", "arr:user_factors", lambda v: v[:-1],
                          "factors of shapes (11, 4) and (9, 4) for 12 users x 9 artists"),
    "item-knn-nan-similarity": ("item-knn", "csr:similarity_:data", nan_at_first,
                                "similarity_ holds NaN or infinite values"),
    "ease-nan-weights": ("ease", "arr:weights_", nan_at_first,
                         "weights_ holds NaN or infinite values"),
    "listeners-cut": ("popularity", "arr:item_listeners_", lambda v: v[:-1],
                      "item_listeners_ has shape (8,), not (9,)"),
    "broken-sparse": ("item-knn", "csr:similarity_:indptr", lambda v: v[:-2],
                      "cannot rebuild the model (ValueError"),
}


@pytest.mark.parametrize("kind", EDITS)
def test_load_checks_the_arrays_as_fit_does(tmp_path, kind) -> None:
    name, array, edit, fragment = EDITS[kind]
    path = tmp_path / "model.npz"
    params = {"factors": 4, "iterations": 2} if name == "als" else {}
    create(name, **params).fit(plays(), show_progress=False).save(path)
    Recommender.load(path)  # valid before the edit
    edited(path, array, edit)
    with pytest.raises(ModelFileError) as error:
        Recommender.load(path)
    check_error(error, path, fragment)


def test_fit_and_load_name_the_same_array(tmp_path) -> None:
    model = create("als", factors=4, iterations=2).fit(plays(), show_progress=False)
    model.item_factors[0, 0] = np.inf
    assert model._nonfinite_array() == "item_factors"
    model.save(tmp_path / "model.npz")
    with pytest.raises(ModelFileError, match="item_factors holds NaN or infinite values"):
        Recommender.load(tmp_path / "model.npz")


def test_unknown_parameters_and_other_classes_are_refused(tmp_path) -> None:
    path = tmp_path / "model.npz"
    create("item-knn").fit(plays()).save(path)
    with pytest.raises(ModelFileError) as error:
        create("als").load(path)
    check_error(error, path, "holds a ItemKNNRecommender, not a ALSRecommender",
                "; load it with ItemKNNRecommender.load")
    rewrite(path, params={"not_a_parameter": 1})
    with pytest.raises(ModelFileError) as error:
        Recommender.load(path)
    check_error(error, path, "cannot rebuild the model (ValueError: ItemKNNRecommender has no "
                "parameter(s) not_a_parameter")
    write_model_file(path, ModelFile("CFModel", {}, {}))
    with pytest.raises(ModelFileError, match="holds a CFModel, not a Recommender"):
        Recommender.load(path)

