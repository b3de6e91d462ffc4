"""The matrices every layer above the data builds from the HetRec files: plays, tags,
friendships, and each model's side data.

Owns the users x artists play-count matrix (:func:`play_matrix`), the artists x tags and
users x users side matrices (:func:`tag_matrix`, :func:`friend_matrix`), everything the study
and the service need in one object (:class:`StudyData`, :func:`load_study`) and the side data
a model takes besides the plays (:func:`side_data`). Sits between ``preprocessing`` and the
models, so evaluation, tuning and serving build their matrices the same way.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from lastfm_rec.data.preprocessing import IdMap

if TYPE_CHECKING:
    from lastfm_rec.data.hetrec import Dataset


def play_matrix(user_artists: pd.DataFrame, users: IdMap | None = None,
                artists: IdMap | None = None, value: str = "weight") -> sp.csr_matrix:
    """The users x artists CSR matrix of play counts (float64, duplicates summed).

    Rows and columns come from the dense indices ``u_id``/``a_id`` when the frame has them
    (as :func:`lastfm_rec.data.preprocessing.reindex` adds), otherwise from ``userID``/``artistID``
    translated with ``users``/``artists`` (:class:`~lastfm_rec.data.preprocessing.IdMap`). The
    shape is ``(len(users), len(artists))`` when the maps are given, else one past the
    largest index.
    """
    if {"u_id", "a_id"} <= set(user_artists.columns):
        rows = user_artists["u_id"].to_numpy(np.int64)
        cols = user_artists["a_id"].to_numpy(np.int64)
    elif users is not None and artists is not None:
        rows = users.to_index(user_artists["userID"].to_numpy())
        cols = artists.to_index(user_artists["artistID"].to_numpy())
    else:
        raise ValueError("play_matrix needs u_id/a_id columns or both IdMaps (users, artists)")
    n_users = len(users) if users is not None else int(rows.max(initial=-1)) + 1
    n_artists = len(artists) if artists is not None else int(cols.max(initial=-1)) + 1
    values = user_artists[value].to_numpy(np.float64)
    matrix = sp.csr_matrix((values, (rows, cols)), shape=(n_users, n_artists))
    matrix.sum_duplicates()
    matrix.sort_indices()
    return matrix


def tag_matrix(user_tagged: pd.DataFrame, users: IdMap, artists: IdMap,
               exclude: sp.csr_matrix | None = None) -> sp.csr_matrix:
    """Artists x tags CSR matrix: how many users gave each artist each tag.

    Tag rows for artists or users outside the maps are dropped (the real file tags some
    artists nobody listened to). ``exclude`` is a users x artists matrix (the held-out
    listens): a user's tags on an artist held out for that user are dropped, so the tags a
    test user gave a test artist cannot leak the answer. Tag columns are the raw ``tagID``
    values (width = largest ``tagID`` + 1).
    """
    user_ids = user_tagged["userID"].to_numpy()
    artist_ids = user_tagged["artistID"].to_numpy()
    known = np.isin(user_ids, users.ids) & np.isin(artist_ids, artists.ids)
    rows = artists.to_index(artist_ids[known])
    tag_ids = user_tagged["tagID"].to_numpy(np.int64)[known]
    if exclude is not None:
        owners = users.to_index(user_ids[known])
        held = sp.csr_matrix(exclude)
        hit = np.asarray(held[owners, rows]).ravel() != 0
        rows, tag_ids = rows[~hit], tag_ids[~hit]
    n_tags = int(user_tagged["tagID"].to_numpy().max(initial=0)) + 1
    matrix = sp.csr_matrix((np.ones(rows.size), (rows, tag_ids)), shape=(len(artists), n_tags))
    matrix.sum_duplicates()
    return matrix


def friend_matrix(user_friends: pd.DataFrame, users: IdMap) -> sp.csr_matrix:
    """Symmetric 0/1 users x users CSR matrix of friendships (pairs outside ``users`` dropped)."""
    a = user_friends["userID"].to_numpy()
    b = user_friends["friendID"].to_numpy()
    known = np.isin(a, users.ids) & np.isin(b, users.ids) & (a != b)
    rows, cols = users.to_index(a[known]), users.to_index(b[known])
    n = len(users)
    matrix = sp.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(n, n))
    matrix = ((matrix + matrix.T) > 0).astype(np.float64).tocsr()
    matrix.sort_indices()
    return matrix


@dataclass(frozen=True, eq=False)
class StudyData:
    """What the ranking study needs from the HetRec files.

    Attributes
    ----------
    plays
        Users x artists play counts, every row of ``user_artists.dat`` (no outlier trimming:
        a user's most played artists are the listens a ranking should find first).
    users, artists
        Dense index maps of ``userID`` and ``artistID`` (every listened artist).
    user_tagged
        The raw tag assignments, for :meth:`item_tags`.
    friends
        Users x users friendships (:func:`friend_matrix`).
    """

    plays: sp.csr_matrix
    users: IdMap
    artists: IdMap
    user_tagged: pd.DataFrame
    friends: sp.csr_matrix

    def item_tags(self, exclude: sp.csr_matrix | None = None) -> sp.csr_matrix:
        """Artists x tags counts, without the tags of held-out pairs (:func:`tag_matrix`)."""
        return tag_matrix(self.user_tagged, self.users, self.artists, exclude)


def load_study(data: Dataset | str | os.PathLike | None = None) -> StudyData:
    """:class:`StudyData` of a loaded :class:`~lastfm_rec.data.hetrec.Dataset`, or of the HetRec
    files in a folder (:func:`lastfm_rec.data.hetrec.load_dataset`)."""
    from lastfm_rec.data.hetrec import Dataset, load_dataset

    dataset = data if isinstance(data, Dataset) else load_dataset(data)
    users = IdMap.from_values(dataset.user_artists["userID"])
    artists = IdMap.from_values(dataset.user_artists["artistID"])
    return StudyData(plays=play_matrix(dataset.user_artists, users, artists), users=users,
                     artists=artists, user_tagged=dataset.user_tagged,
                     friends=friend_matrix(dataset.user_friends, users))


#: Side-data constructor arguments a model may declare (``Recommender.side_params``).
SIDE_DATA = ("item_tags", "user_friends")


def side_data(wanted: Iterable[str], data: StudyData, exclude: sp.csr_matrix | None,
              users: np.ndarray | None = None) -> dict[str, Any]:
    """The side data named in ``wanted`` (a model's ``side_params``, e.g.
    ``lastfm_rec.models.side_params("hybrid")``), built from ``data``.

    ``item_tags`` leaves out the tags of the ``exclude`` pairs (the held-out listens being
    scored, so a user's tags on them cannot leak the answer); ``user_friends`` keeps the
    friendships among ``users`` (default all), in that order.
    """
    built: dict[str, Any] = {}
    for name in wanted:
        if name == "item_tags":
            built[name] = data.item_tags(exclude=exclude)
        elif name == "user_friends":
            built[name] = data.friends if users is None else data.friends[users][:, users]
        else:
            raise ValueError(f"unknown side data {name!r}; known: {', '.join(SIDE_DATA)}")
    return built
