"""The artist picker of notebook 4, driven through its widgets without a browser, and the rec
sheet updates it saves with."""

from __future__ import annotations

import pandas as pd
import pytest

from lastfm_rec.data import sheets
from lastfm_rec.data.sheets import (
    RecSheetError,
    read_rec_sheet,
    read_sheet_likes,
    update_rec_sheet,
    write_rec_sheet,
)
from lastfm_rec.serving.picker import ArtistPicker


@pytest.fixture()
def artists() -> pd.DataFrame:
    names = ["Metallica", "Megadeth", "Lady Gaga", "Rihanna", "Metal Church", "Abba"]
    return pd.DataFrame({
        "name": names,
        "listeners": [90, 40, 80, 70, 3, 60],
        "top3_tags": ["metal", "thrash metal", "pop", "rnb / pop", "metal", "pop"],
    })


@pytest.fixture()
def sheet(tmp_path, artists):
    """A sheet of the four most listened artists, Lady Gaga liked."""
    return write_rec_sheet(artists, tmp_path / "your_artists.csv", n=4, likes=["Lady Gaga"])


def test_picker_opens_with_the_sheets_ticks(sheet, artists) -> None:
    picker = ArtistPicker(sheet, artists, k=3)
    assert picker.liked == ["Lady Gaga"]
    # An empty search lists the liked artists, then the most listened others.
    assert list(picker.boxes) == ["Lady Gaga", "Metallica", "Rihanna"]
    assert [box.value for box in picker.boxes.values()] == [True, False, False]
    assert picker.boxes["Metallica"].description == "Metallica (90 listeners; metal)"
    assert "1 liked" in picker.status.value


def test_search_tick_and_save_writes_what_read_rec_sheet_reads(sheet, artists) -> None:
    picker = ArtistPicker(sheet, artists)
    picker.search.value = "METAL"
    assert list(picker.boxes) == ["Metallica", "Metal Church"]
    picker.boxes["Metallica"].value = True
    picker.boxes["Metal Church"].value = True  # not among the sheet's rows: appended
    assert read_sheet_likes(sheet) == ["Lady Gaga"]  # nothing written before saving
    assert "not saved" in picker.status.value
    picker.save_button.click()

    assert sorted(artists["name"].iloc[read_rec_sheet(sheet, artists)]) == [
        "Lady Gaga", "Metal Church", "Metallica"]
    written = pd.read_csv(sheet, dtype=str, keep_default_na=False)
    assert written["name"].tolist() == ["Metallica", "Lady Gaga", "Rihanna", "Abba",
                                        "Metal Church"]
    assert written["Like"].tolist() == ["1", "1", "", "", "1"]
    assert "saved to" in picker.status.value
    assert not list(sheet.parent.glob(".*tmp"))


def test_untick_and_reopen(sheet, artists) -> None:
    picker = ArtistPicker(sheet, artists)
    picker.search.value = "rihanna"
    picker.boxes["Rihanna"].value = True
    picker.search.value = ""
    picker.boxes["Lady Gaga"].value = False
    picker.save()
    assert read_sheet_likes(sheet) == ["Rihanna"]
    # A new picker shows the sheet as saved, whatever the last one held.
    reopened = ArtistPicker(sheet, artists)
    assert reopened.liked == ["Rihanna"] and reopened.boxes["Rihanna"].value


def test_search_without_match_suggests_close_names(sheet, artists) -> None:
    picker = ArtistPicker(sheet, artists)
    picker.search.value = "Metalica"
    assert picker.boxes == {}
    assert "No artist matches &#x27;Metalica&#x27;; close names: Metallica" in picker.status.value


def test_picker_needs_a_readable_sheet(tmp_path, artists) -> None:
    with pytest.raises(RecSheetError, match="does not exist"):
        ArtistPicker(tmp_path / "missing.csv", artists)
    bad = tmp_path / "bad.csv"
    bad.write_text("name,Like\nAbba,yes\n", encoding="utf-8")
    with pytest.raises(RecSheetError, match="Like must be 1 or blank"):
        ArtistPicker(bad, artists)


def test_update_keeps_rows_columns_and_bytes(tmp_path) -> None:
    path = tmp_path / "sheet.csv"
    path.write_text('name,Like,note\n"Guns N\' Roses, live",1,x\nAbba,,y\n', encoding="utf-8")
    before = path.read_bytes()
    update_rec_sheet(path, ["Guns N' Roses, live"])
    assert path.read_bytes() == before  # the same likes: the same file
    update_rec_sheet(path, [" Abba "])
    assert path.read_text(encoding="utf-8") == (
        'name,Like,note\n"Guns N\' Roses, live",,x\nAbba,1,y\n')


def test_update_that_fails_leaves_the_sheet(tmp_path, monkeypatch) -> None:
    path = tmp_path / "sheet.csv"
    path.write_text("name,Like\nAbba,1\n", encoding="utf-8")

    def fail(source, target):
        raise OSError("disk full")

    monkeypatch.setattr(sheets.os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        update_rec_sheet(path, ["Metallica"])
    assert path.read_text(encoding="utf-8") == "name,Like\nAbba,1\n"


def test_read_sheet_likes_allows_no_likes(tmp_path, artists) -> None:
    path = write_rec_sheet(artists, tmp_path / "sheet.csv", n=3)
    assert read_sheet_likes(path) == []
    with pytest.raises(RecSheetError, match="likes no artist"):
        read_rec_sheet(path, artists)
