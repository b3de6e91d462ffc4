"""The on-disk model cache: fitted models kept between calls, checked when read.

Owns where cached models live (``$LASTFM_REC_CACHE``, else ``$XDG_CACHE_HOME/lastfm-rec``,
else ``~/.cache/lastfm-rec``), the key of a cached model (the data files' SHA-256, the model
name and its parameters), storing and restoring a model with its checks, and listing and
clearing the cache.

A cache file is a model file (:mod:`lastfm_rec.files`, what :meth:`Recommender.save`
writes) with float64 arrays stored as float32 (half the size; play counts stay exact) and
its own name in the manifest's metadata. Reading checks the file, the model class, the
fitted shape and the name; a file that fails any check (an old cache file of another
format included) is *damaged*: :func:`cached_model` then warns (:class:`CacheWarning`, one
line naming the file) and fits again. Every write is atomic
(:func:`lastfm_rec.files.atomic_write`), so two processes fitting the same model at once
both answer and leave one valid file, and an interrupted write (Ctrl-C) leaves no temporary
file behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lastfm_rec.data.hetrec import REQUIRED_FILES
from lastfm_rec.files import TEMP_SUFFIX, ModelFileError, read_model_file, write_model_file
from lastfm_rec.models import Recommender, create

CACHE_ENV = "LASTFM_REC_CACHE"
_SUFFIX = ".npz"
#: The manifest metadata naming the file the model was stored as.
_ENTRY = "cache_entry"


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
            return restore(path, expected, shape)
        except DamagedCacheError as exc:
            warnings.warn(f"cache {path} is damaged ({exc}); retraining", CacheWarning,
                          stacklevel=2)
    model = fit()
    try:
        store(model, path)
    except OSError as exc:
        warnings.warn(f"cannot write the cache {path} ({exc}); the model is not kept",
                      CacheWarning, stacklevel=2)
        return model
    del model  # the fitted arrays are not held beside the file's while it is read back
    return restore(path, expected, shape)


def store(model: Recommender, path: Path) -> None:
    """Write ``model`` to the cache file ``path`` atomically.

    Float64 arrays are stored as float32; :func:`restore` gives them back as float64.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    content = model.model_file()
    content.meta[_ENTRY] = path.name
    write_model_file(path, content, compact=True)


def restore(path: Path, expected_class: str, shape: tuple[int, int]) -> Recommender:
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
        The file fails :func:`~lastfm_rec.files.read_model_file` or
        :meth:`Recommender.load`'s checks, was stored under another name, or holds
        another model or a model of another shape.
    """
    try:
        content = read_model_file(path)
    except ModelFileError as exc:
        raise DamagedCacheError(exc.problem) from exc
    if content.model != expected_class:
        raise DamagedCacheError(f"holds {content.model}, not a {expected_class}")
    if content.meta.get("shape") != list(shape):
        raise DamagedCacheError(f"fitted on another play matrix than {shape[0]} x {shape[1]}")
    if content.meta.get(_ENTRY) != path.name:
        raise DamagedCacheError(f"stored as {content.meta.get(_ENTRY)!r}, not as {path.name}")
    try:
        return Recommender.from_model_file(content)
    except ModelFileError as exc:
        raise DamagedCacheError(exc.problem) from exc


def entries(folder: Path | None = None) -> list[CacheEntry]:
    """The cached models and leftover temporary files in ``folder`` (default :func:`cache_dir`)."""
    folder = cache_dir() if folder is None else folder
    if not folder.is_dir():
        return []
    found = [CacheEntry(p, p.stat().st_size, p.name.rsplit("-", 1)[0])
             for p in folder.glob(f"*{_SUFFIX}") if not p.name.startswith(".")]
    found += [CacheEntry(p, p.stat().st_size, None)
              for p in folder.glob(f".*{_SUFFIX}.*{TEMP_SUFFIX}")]
    return sorted(found, key=lambda entry: entry.path.name)


def clear(folder: Path | None = None) -> list[CacheEntry]:
    """Delete every entry of :func:`entries`; returns what was deleted."""
    removed = entries(folder)
    for entry in removed:
        entry.path.unlink(missing_ok=True)
    return removed
