"""The input formats the package reads, and which one a path holds.

Owns the format names (:data:`FORMATS`, what ``lastfm-rec scale fit --format`` accepts), the
file names of the bigger Last.fm releases and :func:`detect_format`. Imports nothing heavy:
the command line builds its ``--help`` from it. Reading is :mod:`lastfm_rec.data.hetrec`'s,
:mod:`lastfm_rec.data.releases`' and, on Spark, :mod:`lastfm_rec.spark.io`'s.
"""

from __future__ import annotations

import os
from pathlib import Path

HETREC, PARQUET, LASTFM_360K, LFM_1B = "hetrec", "parquet", "lastfm-360k", "lfm-1b"
#: A HetRec folder (``.dat`` or ``.parquet`` tables), one Parquet table of userID, artistID,
#: weight rows, Last.fm-360K's plays file and LFM-1b's listening events.
FORMATS = (HETREC, PARQUET, LASTFM_360K, LFM_1B)
#: The Last.fm releases, read by :mod:`lastfm_rec.data.releases`.
RELEASES = (LASTFM_360K, LFM_1B)
PLAYS_360K = "usersha1-artmbid-artname-plays.tsv"
FIELDS_360K = ("user", "mbid", "name", "plays")
LFM_1B_EVENTS = "LFM-1b_LEs.txt"
LFM_1B_ARTISTS = "LFM-1b_artists.txt"


def is_remote(path: str) -> bool:
    """A cluster path (``hdfs://``, ``s3a://``): nothing can be looked up in it from here."""
    return "://" in path and not path.startswith("file://")


def local_path(path: str) -> Path:
    """A local path given as a string, ``file://`` URIs included."""
    return Path(path.removeprefix("file://")).expanduser()


def detect_format(source: str | os.PathLike) -> str:
    """The format of an input path, one of :data:`FORMATS`.

    ``usersha1-artmbid-artname-plays.tsv`` is Last.fm-360K and ``LFM-1b_LEs.txt`` LFM-1b
    (by name, local or on a cluster); a path ending in ``.parquet`` is one Parquet table. A
    local folder holding ``LFM-1b_LEs.txt`` is LFM-1b, any other folder HetRec; a local
    ``.tsv`` file is Last.fm-360K when its first line has its four fields. A cluster path
    cannot be looked into: a ``.tsv`` there is Last.fm-360K, anything else HetRec, unless the
    format is named.

    Raises
    ------
    ValueError
        A local file whose format none of these rules recognises.
    """
    text = str(source).rstrip("/")
    name = text.rsplit("/", 1)[-1]
    if name == PLAYS_360K:
        return LASTFM_360K
    if name == LFM_1B_EVENTS:
        return LFM_1B
    if name.endswith(".parquet"):
        return PARQUET
    if is_remote(text):
        return LASTFM_360K if name.endswith(".tsv") else HETREC
    local = local_path(text)
    if local.is_dir():
        return LFM_1B if (local / LFM_1B_EVENTS).is_file() else HETREC
    if not local.is_file():
        return HETREC  # the HetRec reader says what is missing
    if name.endswith(".tsv"):
        with local.open("rb") as handle:
            fields = handle.readline().rstrip(b"\r\n").count(b"\t") + 1
        if fields == len(FIELDS_360K):
            return LASTFM_360K
        raise ValueError(f"{source} has {fields} tab-separated fields on line 1, not the "
                         f"{len(FIELDS_360K)} of Last.fm-360K's {PLAYS_360K}: name its format")
    raise ValueError(f"cannot tell the format of {source}: give a HetRec folder, a .parquet "
                     f"table, Last.fm-360K's {PLAYS_360K} or an LFM-1b folder, or name its "
                     f"format ({', '.join(FORMATS)})")
