"""The on-disk model cache: fitted models kept between calls, checked when read.

Owns where cached models live (``$LASTFM_REC_CACHE``, else ``$XDG_CACHE_HOME/lastfm-rec``,
else ``~/.cache/lastfm-rec``), the key of a cached model (the data files' SHA-256, the model
name and its parameters), the file format and its checks, and listing and clearing the cache.

A cache file holds the arrays of :meth:`Recommender.save` (``np.savez``, no pickles) with
float64 arrays stored as float32 (half the size; play counts stay exact), a format version
and a manifest of every array's shape and original dtype. Reading checks all of it; a file
that fails any check is *damaged*: :func:`cached_model` then warns (:class:`CacheWarning`,
one line naming the file) and fits again. Every write goes to a temporary file of the
writer's own in the cache folder, renamed into place, so two processes fitting the same
model at once both answer and leave one valid file, and an interrupted write (Ctrl-C) leaves
no temporary file behind.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lastfm_rec.data.hetrec import REQUIRED_FILES
from lastfm_rec.models import Recommender, create

CACHE_ENV = "LASTFM_REC_CACHE"
#: Version of the cache file layout; a file with another version is refitted.
FORMAT_VERSION = 1
_FORMAT = "cache:format"
_MANIFEST = "cache:manifest"
_SUFFIX = ".npz"
_TEMP_SUFFIX = ".tmp"
# What reading a damaged .npz raises: cut-off zip, empty file, random bytes (taken for a
# pickle), a bad CRC, a missing or malformed member.
_READ_ERRORS = (OSError, EOFError, ValueError, KeyError, TypeError, zipfile.BadZipFile)


class CacheWarning(UserWarning):
    """A cached model could not be used (damaged, or written by another version)."""


class DamagedCacheError(Exception):
    """A cache file that cannot be used, and why (one line); :func:`cached_model` refits."""


@dataclass(frozen=True)
class CacheEntry:
    """A file in the cache folder.

    Attributes
    ----------
    path
        The file.
    size
        Its size in bytes.
    model
        The registered model name it holds (from the file name); ``None`` for a leftover
        temporary file of an interrupted write.
    """

    path: Path
    size: int
    model: str | None


def cache_dir() -> Path:
    """``$LASTFM_REC_CACHE``, else ``$XDG_CACHE_HOME/lastfm-rec``, else ``~/.cache/lastfm-rec``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "lastfm-rec"


def data_fingerprint(data_dir: Path) -> str:
    """SHA-256 over the required files' contents: changes whenever the data does."""
    digest = hashlib.sha256()
    for name in REQUIRED_FILES:
        digest.update(name.encode())
        digest.update(hashlib.sha256((data_dir / name).read_bytes()).digest())
    return digest.hexdigest()


def cache_key(fingerprint: str, model_name: str, model: Recommender) -> str:
    """The cache file's key: the data's fingerprint, the model name and every parameter but
    the side data (which the data determines)."""
    return hashlib.sha256(json.dumps([fingerprint, model_name, model.saved_params()],
                                     sort_keys=True).encode()).hexdigest()[:20]


def model_path(data_dir: Path, model_name: str) -> Path:
    """Where the registered model ``model_name`` fitted on ``data_dir`` is cached."""
    key = cache_key(data_fingerprint(data_dir), model_name, create(model_name))
    return cache_dir() / f"{model_name}-{key}{_SUFFIX}"


def cached_model(data_dir: Path, model_name: str, shape: tuple[int, int],
                 fit: Callable[[], Recommender]) -> Recommender:
    """The model from the cache, or ``fit()`` stored in the cache and read back.

    Parameters
    ----------
    data_dir
        The data folder the model is fitted on (part of the cache key).
    model_name
        Registered model name.
    shape
        Users x artists of the play matrix: a cached model of another shape is damaged.
    fit
        Fits the model when the cache has none (or a damaged one).

    Returns
    -------
    Recommender
        Always as read from the cache file, so the first call answers exactly as later ones.
        Only when the cache folder cannot be written is the freshly fitted model returned
        (with a :class:`CacheWarning`).
    """
    path = model_path(data_dir, model_name)
    expected = type(create(model_name)).__name__
    if path.exists():
        try:
            return load_model(path, expected, shape)
        except DamagedCacheError as exc:
            warnings.warn(f"cache {path} is damaged ({exc}); retraining", CacheWarning,
                          stacklevel=2)
    model = fit()
    try:
        save_model(model, path)
    except OSError as exc:
        warnings.warn(f"cannot write the cache {path} ({exc}); the model is not kept",
                      CacheWarning, stacklevel=2)
        return model
    return load_model(path, expected, shape)


def save_model(model: Recommender, path: Path) -> None:
    """Write ``model`` to ``path`` atomically (own temporary file, then a rename).

    Float64 arrays are stored as float32; :func:`load_model` gives them back as float64.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    # Unique per writer; created here ("x") so it gets the usual permissions, as the cache
    # file it becomes.
    temp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}{_TEMP_SUFFIX}")
    try:
        temp.open("xb").close()
        model.save(temp)
        with np.load(temp, allow_pickle=False) as stored:
            arrays = {key: stored[key] for key in stored.files}
        manifest = {key: {"shape": list(value.shape), "dtype": value.dtype.str}
                    for key, value in arrays.items()}
        compact = {key: value.astype(np.float32) if value.dtype == np.float64 else value
                   for key, value in arrays.items()}
        del arrays
        with temp.open("wb") as out:
            np.savez(out, **compact, **{_FORMAT: np.array(FORMAT_VERSION),
                                        _MANIFEST: np.array(json.dumps(manifest))})
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def load_model(path: Path, expected_class: str, shape: tuple[int, int]) -> Recommender:
    """Read and check a cached model.

    Parameters
    ----------
    path
        The cache file.
    expected_class
        Class name the file must hold.
    shape
        Users x artists the model must have been fitted on.

    Raises
    ------
    DamagedCacheError
        The file cannot be read, lacks the format version or manifest, holds other arrays
        or shapes than its manifest, another model, or a model of another shape.
    """
    try:  # np.load leaves a path it opened open when the zip is bad: open it here
        with path.open("rb") as handle, np.load(handle, allow_pickle=False) as stored:
            arrays = {key: stored[key] for key in stored.files}
    except _READ_ERRORS as exc:
        raise DamagedCacheError(f"unreadable: {_one_line(exc)}") from exc
    manifest = _check(arrays, expected_class, shape)
    restored = {key: value.astype(manifest[key]["dtype"], copy=False)
                for key, value in arrays.items() if key in manifest}
    del arrays
    buffer = io.BytesIO()
    np.savez(buffer, **restored)
    del restored
    buffer.seek(0)
    try:
        return Recommender.load(buffer)
    except _READ_ERRORS as exc:
        raise DamagedCacheError(f"not a saved model: {_one_line(exc)}") from exc


def _check(arrays: dict[str, np.ndarray], expected_class: str,
           shape: tuple[int, int]) -> dict[str, dict]:
    """The manifest, after checking the arrays against it and the expected model."""
    if _FORMAT not in arrays or _MANIFEST not in arrays:
        raise DamagedCacheError("no cache format version: not written by this version")
    if arrays[_FORMAT].shape != () or int(arrays[_FORMAT]) != FORMAT_VERSION:
        raise DamagedCacheError(f"format {arrays[_FORMAT]}, expected {FORMAT_VERSION}")
    try:
        manifest = json.loads(str(arrays[_MANIFEST]))
        wanted = {key: tuple(entry["shape"]) for key, entry in manifest.items()}
        dtypes = {np.dtype(entry["dtype"]) for entry in manifest.values()}
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise DamagedCacheError(f"unreadable manifest: {_one_line(exc)}") from exc
    found = {key: value.shape for key, value in arrays.items() if key not in (_FORMAT,
                                                                              _MANIFEST)}
    if found != wanted:
        odd = sorted(set(found.items()) ^ set(wanted.items()))[0][0]
        raise DamagedCacheError(f"array {odd} missing, extra or of the wrong shape")
    if any(dtype.hasobject for dtype in dtypes):
        raise DamagedCacheError("object arrays")
    if "__class__" not in found or str(arrays["__class__"]) != expected_class:
        held = arrays.get("__class__", "no model")
        raise DamagedCacheError(f"holds {held}, not a {expected_class}")
    if "__shape__" not in found or tuple(int(v) for v in arrays["__shape__"]) != tuple(shape):
        raise DamagedCacheError(f"fitted on another play matrix than {shape[0]} x {shape[1]}")
    return manifest


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def entries(folder: Path | None = None) -> list[CacheEntry]:
    """The cached models and leftover temporary files in ``folder`` (default :func:`cache_dir`)."""
    folder = cache_dir() if folder is None else folder
    if not folder.is_dir():
        return []
    found = [CacheEntry(p, p.stat().st_size, p.name.rsplit("-", 1)[0])
             for p in folder.glob(f"*{_SUFFIX}") if not p.name.startswith(".")]
    found += [CacheEntry(p, p.stat().st_size, None)
              for p in folder.glob(f".*{_SUFFIX}.*{_TEMP_SUFFIX}")]
    return sorted(found, key=lambda entry: entry.path.name)


def clear(folder: Path | None = None) -> list[CacheEntry]:
    """Delete every entry of :func:`entries`; returns what was deleted."""
    removed = entries(folder)
    for entry in removed:
        entry.path.unlink(missing_ok=True)
    return removed
