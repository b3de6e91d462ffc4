"""Atomic writes and the model file format.

Owns the two rules every file the package writes follows:

* :func:`atomic_write`: the content goes to a temporary file of the writer's own in the
  target's folder (``.<name>.<random>.tmp``, created with the usual permissions) and is
  renamed over the target only once complete and flushed to disk. A reader sees the old
  file or the new one, never part of one; two writers of the same file never share a
  temporary file (the last rename wins); a failure or Ctrl-C removes the temporary file
  and leaves the target as it was.
* The model file (:func:`write_model_file`, :func:`read_model_file`): the one ``.npz``
  layout of every saved model (``Recommender.save``, the serving cache, ``CFModel.save``).
  It holds the model's arrays and ``__manifest__``, a JSON string naming the format and
  its version, the model class, its parameters, every array's shape and dtype, and free
  metadata. Files are read with ``allow_pickle=False``; one that is damaged, of another
  format or of a newer version raises :class:`ModelFileError`, one line naming the file
  and what to do. The archive is an uncompressed ``.npz`` whose arrays start at multiples
  of :data:`ALIGN` bytes, so a file read from a path is memory-mapped (copy-on-write)
  rather than read: only the pages a caller touches are read, after each array's CRC-32
  is checked as ``np.load`` checks it. A mapped file must not be changed in place while
  its model is in use; the package replaces files whole (:func:`atomic_write`).

Imports nothing from the package, so every layer may use it.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import mmap
import os
import secrets
import struct
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

#: Ends the name of a temporary file of :func:`atomic_write` (``.<target>.<random>.tmp``).
TEMP_SUFFIX = ".tmp"
#: The ``format`` of a model file's manifest.
FORMAT = "lastfm-rec model"
#: The manifest's ``version``: files of a higher version are refused, not guessed at.
FORMAT_VERSION = 1
#: The member of the ``.npz`` holding the manifest.
MANIFEST = "__manifest__"
_REFIT = "refit the model and save it again"
#: The manifest's entries besides format and version, and their JSON types.
_ENTRIES = {"model": str, "params": dict, "meta": dict, "arrays": dict}
#: How an ``.npz`` (a zip archive) starts.
_ZIP_MAGIC = b"PK\x03\x04"
#: Every array's data starts at a multiple of this many bytes in the file, so that reading
#: can map it into memory as it is (BLAS and the compiled loops want aligned data).
ALIGN = 64
#: A zip member's local header: the fixed part and the ZIP64 extra field written after
#: any other extra field (every member is written with ZIP64 sizes, as ``np.savez`` does).
_LOCAL_HEADER, _ZIP64_EXTRA = 30, 20
#: The id of the extra field that pads a local header (the one Android's zipalign uses).
_PADDING_FIELD = 0xD935
# What reading a damaged .npz raises: a cut-off archive, a bad CRC, a missing or malformed
# member, an object array (it would need a pickle).
_READ_ERRORS = (OSError, EOFError, ValueError, KeyError, TypeError, zipfile.BadZipFile)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, text: bool = False) -> Iterator[IO[Any]]:
    """Write ``path`` all at once: yields a file to write, renamed to ``path`` on success.

    Parameters
    ----------
    path
        The file to write; its folder must exist.
    text
        Yield a UTF-8 text file (newlines written as given) instead of a binary one.

    Yields
    ------
    IO
        A new temporary file beside ``path``, of this writer alone. When the block ends
        normally it is flushed to disk and renamed to ``path``; when it raises (Ctrl-C
        included), it is removed and ``path`` is left as it was.
    """
    path = Path(path)
    temp, handle = _new_temporary(path)
    try:
        options = {"encoding": "utf-8", "newline": ""} if text else {}
        with os.fdopen(handle, "w" if text else "wb", **options) as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def _new_temporary(path: Path) -> tuple[Path, int]:
    """A new, empty file beside ``path`` that no other writer uses, and its descriptor.

    Created with mode 0666 less the umask (``tempfile.mkstemp`` would make it owner-only),
    so the renamed file gets the permissions of any other file written there.
    """
    while True:
        temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}{TEMP_SUFFIX}")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        with contextlib.suppress(FileExistsError):  # another writer's name: draw again
            return temp, os.open(temp, flags, 0o666)


class ModelFileError(ValueError):
    """A model file that cannot be read: damaged, of another format or of a newer version.

    The message is one line: the file, the problem and what to do. ``problem`` is the
    middle part alone (the serving cache words its own warning around it).
    """

    def __init__(self, source: str, problem: str, advice: str = _REFIT) -> None:
        super().__init__(f"{source}: {problem}; {advice}")
        self.source, self.problem, self.advice = source, problem, advice

    def __reduce__(self) -> tuple[type, tuple[str, str, str]]:
        # Rebuilt from its parts, not the message (e.g. when raised in a worker process).
        return type(self), (self.source, self.problem, self.advice)


@dataclass
class ModelFile:
    """What a model file holds.

    Attributes
    ----------
    model
        The model's class name.
    params
        Its parameters: a dict that survives ``json.dumps`` (strings, numbers, booleans,
        ``None``, lists and dicts of them); given back as ``json.loads`` returns it.
    arrays
        Its arrays by name (no object arrays: they would need pickles).
    meta
        Anything else as JSON (the fitted shape, a training history's layout, a cache key).
    source
        Where the content was read from (the path, for messages); not written.
    """

    model: str
    params: dict[str, Any]
    arrays: dict[str, np.ndarray]
    meta: dict[str, Any] = field(default_factory=dict)
    source: str = "model file"


def write_model_file(file: str | os.PathLike | IO[bytes], content: ModelFile,
                     compact: bool = False) -> None:
    """Write ``content`` as a model file (``np.savez`` of the arrays and the manifest).

    Parameters
    ----------
    file
        A path, written with :func:`atomic_write` exactly there (no ``.npz`` appended), or
        an open binary file.
    content
        What to write (``source`` is ignored).
    compact
        Store float64 arrays as float32 (half the size); :func:`read_model_file` gives
        them back as float64.
    """
    arrays = {name: np.asarray(value) for name, value in content.arrays.items()}
    if MANIFEST in arrays:
        raise ValueError(f"{MANIFEST} is the manifest's name: rename that array")
    manifest = {"format": FORMAT, "version": FORMAT_VERSION, "model": content.model,
                "params": content.params, "meta": content.meta,
                "arrays": {name: {"shape": list(value.shape), "dtype": value.dtype.str}
                           for name, value in arrays.items()}}
    if compact:
        arrays = {name: value.astype(np.float32) if value.dtype == np.float64 else value
                  for name, value in arrays.items()}
    arrays[MANIFEST] = np.array(json.dumps(manifest))
    if hasattr(file, "write"):
        _write_npz(file, arrays)
        return
    with atomic_write(file) as stream:
        _write_npz(stream, arrays)


def _write_npz(stream: IO[bytes], arrays: dict[str, np.ndarray]) -> None:
    """What ``np.savez`` writes, with each array's data at a multiple of :data:`ALIGN`.

    ``np.lib.format`` pads an array's ``.npy`` header to a multiple of 64 bytes; an extra
    field in the member's local header pads what comes before it. Members are dated
    1980-01-01, so equal content gives equal files.
    """
    with zipfile.ZipFile(stream, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, value in arrays.items():
            member = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            unpadded = (archive.fp.tell() + _LOCAL_HEADER + len(member.filename.encode())
                        + _ZIP64_EXTRA)
            gap = -(unpadded + 4) % ALIGN
            member.extra = struct.pack("<HH", _PADDING_FIELD, gap) + bytes(gap)
            with archive.open(member, "w", force_zip64=True) as out:
                np.lib.format.write_array(out, value, allow_pickle=False)


def read_model_file(file: str | os.PathLike | IO[bytes]) -> ModelFile:
    """Read and check a file written by :func:`write_model_file`.

    Every array is checked against the manifest (present, nothing extra, same shape and
    dtype, or float32 for a compacted float64) and given back with the manifest's dtype.

    Raises
    ------
    ModelFileError
        The file cannot be read as an ``.npz`` without pickles, has no manifest or an
        unreadable one, names another format or a newer version, or its arrays differ
        from its manifest.
    """
    source = str(getattr(file, "name", "model file") if hasattr(file, "read") else file)
    arrays = _npz_arrays(file, source)
    manifest = _manifest(arrays.pop(MANIFEST, None), source)
    arrays = _checked_arrays(arrays, manifest["arrays"], source)
    return ModelFile(manifest["model"], manifest["params"], arrays, manifest["meta"], source)


def _npz_arrays(file: str | os.PathLike | IO[bytes], source: str) -> dict[str, np.ndarray]:
    if not hasattr(file, "read"):
        # np.load leaves a path it opened open when the zip is bad: open it here (a
        # missing file raises FileNotFoundError as usual).
        with open(file, "rb") as stream:
            return _npz_arrays(stream, source)
    start = file.tell()
    magic = file.read(len(_ZIP_MAGIC))
    file.seek(start)
    if magic != _ZIP_MAGIC:  # else numpy tries a .npy or a pickle and says so
        raise ModelFileError(source, "not an .npz file" + ("" if magic else " (empty)"))
    try:
        if start == 0 and _has_descriptor(file):
            return _mapped_arrays(file)
        with np.load(file, allow_pickle=False) as loaded:
            return {key: loaded[key] for key in loaded.files}
    except _READ_ERRORS as exc:
        raise ModelFileError(source, f"not a readable .npz file ({_one_line(exc)})") from exc


def _has_descriptor(file: IO[bytes]) -> bool:
    """Whether ``file`` is a file on disk (it can be mapped), not e.g. a ``BytesIO``."""
    try:
        file.fileno()
    except (OSError, ValueError):  # io.UnsupportedOperation is both
        return False
    return True


def _mapped_arrays(file: IO[bytes]) -> dict[str, np.ndarray]:
    """The ``.npz`` arrays of the file on disk ``file``, mapped into memory copy-on-write
    (writing to them never changes the file), each checked against its CRC-32."""
    with zipfile.ZipFile(file) as archive:
        members = archive.infolist()
    whole = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_COPY)
    return {member.filename.removesuffix(".npy"): _mapped_member(whole, member)
            for member in members}


def _mapped_member(whole: mmap.mmap, member: zipfile.ZipInfo) -> np.ndarray:
    """One ``.npy`` member of the mapped archive ``whole`` as an array over the mapping
    (a copy when its data is not aligned for its type, as in files of ``np.savez``)."""
    start = _checked_member(whole, member)
    with memoryview(whole) as view, view[start:start + member.compress_size] as data:
        header = io.BytesIO(data[:_npy_header_length(data)])
    read_header = (np.lib.format.read_array_header_1_0
                   if np.lib.format.read_magic(header) == (1, 0)
                   else np.lib.format.read_array_header_2_0)
    shape, fortran_order, dtype = read_header(header)
    if dtype.hasobject:
        raise ValueError("Object arrays cannot be loaded when allow_pickle=False")
    if header.tell() + dtype.itemsize * math.prod(shape) > member.compress_size:
        raise ValueError(f"file {member.filename!r} holds less data than its header says")
    array = np.ndarray(shape, dtype, buffer=whole, offset=start + header.tell(),
                       order="F" if fortran_order else "C")
    return array if array.flags.aligned else array.copy()


def _checked_member(whole: mmap.mmap, member: zipfile.ZipInfo) -> int:
    """Where ``member``'s data starts in ``whole``, once its CRC-32 is checked."""
    if member.compress_type != zipfile.ZIP_STORED or not member.filename.endswith(".npy"):
        raise ValueError(f"member {member.filename} is not an uncompressed .npy array")
    header = whole[member.header_offset:member.header_offset + _LOCAL_HEADER]
    if header[:4] != _ZIP_MAGIC:
        raise zipfile.BadZipFile(f"bad local header for file {member.filename!r}")
    name_length, extra_length = struct.unpack("<HH", header[26:30])
    start = member.header_offset + _LOCAL_HEADER + name_length + extra_length
    with memoryview(whole) as view, view[start:start + member.compress_size] as data:
        if len(data) != member.compress_size:
            raise EOFError(f"file {member.filename!r} is cut off")
        if zlib.crc32(data) != member.CRC:
            raise zipfile.BadZipFile(f"Bad CRC-32 for file {member.filename!r}")
    return start


def _npy_header_length(data: memoryview) -> int:
    """Bytes of a ``.npy`` file's magic, version and header (version 1: 2 length bytes,
    version 2: 4)."""
    if len(data) < 12 or data[6] not in (1, 2):
        raise ValueError("not a .npy array of version 1 or 2")
    width = 2 if data[6] == 1 else 4
    return 8 + width + int.from_bytes(data[8:8 + width], "little")


def _manifest(stored: np.ndarray | None, source: str) -> dict[str, Any]:
    """The manifest, checked to name this format and version and to have every entry."""
    if stored is None:
        raise ModelFileError(source, "not a lastfm-rec model file (no manifest): written by "
                             "another program or an older version")
    try:
        manifest = json.loads(str(stored[()]))
    except ValueError as exc:
        raise ModelFileError(source, f"unreadable manifest ({_one_line(exc)})") from exc
    found = manifest.get("format") if isinstance(manifest, dict) else None
    if found != FORMAT:
        raise ModelFileError(source, f"format {found!r}, not {FORMAT!r}: written by another "
                             "program")
    version = manifest.get("version")
    if isinstance(version, int) and version > FORMAT_VERSION:
        raise ModelFileError(source, f"format version {version} is newer than this "
                             f"lastfm-rec reads ({FORMAT_VERSION})",
                             f"upgrade lastfm-rec, or {_REFIT} with this version")
    if version != FORMAT_VERSION:
        raise ModelFileError(source, f"unknown format version {version!r}")
    wrong = [key for key, kind in _ENTRIES.items() if not isinstance(manifest.get(key), kind)]
    if wrong:
        raise ModelFileError(source, f"manifest entries {', '.join(wrong)} missing or of the "
                             "wrong type")
    return manifest


def _checked_arrays(arrays: dict[str, np.ndarray], listed: dict[str, Any],
                    source: str) -> dict[str, np.ndarray]:
    """``arrays`` as the manifest lists them (shape, dtype), or a ModelFileError."""
    try:
        wanted = {name: (tuple(entry["shape"]), np.dtype(entry["dtype"]))
                  for name, entry in listed.items()}
    except (ValueError, TypeError, KeyError) as exc:
        raise ModelFileError(source, f"unreadable manifest ({_one_line(exc)})") from exc
    odd = sorted(set(arrays) ^ set(wanted))
    if odd:
        state = "missing" if odd[0] in wanted else "not in the manifest"
        raise ModelFileError(source, f"array {odd[0]} is {state}")
    for name, (shape, dtype) in wanted.items():
        stored = arrays[name]
        compacted = dtype == np.float64 and stored.dtype == np.float32
        if stored.shape != shape or not (stored.dtype == dtype or compacted):
            raise ModelFileError(source, f"array {name} is {stored.dtype} {stored.shape}, the "
                                 f"manifest says {dtype} {shape}")
    return {name: arrays[name].astype(dtype, copy=False) for name, (_, dtype) in wanted.items()}


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
