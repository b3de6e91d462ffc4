"""A model folder written by ``lastfm-rec scale fit``, served without the data it was fitted on.

Owns the folder's layout, what the Spark side writes and serving reads:

* ``spark-als.npz`` (:data:`MODEL_FILE`): the model in the package's model file format
  (:mod:`lastfm_rec.files`): its factors and each artist's listener count, no play matrix;
  ``meta["like_plays"]`` is the median play count of its rows (:attr:`Session.like_plays`);
* ``artists.parquet`` (:data:`ARTISTS_FILE`): one row per artist with ``a_id`` (the model's
  order), ``artistID`` and, when the input had them, ``name``, top tags, popularity and
  listeners;
* ``top_n.parquet`` (:data:`TOP_N_FILE`, with ``scale fit --top-n N``): every user's ``N``
  best unheard artists, rows ``(userID, u_id, rank, a_id, score)``.

The Parquet folders are written by Spark and read here with pyarrow (part of the Spark
extra; no JVM is started). A new user is served from the sheet's artist names, the artist
factors and ``like_plays``; a known user from their rows of ``top_n.parquet``, which leave
out the artists they heard.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lastfm_rec.files import ModelFileError, read_model_file
from lastfm_rec.models import Recommender
from lastfm_rec.serving.session import Session, result_table

_log = logging.getLogger(__name__)

MODEL_FILE = "spark-als.npz"
ARTISTS_FILE = "artists.parquet"
TOP_N_FILE = "top_n.parquet"
#: The model file's ``meta`` entry holding :attr:`Session.like_plays`.
LIKE_PLAYS = "like_plays"
_REFIT = "write the folder again with `lastfm-rec scale fit --out DIR`"


def load_model_dir(folder: str | os.PathLike) -> Session:
    """The model and artists of a folder written by ``lastfm-rec scale fit --out folder``.

    Raises
    ------
    ValueError
        The folder or one of its files is missing or unreadable, pyarrow is not installed,
        or the files disagree (artists in another order or number than the model's): one
        line naming the file and what to do (a :class:`~lastfm_rec.files.ModelFileError`
        for the model file).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"model folder {folder} not found: write one with `lastfm-rec scale "
                         f"fit --input DATA --out {folder}`")
    path = folder / MODEL_FILE
    if not path.is_file():
        raise ValueError(f"{folder} has no {MODEL_FILE}: write the folder with `lastfm-rec "
                         f"scale fit --input DATA --out {folder}`")
    content = read_model_file(path)
    model = Recommender.from_model_file(content)
    like_plays = content.meta.get(LIKE_PLAYS)
    if not isinstance(like_plays, int | float) or getattr(model, "n_items", None) is None:
        raise ModelFileError(str(path), f"not a fitted model of a model folder (no "
                             f"{LIKE_PLAYS} in its metadata)", _REFIT)
    artists = _artists(folder / ARTISTS_FILE, model.n_items)
    return Session(artists, model, type(model).name, float(like_plays))


def _artists(path: Path, n_items: int) -> pd.DataFrame:
    """``artists.parquet`` in ``a_id`` order, checked to hold each of the model's artists."""
    if not path.exists():
        raise ValueError(f"{path} not found: {_REFIT}")
    artists = read_parquet(path).sort_values("a_id", kind="stable").reset_index(drop=True)
    if not np.array_equal(artists["a_id"].to_numpy(), np.arange(n_items)):
        raise ValueError(f"{path} lists {len(artists)} artists, not the model's {n_items} in "
                         f"order: {_REFIT}")
    return artists


def recommend_known_user(folder: str | os.PathLike, session: Session, user: str,
                         k: int = 10) -> pd.DataFrame:
    """The ``k`` best unheard artists of a user of the data, as ``scale fit --top-n``
    ranked them on Spark.

    Parameters
    ----------
    folder
        The model folder (its ``top_n.parquet``).
    session
        :func:`load_model_dir` of the folder: describes the artists.
    user
        The user's ``userID`` in the data ``scale fit`` read, as typed.
    k
        How many artists; at most the ``N`` the folder holds per user (fewer are listed,
        with a warning).

    Raises
    ------
    ValueError
        No ``top_n.parquet`` (rerun ``scale fit --top-n N``), pyarrow is missing, or no such
        user: one line naming the file and what to do.
    """
    path = Path(folder) / TOP_N_FILE
    if not path.exists():
        raise ValueError(f"{path} not found: known users are served from it; rerun "
                         f"`lastfm-rec scale fit --top-n N --out {folder}` (N artists per user)")
    rows = _user_rows(path, user).sort_values("rank")
    if rows.empty:
        raise ValueError(f"no user {user!r} in {path}: pass a userID of the data "
                         "`scale fit` read")
    if k > len(rows):
        _log.warning("note: %s holds the best %d artists of each user, fewer than the %d "
                     "asked for; rerun `scale fit --top-n %d` for more", path, len(rows), k, k)
    rows = rows.head(k)
    return result_table(session, rows["a_id"].to_numpy(), rows["score"].to_numpy())


def _user_rows(path: Path, user: str) -> pd.DataFrame:
    """The ``(rank, a_id, score)`` rows of ``userID`` ``user`` (read as the column's type)."""
    dataset = _dataset(path)
    import pyarrow as pa
    import pyarrow.dataset as ds

    if "userID" not in dataset.schema.names:
        raise ValueError(f"{path} has no userID column (written by an older version): "
                         "write the folder again with `lastfm-rec scale fit --top-n N --out "
                         "DIR`")
    value: Any = user
    if pa.types.is_integer(dataset.schema.field("userID").type):
        try:
            value = int(user)
        except ValueError:
            raise ValueError(f"the users of {path} have whole-number ids, got {user!r}") \
                from None
    table = dataset.to_table(columns=["rank", "a_id", "score"],
                             filter=ds.field("userID") == value)
    return table.to_pandas()


def read_parquet(path: str | os.PathLike) -> pd.DataFrame:
    """A Parquet file or folder of part files (as Spark writes them) as a DataFrame, read
    with pyarrow (no JVM).

    Raises
    ------
    ValueError
        pyarrow is not installed, or ``path`` is not readable Parquet.
    """
    return _dataset(Path(path)).to_table().to_pandas()


def _dataset(path: Path) -> Any:
    """``path`` as a ``pyarrow.dataset.Dataset`` (Spark's ``_SUCCESS`` and ``.crc`` files are
    left out, as their names start with ``_`` and ``.``); a one-line error without pyarrow."""
    try:
        import pyarrow.dataset as ds
    except ImportError:
        raise ValueError(f"reading {path} needs pyarrow: install the Spark extra (`make "
                         "install-spark`) or `pip install pyarrow`") from None
    try:
        return ds.dataset(str(path), format="parquet")
    except (OSError, ValueError) as exc:  # pyarrow.ArrowInvalid is a ValueError
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise ValueError(f"{path} is not readable Parquet ({reason}): {_REFIT}") from None
