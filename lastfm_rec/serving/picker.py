"""Picking the artists of a rec sheet in a notebook: a search box, tick boxes and a save button.

The sheet stays the source of truth: the picker opens with the sheet's ticks, and saving
rewrites its ``Like`` column (:func:`lastfm_rec.data.sheets.update_rec_sheet`), which notebook
4 and ``lastfm-rec recommend --likes`` read. Built from ``ipywidgets``; every widget is an
attribute, so the picker can be driven without a browser.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import pandas as pd

from lastfm_rec.data.sheets import (
    close_names,
    matching_artists,
    read_sheet_likes,
    update_rec_sheet,
)


class ArtistPicker:
    """Search the artists by name and tick the ones you like; **Save** writes the rec sheet.

    Parameters
    ----------
    path
        The rec sheet (``name`` and ``Like`` columns) to show and rewrite.
    artists
        The artists that can be picked, with ``name`` (``listeners`` and ``top3_tags`` are
        shown when present).
    k
        How many artists a search lists.

    Attributes
    ----------
    search : ipywidgets.Text
        The search box: part of an artist's name, case ignored. Empty lists the liked
        artists, then the most listened.
    boxes : dict[str, ipywidgets.Checkbox]
        A tick box per listed artist name; ticking one likes the artist.
    save_button : ipywidgets.Button
        Rewrites the sheet with the ticked artists.
    status : ipywidgets.HTML
        What is liked, and whether it is saved.
    liked : list[str]
        The liked names, the sheet's first, then in the order they were ticked.
    widget : ipywidgets.VBox
        Everything above, as displayed.

    Raises
    ------
    lastfm_rec.data.sheets.RecSheetError
        The sheet is missing or cannot be read.
    """

    def __init__(self, path: str | os.PathLike, artists: pd.DataFrame, k: int = 15) -> None:
        self.path = Path(path)
        self.artists = artists.reset_index(drop=True)
        self.k = k
        self.liked = read_sheet_likes(self.path)
        self.boxes: dict[str, widgets.Checkbox] = {}
        self.search = widgets.Text(description="Artist", placeholder="part of a name")
        self.save_button = widgets.Button(description="Save to sheet", icon="save",
                                          button_style="primary")
        self.status = widgets.HTML()
        self._listed = widgets.VBox()
        self.widget = widgets.VBox([widgets.HBox([self.search, self.save_button]),
                                    self._listed, self.status])
        self.search.observe(lambda change: self.show(change["new"]), names="value")
        self.save_button.on_click(lambda _button: self.save())
        self.show("")
        self._report("opened")

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def candidates(self, query: str) -> list[str]:
        """The names listed for ``query``: up to ``k`` matching artists, most listened first;
        for an empty query the liked artists, then the most listened others."""
        names = self.artists["name"].astype(str)
        if query.strip():
            return names.iloc[matching_artists(query, self.artists)[: self.k]].tolist()
        by_listeners = (self.artists.sort_values("listeners", ascending=False, kind="stable")
                        if "listeners" in self.artists.columns else self.artists)
        others = [n for n in by_listeners["name"].astype(str) if n not in self.liked]
        return self.liked + others[: max(self.k - len(self.liked), 0)]

    def show(self, query: str) -> None:
        """List the artists matching ``query`` as tick boxes (ticked when liked)."""
        names = self.candidates(query)
        self.boxes = {name: self._box(name) for name in names}
        self._listed.children = tuple(self.boxes.values())
        if not names:
            close = close_names(query, self.artists)
            hint = f"; close names: {', '.join(close)}" if close else ""
            self.status.value = html.escape(f"No artist matches {query.strip()!r}{hint}.")

    def tick(self, name: str, liked: bool) -> None:
        """Like (or stop liking) ``name``; nothing is written until :meth:`save`."""
        if liked and name not in self.liked:
            self.liked.append(name)
        elif not liked and name in self.liked:
            self.liked.remove(name)
        self._report("not saved yet")

    def save(self) -> Path:
        """Rewrite the sheet's ``Like`` column with the liked artists."""
        update_rec_sheet(self.path, self.liked)
        self._report(f"saved to {self.path}: rerun the cells below to use them")
        return self.path

    def _box(self, name: str) -> widgets.Checkbox:
        box = widgets.Checkbox(value=name in self.liked, description=self._label(name),
                               indent=False, layout=widgets.Layout(width="auto"))
        box.observe(lambda change: self.tick(name, change["new"]), names="value")
        return box

    def _label(self, name: str) -> str:
        row = self.artists[self.artists["name"].astype(str) == name]
        if row.empty:
            return f"{name} (not in the data)"
        details = [f"{int(row['listeners'].iloc[0])} listeners"
                   if "listeners" in row.columns else "",
                   str(row["top3_tags"].iloc[0]) if "top3_tags" in row.columns else ""]
        details = [d for d in details if d]
        return f"{name} ({'; '.join(details)})" if details else name

    def _report(self, state: str) -> None:
        liked = ", ".join(self.liked) if self.liked else "nothing yet"
        self.status.value = html.escape(f"{len(self.liked)} liked ({state}): {liked}")
