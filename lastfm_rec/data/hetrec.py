"""Finding, downloading, verifying and loading the HetRec 2011 Last.fm 2K files.

Owns everything between the GroupLens zip and the raw pandas tables: where the data folder
is (explicit argument > ``LASTFM_REC_DATA`` > ``data/hetrec2011-lastfm-2k`` in the project),
an all-or-nothing download that checks sizes and SHA-256 before anything lands in the data
folder, and one loader per ``.dat`` file that returns typed columns. Every problem with the
files (wrong field counts, values that are not whole numbers, negative play counts, invalid
UTF-8, a missing header, repeated ids) surfaces as a one-line :class:`DataError` that names
the file and line and says what to do, so callers (and the CLI) never show a pandas
traceback. Files that load but differ from the published release give one
:class:`DataDifferenceWarning` per :func:`load_dataset`: any data in the format works, only
the figures differ. Cleaning and re-indexing belong to ``preprocessing``.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import http.client
import io
import os
import re
import shutil
import tempfile
import urllib.error
import urllib.request
import warnings
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

DATASET_URL = "https://files.grouplens.org/datasets/hetrec2011/hetrec2011-lastfm-2k.zip"
DATA_FOLDER = "hetrec2011-lastfm-2k"
ENV_VAR = "LASTFM_REC_DATA"

# file name -> (bytes, sha256), from the GroupLens release (see /work/shared/data/README.md)
CHECKSUMS: dict[str, tuple[int, str]] = {
    "artists.dat": (
        1925879, "c173881362c6b28551368fecb3c0be5a6a30a6cd859e1f5775413dfe46d48648"),
    "tags.dat": (
        222521, "c815d7216101fd0ba9b9c59fa2a011998d2fd076e0064d281ec4153d95ae8095"),
    "user_artists.dat": (
        1203620, "254272fa721c3935e8be286d28c051b206844307128698ab4eaa41d483379416"),
    "user_friends.dat": (
        226130, "0360883a3557776e04fdebda851f2e5dd23e796cad7059b968acdebd528d13fa"),
    "user_taggedartists.dat": (
        4180216, "c4a9ffae9ab47a9f9b2f0678ab1f7e5c1db4ca818837d8cddd1f5699c5bbf048"),
}
REQUIRED_FILES = (
    "artists.dat",
    "tags.dat",
    "user_artists.dat",
    "user_friends.dat",
    "user_taggedartists.dat",
)
OPTIONAL_FILES = ("user_taggedartists-timestamps.dat",)

_DOWNLOAD_HINT = "run `lastfm-rec data` to download it, or set LASTFM_REC_DATA to its folder"
_CHUNK = 1 << 16
_TIMEOUT = 60  # seconds without data before a download is given up
_LINE_END = re.compile(rb"\r\n|\r|\n")


class DataDifferenceWarning(UserWarning):
    """The data files are not the published release (other data, or a damaged copy)."""


class DataError(Exception):
    """A problem with the data files, described in one line that says what to do."""

    def __init__(self, message: str) -> None:
        # Wrapped exception texts sometimes carry newlines; the CLI prints exactly one line.
        super().__init__(re.sub(r"\s*[\r\n]+\s*", " ", str(message)).strip())


# --------------------------------------------------------------------------- locating


def default_data_dir() -> Path:
    """Where the data lives when nothing else is said.

    Returns
    -------
    Path
        ``data/hetrec2011-lastfm-2k`` in the project checkout when the package runs from one
        (the folder above the package holds ``pyproject.toml``), else the same path under the
        current directory.
    """
    project = Path(__file__).resolve().parents[2]
    base = project if (project / "pyproject.toml").is_file() else Path.cwd()
    return base / "data" / DATA_FOLDER


def _missing_required(folder: Path) -> list[str]:
    return [name for name in REQUIRED_FILES if not (folder / name).is_file()]


def _require_complete(folder: Path, source: str) -> Path:
    missing = _missing_required(folder)
    if missing:
        what = "does not exist" if not folder.is_dir() else f"lacks {', '.join(missing)}"
        raise DataError(f"data folder {folder} ({source}) {what}: {_DOWNLOAD_HINT}")
    return folder


def _env_data_dir() -> Path | None:
    value = os.environ.get(ENV_VAR, "").strip()
    return Path(value).expanduser() if value else None


def find_data_dir(data_dir: str | os.PathLike | None = None) -> Path | None:
    """Find the folder that holds the HetRec files.

    Parameters
    ----------
    data_dir
        A folder to use. When given, it must hold all required files.

    Returns
    -------
    Path or None
        ``data_dir`` if given, else the folder named by ``LASTFM_REC_DATA`` if set, else
        :func:`default_data_dir` if it holds all required files, else None (so the caller
        can download).

    Raises
    ------
    DataError
        When ``data_dir`` or ``LASTFM_REC_DATA`` names a folder without all required files:
        the user said where the data is, so silently looking elsewhere would hide a mistake.
    """
    if data_dir is not None:
        return _require_complete(Path(data_dir).expanduser(), "given as data_dir")
    env = _env_data_dir()
    if env is not None:
        return _require_complete(env, f"from {ENV_VAR}")
    default = default_data_dir()
    return default if not _missing_required(default) else None


def _resolve(data_dir: str | os.PathLike | None) -> Path:
    """The folder a loader reads: an explicit folder as is, else the one found."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    found = find_data_dir()
    if found is None:
        raise DataError(f"HetRec data not found (not in {default_data_dir()}, {ENV_VAR} unset): "
                        f"run `lastfm-rec data` to download it, or set {ENV_VAR}")
    return found


# --------------------------------------------------------------------------- verifying


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _verify(folder: Path, checksums: Mapping[str, tuple[int, str]], where: str,
            advice: str) -> None:
    """Check presence, sizes and hashes; ``where`` and ``advice`` word the messages."""
    missing = _missing_required(folder)
    if missing:
        raise DataError(f"{', '.join(missing)} missing {where}; {advice}")
    for name, (size, digest) in checksums.items():
        path = folder / name
        if not path.is_file():
            continue  # only optional or extra files get here; required ones were checked
        actual_size = path.stat().st_size
        if actual_size != size:
            raise DataError(f"{name} {where} has {actual_size} bytes, expected {size}; {advice}")
        actual = _sha256(path)
        if actual != digest:
            raise DataError(
                f"{name} {where} has SHA-256 {actual}, expected {digest}; {advice}")


def verify_data(data_dir: str | os.PathLike,
                checksums: Mapping[str, tuple[int, str]] = CHECKSUMS) -> None:
    """Check that the data files are the published ones.

    Parameters
    ----------
    data_dir
        The data folder.
    checksums
        File name -> (bytes, sha256). Required files must exist; a listed optional file is
        checked only when present.

    Raises
    ------
    DataError
        A required file is missing, or a file's size or SHA-256 differs.
    """
    folder = Path(data_dir)
    advice = f"delete {folder} and run `lastfm-rec data` to download it again"
    _verify(folder, checksums, f"in {folder}", advice)


# --------------------------------------------------------------------------- downloading


def _download_target(data_dir: str | os.PathLike | None) -> Path:
    if data_dir is not None:
        return Path(data_dir).expanduser()
    return _env_data_dir() or default_data_dir()


def fetch_data(data_dir: str | os.PathLike | None = None, url: str = DATASET_URL,
               checksums: Mapping[str, tuple[int, str]] = CHECKSUMS,
               show_progress: bool = True) -> Path:
    """Make sure the HetRec files are on disk, downloading them when needed.

    Parameters
    ----------
    data_dir
        Target folder; None means ``LASTFM_REC_DATA`` if set, else :func:`default_data_dir`.
    url
        Where the zip is.
    checksums
        File name -> (bytes, sha256) that the extracted files must match.
    show_progress
        Show a tqdm progress bar while downloading.

    Returns
    -------
    Path
        The folder holding the files. When it already holds all required files nothing is
        downloaded (and nothing is verified: use :func:`verify_data`).

    Raises
    ------
    DataError
        On any failure (HTTP error, cut-off download, bad or unsafe zip, checksum mismatch).
        The target folder and its parent are then left exactly as they were.
    """
    target = _download_target(data_dir)
    if not _missing_required(target):
        return target
    if target.exists() and not target.is_dir():
        raise DataError(f"{target} is a file, not a folder: move it away or choose another "
                        "data folder")
    created = _make_parents(target.parent)
    try:
        with (
            _temp_path(target.parent, ".zip.part") as archive,
            _temp_path(target.parent, ".tmp", folder=True) as staging,
        ):
            _download(url, archive, show_progress)
            _extract(archive, staging, url)
            advice = ("the download is damaged or not the expected release: run `lastfm-rec "
                      "data` again, or check the URL")
            _verify(staging, checksums, f"in the archive from {url}", advice)
            _install(staging, target)
    except BaseException:
        for folder in reversed(created):  # only the empty folders this call made
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    return target


def _make_parents(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; return the ones created, outermost first."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()][::-1]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create {folder} ({exc}): choose a writable data folder") from exc
    return missing


@contextlib.contextmanager
def _temp_path(parent: Path, suffix: str, folder: bool = False) -> Iterator[Path]:
    """A hidden temporary file or folder in ``parent``, removed on exit unless moved."""
    prefix = f".{DATA_FOLDER}."
    try:
        if folder:
            path = Path(tempfile.mkdtemp(dir=parent, prefix=prefix, suffix=suffix))
        else:
            handle, name = tempfile.mkstemp(dir=parent, prefix=prefix, suffix=suffix)
            os.close(handle)
            path = Path(name)
    except OSError as exc:
        raise DataError(f"cannot write in {parent} ({exc}): choose a writable data folder") \
            from exc
    try:
        yield path
    finally:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _download(url: str, dest: Path, show_progress: bool) -> None:
    """Stream ``url`` into ``dest``; a short or failed transfer is a DataError."""
    hint = ("check the connection and run `lastfm-rec data` again, or download the zip by "
            f"hand, unzip it and set {ENV_VAR} to the folder")
    try:
        with urllib.request.urlopen(url, timeout=_TIMEOUT) as response:
            total = _content_length(response)
            received = _copy(response, dest, total, show_progress)
    except urllib.error.HTTPError as exc:
        raise DataError(f"download of {url} failed: HTTP {exc.code} {exc.reason}; {hint}") \
            from exc
    except urllib.error.URLError as exc:
        raise DataError(f"download of {url} failed: {exc.reason}; {hint}") from exc
    except (http.client.HTTPException, OSError, ValueError) as exc:
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        raise DataError(f"download of {url} failed: {reason}; {hint}") from exc
    # http.client returns b"" instead of raising when the server closes early, so a cut-off
    # transfer is only visible by comparing with Content-Length.
    if total is not None and received != total:
        raise DataError(f"download of {url} was cut off after {received} of {total} bytes; "
                        f"{hint}")


def _content_length(response: http.client.HTTPResponse) -> int | None:
    value = response.headers.get("Content-Length")
    return int(value) if value and value.strip().isdigit() else None


def _copy(response: http.client.HTTPResponse, dest: Path, total: int | None,
          show_progress: bool) -> int:
    from tqdm.auto import tqdm  # imported here: only downloads need it

    received = 0
    with dest.open("wb") as out, tqdm(total=total, unit="B", unit_scale=True,
                                      unit_divisor=1024, desc=DATA_FOLDER,
                                      disable=not show_progress) as bar:
        while block := response.read(_CHUNK):
            out.write(block)
            received += len(block)
            bar.update(len(block))
    return received


def _member_path(name: str, url: str) -> PurePosixPath:
    """The member's path, or a DataError when extracting it could escape the folder."""
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or re.match(r"^[A-Za-z]:", name) or ".." in path.parts:
        raise DataError(f"unsafe path {name!r} in the zip from {url}: refusing to extract; "
                        "the URL does not serve the HetRec release, check it")
    return path


def _pick_members(archive: zipfile.ZipFile, url: str) -> list[tuple[zipfile.ZipInfo, str]]:
    """The ``.dat`` files and ``readme.txt`` of the folder that holds the release."""
    paths = [(info, _member_path(info.filename, url)) for info in archive.infolist()]
    files = [(info, path) for info, path in paths
             if not info.is_dir() and path.parts and path.parts[0] != "__MACOSX"]
    # The real zip has the files at the top level, other copies inside hetrec2011-lastfm-2k/;
    # take whichever folder holds the required files, the shallowest if several do.
    folders = {path.parent for _, path in files if path.name in REQUIRED_FILES}
    if not folders:
        raise DataError(f"the zip from {url} holds none of {', '.join(REQUIRED_FILES)}: "
                        "the URL does not serve the HetRec release, check it")
    home = min(folders, key=lambda p: (len(p.parts), str(p)))
    return [(info, path.name) for info, path in files
            if path.parent == home and (path.suffix == ".dat" or path.name == "readme.txt")]


def _extract(archive_path: Path, staging: Path, url: str) -> None:
    try:
        with zipfile.ZipFile(archive_path) as archive:
            for info, name in _pick_members(archive, url):
                with archive.open(info) as src, (staging / name).open("wb") as dst:
                    shutil.copyfileobj(src, dst, _CHUNK)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError,
            ValueError) as exc:
        raise DataError(f"the file downloaded from {url} is not a valid zip ({exc}); run "
                        "`lastfm-rec data` again, or check the URL") from exc
    except OSError as exc:
        raise DataError(f"cannot extract the zip from {url} into {staging.parent} ({exc}): "
                        "free some space or choose a writable data folder") from exc


def _install(staging: Path, target: Path) -> None:
    """Move the checked files into ``target`` (a single rename when the target is new)."""
    os.chmod(staging, 0o755)  # mkdtemp makes it owner-only
    try:
        if target.is_dir() and not any(target.iterdir()):
            target.rmdir()
        if not target.exists():
            os.replace(staging, target)
            return
        # The target holds other things (a partial copy, notes): replace file by file.
        for path in sorted(staging.iterdir()):
            os.replace(path, target / path.name)
    except OSError as exc:
        raise DataError(f"cannot move the downloaded files into {target} ({exc}): choose a "
                        "writable data folder") from exc


# --------------------------------------------------------------------------- loading


@dataclass(frozen=True)
class _Table:
    file: str
    columns: tuple[str, ...]  # as in the file's header
    integer: tuple[str, ...]
    encoding: str = "utf-8"
    key: tuple[str, ...] = ()  # columns that identify a row: no two rows may share them
    non_negative: tuple[str, ...] = ()


_ARTISTS = _Table("artists.dat", ("id", "name", "url", "pictureURL"), ("id",), key=("id",))
_TAGS = _Table("tags.dat", ("tagID", "tagValue"), ("tagID",), "latin-1", key=("tagID",))
_USER_ARTISTS = _Table("user_artists.dat", ("userID", "artistID", "weight"),
                       ("userID", "artistID", "weight"), key=("userID", "artistID"),
                       non_negative=("weight",))
_USER_FRIENDS = _Table("user_friends.dat", ("userID", "friendID"), ("userID", "friendID"),
                       key=("userID", "friendID"))
_TAGGED_COLUMNS = ("userID", "artistID", "tagID", "day", "month", "year")
_USER_TAGGED = _Table("user_taggedartists.dat", _TAGGED_COLUMNS, _TAGGED_COLUMNS,
                      key=("userID", "artistID", "tagID"))
_STAMP_COLUMNS = ("userID", "artistID", "tagID", "timestamp")
_TIMESTAMPS = _Table(OPTIONAL_FILES[0], _STAMP_COLUMNS, _STAMP_COLUMNS)


def _fix_hint(path: Path) -> str:
    return f"fix it, or delete {path.name} and run `lastfm-rec data` to download it again"


def _read_bytes(path: Path) -> bytes:
    if not path.is_file():
        raise DataError(f"{path} not found: {_DOWNLOAD_HINT}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path} ({exc}): check its permissions") from exc
    if not data.strip():
        raise DataError(f"{path} is empty: delete it and run `lastfm-rec data` to download "
                        "it again")
    return data


def _header(path: Path, data: bytes, table: _Table) -> list[str]:
    first = _LINE_END.split(data, maxsplit=1)[0]
    try:
        fields = first.decode(table.encoding).lstrip("\ufeff").split("\t")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} line 1 is not valid {table.encoding}: {_fix_hint(path)}") \
            from exc
    missing = [column for column in table.columns if column not in fields]
    if missing:
        raise DataError(f"{path}: the header (line 1) lacks column {', '.join(missing)} "
                        f"(found {', '.join(fields)}); {_fix_hint(path)}")
    return fields


def _check_field_counts(path: Path, data: bytes, n_fields: int) -> None:
    """Every line must have the header's number of tab-separated fields.

    Counted with numpy over the raw bytes rather than left to pandas, which pads short rows
    silently and turns an extra field on the first row into an index.
    """
    buf = np.frombuffer(data, dtype=np.uint8)
    newline = buf == 10
    lone_cr = (buf == 13) & ~np.r_[newline[1:], False]  # pandas also ends lines at a bare \r
    ends = np.flatnonzero(newline | lone_cr)
    if ends.size == 0 or ends[-1] != buf.size - 1:
        ends = np.r_[ends, buf.size]  # last line without a line break
    starts = np.r_[0, ends[:-1] + 1]
    tabs = np.flatnonzero(buf == 9)
    counts = np.searchsorted(tabs, ends) - np.searchsorted(tabs, starts) + 1
    bad = np.flatnonzero(counts != n_fields)
    if bad.size == 0:
        return
    index = int(bad[0])
    line = data[starts[index]:ends[index]]
    what = "is blank" if not line.strip() else f"has {counts[index]} fields"
    raise DataError(f"{path} line {index + 1} {what}, expected {n_fields} tab-separated "
                    f"fields; {_fix_hint(path)}")


def _parse(path: Path, data: bytes, table: _Table, as_integers: bool) -> pd.DataFrame | None:
    """Parse the checked bytes; None when ``as_integers`` and an integer column is not.

    The C parser converts integer columns ~20x faster than ``pd.to_numeric`` on strings, so
    the all-strings parse only runs to find the line of a bad value.
    """
    dtype: dict[str, object] = dict.fromkeys(table.columns, str)
    if as_integers:
        dtype.update(dict.fromkeys(table.integer, "int64"))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # numpy's cast warning on failure
            return pd.read_csv(io.BytesIO(data), sep="\t", quoting=csv.QUOTE_NONE, dtype=dtype,
                               usecols=list(table.columns), keep_default_na=False,
                               na_filter=False, skip_blank_lines=False, index_col=False,
                               encoding=table.encoding, engine="c")
    except UnicodeDecodeError as exc:
        raise DataError(_decode_problem(path, data, table.encoding)) from exc
    except pd.errors.ParserError as exc:
        raise DataError(f"{path} cannot be parsed ({exc}): {_fix_hint(path)}") from exc
    except (ValueError, OverflowError) as exc:
        if as_integers:
            return None
        raise DataError(f"{path} cannot be parsed ({exc}): {_fix_hint(path)}") from exc


def _decode_problem(path: Path, data: bytes, encoding: str) -> str:
    try:
        data.decode(encoding)
        where = ""
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        where = f" on line {line}"
    return f"{path} is not valid {encoding}{where}: {_fix_hint(path)}"


def _first_non_integer(frame: pd.DataFrame, columns: tuple[str, ...]) -> tuple[int, str]:
    """Row and column of the first value that is not an int64 (same rules as the C parser)."""
    first: tuple[int, str] | None = None
    for column in columns:
        numbers = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
        with np.errstate(invalid="ignore"):
            ok = np.isfinite(numbers) & (numbers % 1 == 0) & (np.abs(numbers) < 2.0**63)
        bad = np.flatnonzero(~ok)
        if bad.size and (first is None or bad[0] < first[0]):
            first = (int(bad[0]), column)
    if first is None:  # the C parser refused something to_numeric accepts; name the column
        return 0, columns[0]
    return first


def _read_table(folder: Path, table: _Table) -> pd.DataFrame:
    """Read one ``.dat`` file, check its shape, and convert the integer columns."""
    path = folder / table.file
    data = _read_bytes(path)
    header = _header(path, data, table)
    _check_field_counts(path, data, len(header))
    frame = _parse(path, data, table, as_integers=True)
    if frame is None:
        strings = _parse(path, data, table, as_integers=False)
        row, column = _first_non_integer(strings, table.integer)
        raise DataError(f"{path} line {row + 2}: column {column} has "
                        f"{strings[column].iloc[row]!r}, not an integer; {_fix_hint(path)}")
    if frame.empty:
        raise DataError(f"{path} has a header but no rows: delete it and run `lastfm-rec "
                        "data` to download it again")
    _check_values(path, frame, table)
    return frame.loc[:, list(table.columns)]


def _check_values(path: Path, frame: pd.DataFrame, table: _Table) -> None:
    """No negative counts, no two rows with the same key (lines counted with the header)."""
    for column in table.non_negative:
        negative = np.flatnonzero(frame[column].to_numpy() < 0)
        if negative.size:
            row = int(negative[0])
            raise DataError(f"{path} line {row + 2}: column {column} has "
                            f"{frame[column].iloc[row]}, a play count cannot be negative; "
                            f"{_fix_hint(path)}")
    if not table.key:
        return
    repeated = np.flatnonzero(frame.duplicated(list(table.key)).to_numpy())
    if repeated.size:
        row = int(repeated[0])
        values = frame.iloc[row][list(table.key)]
        same = (frame[list(table.key)] == values).all(axis=1).to_numpy()
        first = int(np.flatnonzero(same)[0])
        described = ", ".join(f"{column} {values[column]}" for column in table.key)
        raise DataError(f"{path} line {row + 2} repeats line {first + 2} ({described}); "
                        f"{_fix_hint(path)}")


def load_artists(data_dir: str | Path | None = None) -> pd.DataFrame:
    """Load ``artists.dat`` (UTF-8).

    Parameters
    ----------
    data_dir
        The data folder; None finds it with :func:`find_data_dir`.

    Returns
    -------
    pandas.DataFrame
        Columns artistID (int64), name, url, pictureURL. Names keep their literal quotes
        (``"Weird Al" Yankovic``); only an empty pictureURL becomes NaN.

    Raises
    ------
    DataError
        The file is missing or malformed.
    """
    frame = _read_table(_resolve(data_dir), _ARTISTS).rename(columns={"id": "artistID"})
    frame["pictureURL"] = frame["pictureURL"].mask(frame["pictureURL"] == "")
    return frame


def load_tags(data_dir: str | Path | None = None) -> pd.DataFrame:
    """Load ``tags.dat`` (Latin-1).

    Parameters
    ----------
    data_dir
        The data folder; None finds it with :func:`find_data_dir`.

    Returns
    -------
    pandas.DataFrame
        Columns tagID (int64), tagValue.

    Raises
    ------
    DataError
        The file is missing or malformed.
    """
    return _read_table(_resolve(data_dir), _TAGS)


def load_user_artists(data_dir: str | Path | None = None) -> pd.DataFrame:
    """Load ``user_artists.dat``: how often each user played each artist.

    Parameters
    ----------
    data_dir
        The data folder; None finds it with :func:`find_data_dir`.

    Returns
    -------
    pandas.DataFrame
        Columns userID, artistID, weight (all int64).

    Raises
    ------
    DataError
        The file is missing or malformed.
    """
    return _read_table(_resolve(data_dir), _USER_ARTISTS)


def load_user_friends(data_dir: str | Path | None = None) -> pd.DataFrame:
    """Load ``user_friends.dat`` (each friendship appears in both directions).

    Parameters
    ----------
    data_dir
        The data folder; None finds it with :func:`find_data_dir`.

    Returns
    -------
    pandas.DataFrame
        Columns userID, friendID (int64).

    Raises
    ------
    DataError
        The file is missing or malformed.
    """
    return _read_table(_resolve(data_dir), _USER_FRIENDS)


def load_user_tagged(data_dir: str | Path | None = None) -> pd.DataFrame:
    """Load ``user_taggedartists.dat``: tag assignments with their date.

    Parameters
    ----------
    data_dir
        The data folder; None finds it with :func:`find_data_dir`.

    Returns
    -------
    pandas.DataFrame
        Columns userID, artistID, tagID, day, month, year (all int64).

    Raises
    ------
    DataError
        The file is missing or malformed.
    """
    return _read_table(_resolve(data_dir), _USER_TAGGED)


def load_user_tagged_timestamps(data_dir: str | Path | None = None) -> pd.DataFrame | None:
    """Load the optional ``user_taggedartists-timestamps.dat``.

    Parameters
    ----------
    data_dir
        The data folder; None finds it with :func:`find_data_dir`.

    Returns
    -------
    pandas.DataFrame or None
        Columns userID, artistID, tagID, timestamp (milliseconds; all int64), or None when
        the file is absent (some copies of the release leave it out).

    Raises
    ------
    DataError
        The file is present but malformed.
    """
    folder = _resolve(data_dir)
    if not (folder / _TIMESTAMPS.file).exists():
        return None
    return _read_table(folder, _TIMESTAMPS)


@dataclass(frozen=True, eq=False)  # eq=False: DataFrames have no single truth value or hash
class Dataset:
    """All HetRec tables, as the loaders return them."""

    artists: pd.DataFrame
    tags: pd.DataFrame
    user_artists: pd.DataFrame
    user_friends: pd.DataFrame
    user_tagged: pd.DataFrame
    user_tagged_timestamps: pd.DataFrame | None
    data_dir: Path


def release_differences(folder: Path,
                        checksums: Mapping[str, tuple[int, str]] = CHECKSUMS) -> list[str]:
    """The present files whose size or SHA-256 differs from the published release.

    Returns
    -------
    list of str
        One entry per differing file, ``name (N bytes, the release has M)`` when the sizes
        differ (a cut-off copy shows here), else ``name (other content)``. A file whose
        last line has no line break (every line of the release has one) is marked
        ``cut off?``: a cut inside the last field leaves the line's field count intact.
    """
    differing = []
    for name, (size, digest) in checksums.items():
        path = folder / name
        if not path.is_file():
            continue
        actual = path.stat().st_size
        if actual != size:
            cut = "; no line break at the end: cut off?" if not _ends_a_line(path) else ""
            differing.append(f"{name} ({actual} bytes, the release has {size}{cut})")
        elif _sha256(path) != digest:
            differing.append(f"{name} (other content)")
    return differing


def _ends_a_line(path: Path) -> bool:
    with path.open("rb") as handle:
        handle.seek(max(path.stat().st_size - 1, 0))
        return handle.read(1) in (b"\n", b"\r", b"")


def load_dataset(data_dir: str | Path | None = None, download: bool = False) -> Dataset:
    """Load every table.

    Parameters
    ----------
    data_dir
        The data folder; None finds it with :func:`find_data_dir`.
    download
        Download the data (:func:`fetch_data`) when it is not found.

    Returns
    -------
    Dataset
        The tables and the folder they came from.

    Raises
    ------
    DataError
        The data is missing (and ``download`` is False), the download failed, or a file is
        malformed.

    Warns
    -----
    DataDifferenceWarning
        Once, naming every file that differs from the published release (the data is still
        loaded: any data in the HetRec format works, only the figures differ).
    """
    folder = fetch_data(data_dir) if download else find_data_dir(data_dir)
    if folder is None:
        folder = _resolve(None)  # raises the "not found, run `lastfm-rec data`" error
    dataset = Dataset(
        artists=load_artists(folder),
        tags=load_tags(folder),
        user_artists=load_user_artists(folder),
        user_friends=load_user_friends(folder),
        user_tagged=load_user_tagged(folder),
        user_tagged_timestamps=load_user_tagged_timestamps(folder),
        data_dir=folder,
    )
    differing = release_differences(folder)
    if differing:
        warnings.warn(f"{'; '.join(differing)} in {folder} differ from the published release: "
                      "figures will differ from the original's", DataDifferenceWarning,
                      stacklevel=2)
    return dataset
