from __future__ import annotations

import csv
import hashlib
import io
import shutil
import unicodedata
from pathlib import Path

import pytest

from tasks.files.ingest import discover
from tasks.files.metadata_sheet import MetadataSheet, SheetError, read_sheet
from tasks.records.item_metadata import ItemMetadata, PhysicalSize

# Real scans (from ../shared/data), laid out as an archive's boxes; 0014.jpg is in two boxes.
LAYOUT = {
    "box1/0014.jpg": "edge_cases/0014.jpg",
    "box1/0030.jpg": "edge_cases/0030.jpg",
    "box2/0014.jpg": "edge_cases/0014.jpg",
    "box2/ADE_val_00000114.jpg": "edge_cases/ADE_val_00000114.jpg",
    "wolf_gray.jpg": "edge_cases/wolf_gray.jpg",
    "box2/00017_gray.png": "edge_cases/00017_gray.png",
}

HEADER = "File,Identifier,Title,Date,Creator,Rights,Width,Height,Unit,dc.subject,DC.Description"
CELLS = [
    HEADER.split(","),
    ["box1/0014.jpg", "ARC-001", "Harbour at dawn", "1923", "Unknown", "Public domain", "210", "297", "mm",
     "harbours", "A print"],
    ["0030.jpg", "ARC-002", "Wedding, 1931", "1931-06-02", "J. Smith", "CC BY 4.0", "21.5", "29.7", "cm", "", ""],
    ["box2/0014.jpg", "ARC-003", "Street", "", "", "", "8", "10", "in", "streets", ""],
    ["ADE_val_00000114.jpg", "ARC-004", "Room", "1950", "", "", "", "", "", "", ""],
    ["wolf_gray.jpg", "ARC-005", "Wolf", "", "", "", "", "", "", "animals", "Grey print"],
]


def render(cells: list[list[str]], sep: str = ",", decimal_comma: bool = False) -> list[str]:
    """The sheet's lines as a spreadsheet exports them (quoting a cell only where it holds the separator)."""
    lines = []
    for row in cells:
        out = io.StringIO()
        sizes = [c.replace(".", ",") if decimal_comma else c for c in row[6:8]]
        csv.writer(out, delimiter=sep, lineterminator="").writerow(row[:6] + sizes + row[8:])
        lines.append(out.getvalue())
    return lines


VALID = render(CELLS)


@pytest.fixture
def scans(tmp_path: Path, shared_data: Path) -> Path:
    root = tmp_path / "scans"
    for rel, src in LAYOUT.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shared_data / src, root / rel)
    return root


def write(tmp_path: Path, lines: list[str], *, bom: bool = False, name: str = "items.csv") -> Path:
    path = tmp_path / name
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + ("\r\n".join(lines) + "\r\n").encode())
    return path


def test_a_valid_sheet_reads_every_field(tmp_path: Path) -> None:
    sheet = read_sheet(write(tmp_path, VALID))
    assert [r.row for r in sheet.rows] == [2, 3, 4, 5, 6]
    first, second, _, fourth, fifth = sheet.rows
    assert first == ItemMetadata(file="box1/0014.jpg", row=2, identifier="ARC-001", title="Harbour at dawn",
                                 date="1923", creator="Unknown", rights="Public domain",
                                 physical=PhysicalSize(210.0, 297.0, "mm"),
                                 dc={"dc.subject": "harbours", "dc.description": "A print"})
    assert second.title == "Wedding, 1931" and second.physical == PhysicalSize(21.5, 29.7, "cm")
    assert second.dc == {} and second.creator == "J. Smith"
    assert fourth.physical is None and fourth.creator is None and fourth.rights is None
    assert fifth.dublin_core() == [("dc.identifier", "ARC-005"), ("dc.title", "Wolf"),
                                   ("dc.subject", "animals"), ("dc.description", "Grey print")]


@pytest.mark.parametrize("sep", [";", "\t"])
def test_semicolon_with_bom_and_tab_sheets_read_as_the_comma_sheet(tmp_path: Path, sep: str) -> None:
    comma = read_sheet(write(tmp_path, VALID))
    lines = render(CELLS, sep, decimal_comma=sep == ";")
    assert lines[2].startswith(f"0030.jpg{sep}ARC-002{sep}Wedding, 1931{sep}")
    assert VALID[2].startswith('0030.jpg,ARC-002,"Wedding, 1931",')
    other = read_sheet(write(tmp_path, lines, bom=True, name="items-eu.csv"))
    assert other.rows == comma.rows
    assert other.sha256 != comma.sha256


def test_excel_sep_line_and_blank_rows_are_not_rows(tmp_path: Path) -> None:
    eu = render(CELLS, ";", decimal_comma=True)
    lines = ["sep=;", eu[0], eu[1], ";;;;;;;;;;", "", eu[2]]
    sheet = read_sheet(write(tmp_path, lines))
    assert [(r.file, r.row) for r in sheet.rows] == [("box1/0014.jpg", 3), ("0030.jpg", 6)]


def test_to_dict_records_which_sheet_was_used(tmp_path: Path) -> None:
    path = write(tmp_path, VALID)
    record = read_sheet(path).to_dict()
    assert record == {"path": str(path.absolute()), "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                      "rows": 5}


def _problem(lines: list[str], line_no: int, replacement: str) -> list[str]:
    out = list(lines)
    out[line_no - 1] = replacement
    return out


MALFORMED = {
    "empty file cell": (_problem(VALID, 4, ",ARC-003,Street,,,,,,,,"), 4, "the file cell is empty"),
    "file repeated": (_problem(VALID, 5, "box1/0014.jpg,ARC-004,Room,,,,,,,,"), 5,
                      "repeats row 2's file 'box1/0014.jpg'"),
    "file repeated as ./path": (_problem(VALID, 5, "./box1//0014.jpg,ARC-004,Room,,,,,,,,"), 5,
                                "repeats row 2's file 'box1/0014.jpg'"),
    "identifier repeated": (_problem(VALID, 6, "wolf_gray.jpg,ARC-002,Wolf,,,,,,,,"), 6,
                            "repeats row 3's identifier 'ARC-002'"),
    "negative width": (_problem(VALID, 3, "0030.jpg,ARC-002,W,,,,-21,29,cm,,"), 3,
                       "width '-21' is not a positive number"),
    "zero height": (_problem(VALID, 3, "0030.jpg,ARC-002,W,,,,21,0,cm,,"), 3, "height '0' is not a positive number"),
    "width with its unit": (_problem(VALID, 3, "0030.jpg,ARC-002,W,,,,21 cm,29,cm,,"), 3,
                            "width '21 cm' is not a positive number"),
    "unknown unit": (_problem(VALID, 4, "box2/0014.jpg,ARC-003,S,,,,8,10,px,,"), 4,
                     "unit 'px' is not one of mm, cm, in"),
    "width without height": (_problem(VALID, 5, "ADE_val_00000114.jpg,ARC-004,R,,,,21,,cm,,"), 5,
                             "width and unit without height"),
    "width without unit": (_problem(VALID, 5, "ADE_val_00000114.jpg,ARC-004,R,,,,21,30,,,"), 5,
                           "width and height without unit"),
    "unit alone": (_problem(VALID, 5, "ADE_val_00000114.jpg,ARC-004,R,,,,,,cm,,"), 5, "unit without width and height"),
    "title and dc.title differ": ([HEADER + ",dc.title", VALID[1] + ",Harbour at dusk"], 2,
                                  "title 'Harbour at dawn' and dc.title 'Harbour at dusk' differ"),
    "misspelt column": ([HEADER.replace("Title", "Titel"), *VALID[1:]], 1,
                        "column 'Titel' is not known (did you mean 'title'?); known: file"),
    "unknown dc element": ([HEADER + ",dc.colour", VALID[1] + ",sepia"], 1, "column 'dc.colour' is not known"),
    "column twice": ([HEADER + ",filename", VALID[1] + ",x.jpg"], 1, "column 'filename' repeats column 'File'"),
    "no file column": (["identifier,title", "ARC-001,Harbour"], 1, "no 'file' column"),
    "header only": ([HEADER], 1, "the sheet has a header but no rows"),
    "empty": ([""], 1, "the sheet is empty"),
    "cell beyond the header": (_problem(VALID, 3, VALID[2] + ",stray"), 3,
                               "'stray' is in column 12, which has no header"),
    "path outside the folder": (_problem(VALID, 6, "../wolf_gray.jpg,ARC-005,W,,,,,,,,"), 6,
                                "must be a name, or a path inside the scans folder"),
    "absolute path": (_problem(VALID, 6, "/scans/wolf_gray.jpg,ARC-005,W,,,,,,,,"), 6,
                      "must be a name, or a path inside the scans folder"),
    "windows path": (_problem(VALID, 2, "box1\\0014.jpg,ARC-001,H,,,,,,,,"), 2, "separate folders with '/'"),
    "unclosed quote": (_problem(VALID, 4, 'box2/0014.jpg,ARC-003,"Street,,,,,,,,'), 4, "is a quote left open?"),
}


@pytest.mark.parametrize("lines,row,reason", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_sheet_is_refused_naming_the_row(tmp_path: Path, lines: list[str], row: int, reason: str) -> None:
    path = write(tmp_path, lines)
    with pytest.raises(SheetError) as caught:
        read_sheet(path)
    message = str(caught.value)
    assert str(path) in message
    assert f"row {row}: " in message and reason in message, message
    assert isinstance(caught.value, ValueError)


def test_a_sheet_not_in_utf8_is_refused_with_the_byte_offset(tmp_path: Path) -> None:
    path = tmp_path / "items.csv"
    text = "\r\n".join(VALID[:3]).replace("Wedding", "Café Wedding") + "\r\n"
    path.write_bytes(text.encode("cp1252"))  # what Excel's plain "CSV" saves on Windows
    offset = text.encode("cp1252").index(b"\xe9")
    with pytest.raises(SheetError, match=rf"row 3: not UTF-8: byte 0xE9 at byte offset {offset} "):
        read_sheet(path)
    path.write_bytes(text.encode("utf-16"))
    with pytest.raises(SheetError, match="row 1: the sheet is UTF-16 text"):
        read_sheet(path)


def test_every_problem_is_collected_ten_are_listed(tmp_path: Path) -> None:
    lines = [HEADER] + [f"scan{i}.jpg,ID-{i},T,,,,{i},,mm,," for i in range(11)] + ["scan0.jpg,ID-0,,,,,,,,,"]
    with pytest.raises(SheetError) as caught:
        read_sheet(write(tmp_path, lines))
    error = caught.value
    # Eleven rows with width and no height, one repeating both file and identifier of row 2.
    assert len(error.problems) == 13 and error.problems[-2:] == [
        (13, "repeats row 2's file 'scan0.jpg'"), (13, "repeats row 2's identifier 'ID-0'")]
    message = str(error)
    assert "row 11: width and unit without height" in message and "row 12:" not in message
    assert message.rstrip().endswith("and 3 more")


@pytest.mark.parametrize("width,height,unit,long_mm", [
    ("210", "297", "mm", 297.0), ("29,7", "21", "cm", 297.0), ("8", "10", "in", 254.0), ("10", "8", "Inches", 254.0),
    ("4", "5", "INCH", 127.0), ("9", "13", " CM ", 130.0),
])
def test_physical_size_long_edge_in_mm_for_each_unit(tmp_path: Path, width: str, height: str, unit: str,
                                                      long_mm: float) -> None:
    sheet = read_sheet(write(tmp_path, [HEADER, f'wolf_gray.jpg,ARC-1,,,,,"{width}",{height},{unit},,']))
    physical = sheet.rows[0].physical
    assert physical is not None and physical.long_edge_mm() == pytest.approx(long_mm)
    assert physical.unit == unit.strip().lower()[:2]


def test_for_scan_matches_by_relative_path_then_by_name(tmp_path: Path, scans: Path) -> None:
    sheet = read_sheet(write(tmp_path, VALID))
    found = {scan.relative_to(scans).as_posix(): sheet.for_scan(scan, scans) for scan in discover(scans)}
    assert {rel: (item.identifier if item else None) for rel, item in found.items()} == {
        "box1/0014.jpg": "ARC-001",  # by path
        "box1/0030.jpg": "ARC-002",  # by name, in a sub-folder
        "box2/0014.jpg": "ARC-003",  # by path: the same name in the other box
        "box2/00017_gray.png": None,  # no row
        "box2/ADE_val_00000114.jpg": "ARC-004",
        "wolf_gray.jpg": "ARC-005",  # by name, at the top
    }
    sheet.check_against(discover(scans), scans)  # every row names exactly one scan


def test_a_path_row_wins_over_a_name_row(tmp_path: Path, scans: Path) -> None:
    sheet = read_sheet(write(tmp_path, [HEADER, "0014.jpg,BY-NAME,,,,,,,,,", "box2/0014.jpg,BY-PATH,,,,,,,,,"]))
    by_name, by_path = sheet.rows
    assert sheet.for_scan(scans / "box2/0014.jpg", scans) == by_path
    assert sheet.for_scan(scans / "box1/0014.jpg", scans) == by_name


def test_names_match_exactly_and_as_unicode_text(tmp_path: Path, scans: Path) -> None:
    nfd = unicodedata.normalize("NFD", "café.jpg")  # as macOS names files
    shutil.copyfile(scans / "wolf_gray.jpg", scans / "box1" / nfd)
    sheet = read_sheet(write(tmp_path, [HEADER, "WOLF_GRAY.JPG,A,,,,,,,,,", "box1/café.jpg,B,,,,,,,,,"]))
    assert sheet.for_scan(scans / "wolf_gray.jpg", scans) is None
    assert sheet.for_scan(scans / "box1" / nfd, scans) == sheet.rows[1]
    with pytest.raises(SheetError) as caught:
        sheet.check_against(discover(scans), scans)
    assert caught.value.problems == [(2, f"no scan 'WOLF_GRAY.JPG' under {scans}")]


def test_check_against_names_unknown_files_and_ambiguous_names(tmp_path: Path, scans: Path) -> None:
    sheet = read_sheet(write(tmp_path, [HEADER, "0030.jpg,A,,,,,,,,,", "0014.jpg,B,,,,,,,,,",
                                        "box3/0030.jpg,C,,,,,,,,,", "x.tif,D,,,,,,,,,"]))
    with pytest.raises(SheetError) as caught:
        sheet.check_against(discover(scans), scans)
    assert caught.value.problems == [
        (3, "'0014.jpg' names 2 scans (box1/0014.jpg, box2/0014.jpg): give the path relative to the folder"),
        (4, f"no scan 'box3/0030.jpg' under {scans}"),
        (5, f"no scan 'x.tif' under {scans}"),
    ]
    assert f"row 5: no scan 'x.tif' under {scans}" in str(caught.value)


def test_dot_slash_names_the_scan_at_the_top_only(tmp_path: Path, scans: Path) -> None:
    shutil.copyfile(scans / "wolf_gray.jpg", scans / "box1/wolf_gray.jpg")
    bare = read_sheet(write(tmp_path, [HEADER, "wolf_gray.jpg,A,,,,,,,,,"]))
    with pytest.raises(SheetError) as caught:
        bare.check_against(discover(scans), scans)
    assert caught.value.problems == [(2, "'wolf_gray.jpg' names 2 scans (box1/wolf_gray.jpg, wolf_gray.jpg): give "
                                         "the path relative to the folder ('./name' for the one at the top)")]
    top = read_sheet(write(tmp_path, [HEADER, "./wolf_gray.jpg,A,,,,,,,,,"], name="top.csv"))
    top.check_against(discover(scans), scans)
    assert top.for_scan(scans / "wolf_gray.jpg", scans) == top.rows[0]
    assert top.for_scan(scans / "box1/wolf_gray.jpg", scans) is None


def test_a_name_row_for_a_scan_already_given_by_path_is_refused(tmp_path: Path, scans: Path) -> None:
    sheet = read_sheet(write(tmp_path, [HEADER, "box1/0030.jpg,A,,,,,,,,,", "0030.jpg,B,,,,,,,,,"]))
    with pytest.raises(SheetError) as caught:
        sheet.check_against(discover(scans), scans)
    assert caught.value.problems == [(3, "'0030.jpg' is the scan row 2 gives as 'box1/0030.jpg': one row per scan")]


def test_sheet_is_a_value(tmp_path: Path) -> None:
    sheet = read_sheet(write(tmp_path, VALID))
    again = MetadataSheet(sheet.path, [ItemMetadata.from_dict(r.to_dict()) for r in sheet.rows], sheet.sha256)
    assert again == sheet and again.for_scan(Path("/s/box9/0030.jpg"), Path("/s")) == sheet.rows[1]
