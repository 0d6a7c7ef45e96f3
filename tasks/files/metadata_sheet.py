"""The item spreadsheet (`run --metadata items.csv`): one row per scan, read into ItemMetadata.

The sheet is checked whole before a run starts: every problem is collected and reported at once,
each as "row N" (N is the line in the file, the header is line 1), so a cataloguer fixes the
sheet in one pass rather than one error per run. Spreadsheets export CSV with ',' or, in much of
Europe, ';' (and a decimal comma), sometimes as tab-separated text, with or without a UTF-8 BOM:
all are read.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import re
import unicodedata
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import Any

from tasks.records.item_metadata import DC_ELEMENTS, ItemMetadata, PhysicalSize, Unit

MAX_LISTED = 10  # problems spelled out in a SheetError; the rest are counted
MAX_SHEET_BYTES = 64 << 20  # far over any real sheet: a larger file is the wrong file (a scan, a dump)
FILE_COLUMNS = ("file", "filename", "path")
NAMED = ("identifier", "title", "date", "creator", "rights")  # ItemMetadata's own Dublin Core fields
SIZE_COLUMNS = ("width", "height", "unit")
UNITS: dict[str, Unit] = {"mm": "mm", "cm": "cm", "in": "in", "inch": "in", "inches": "in"}
DELIMITERS = (",", ";", "\t")
_NUMBER = re.compile(r"(?:\d+(?:[.,]\d*)?|[.,]\d+)")  # "21.5", "21,5" (decimal comma), "21", ".5"
_BOM = b"\xef\xbb\xbf"
Problem = tuple[int, str]  # (line in the sheet, reason)


class SheetError(ValueError):
    """A metadata sheet that cannot be used, with every problem found in it."""

    def __init__(self, path: str | Path, problems: list[Problem]) -> None:
        self.path = Path(path)
        self.problems = sorted(problems, key=lambda p: p[0])  # stable: a row's problems keep their order
        listed = [f"row {row}: {why}" for row, why in self.problems[:MAX_LISTED]]
        if len(self.problems) > MAX_LISTED:
            listed.append(f"and {len(self.problems) - MAX_LISTED} more")
        super().__init__(f"metadata sheet {self.path}: {len(self.problems)} problem(s):\n  " + "\n  ".join(listed))


@dataclass(frozen=True)
class MetadataSheet:
    path: Path
    rows: list[ItemMetadata]
    sha256: str  # of the sheet's bytes as read: which version of the sheet a run used

    @cached_property
    def _by_path(self) -> dict[str, ItemMetadata]:
        return {_path_key(row.file): row for row in self.rows if "/" in row.file}

    @cached_property
    def _by_name(self) -> dict[str, ItemMetadata]:
        return {row.file: row for row in self.rows if "/" not in row.file}

    def for_scan(self, scan: Path, root: Path) -> ItemMetadata | None:
        """The row for a scan under root: the one giving its path relative to root ('box1/a.tif', or
        './a.tif' at the top), else the one giving its bare name ('a.tif', in any sub-folder)."""
        return self._by_path.get(_relative(scan, root)) or self._by_name.get(_nfc(Path(scan).name))

    def check_against(self, scans: list[Path], root: Path) -> None:
        """Raise SheetError unless every row names exactly one of the scans, and no scan twice."""
        rels = [_relative(scan, root) for scan in scans]
        present = set(rels)
        by_name: dict[str, list[str]] = {}
        for rel in rels:
            by_name.setdefault(PurePosixPath(rel).name, []).append(rel)
        claimed = {key: row.row for key, row in self._by_path.items() if key in present}
        problems: list[Problem] = []
        for row in self.rows:
            if "/" in row.file:
                hits = [_path_key(row.file)] if _path_key(row.file) in present else []
            else:
                hits = by_name.get(row.file, [])
            if not hits:
                problems.append((row.row, f"no scan '{row.file}' under {root}"))
            elif len(hits) > 1:
                shown = ", ".join(hits[:5]) + (", ..." if len(hits) > 5 else "")
                top = " ('./name' for the one at the top)" if any("/" not in hit for hit in hits) else ""
                problems.append((row.row, f"'{row.file}' names {len(hits)} scans ({shown}): "
                                 f"give the path relative to the folder{top}"))
            elif "/" not in row.file and hits[0] in claimed:  # its only scan has a row by path already
                problems.append((row.row, f"'{row.file}' is the scan row {claimed[hits[0]]} gives as "
                                 f"'{hits[0]}': one row per scan"))
        if problems:
            raise SheetError(self.path, problems)

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "sha256": self.sha256, "rows": len(self.rows)}


def read_sheet(path: Path) -> MetadataSheet:
    """Read and validate a metadata sheet; SheetError lists everything wrong with it."""
    path = Path(path).absolute()
    size = path.stat().st_size
    if size > MAX_SHEET_BYTES:
        raise SheetError(path, [(1, f"the file is {size:,} bytes: not a metadata sheet "
                                 f"(at most {MAX_SHEET_BYTES:,} bytes are read)")])
    data = path.read_bytes()
    text = _decode(path, data)
    return MetadataSheet(path, _parse(path, text), hashlib.sha256(data).hexdigest())


def _decode(path: Path, data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise SheetError(path, [(1, "the sheet is UTF-16 text: save it as 'CSV UTF-8'")])
    start = len(_BOM) if data.startswith(_BOM) else 0
    try:
        return data[start:].decode("utf-8")
    except UnicodeDecodeError:
        pass
    # Name every line holding bytes that are not UTF-8 (a sheet saved as Latin-1 or Windows-1252);
    # line by line, so that a binary file given by mistake costs one pass.
    problems: list[Problem] = []
    offset = start
    for number, line in enumerate(data[start:].split(b"\n"), 1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as exc:
            problems.append((number, f"not UTF-8: byte 0x{line[exc.start]:02X} at byte offset "
                                     f"{offset + exc.start} (save the sheet as 'CSV UTF-8')"))
        offset += len(line) + 1
    raise SheetError(path, problems)


def _parse(path: Path, text: str) -> list[ItemMetadata]:
    lines = io.StringIO(text, newline="").readlines()  # split as csv splits: \n, \r\n or \r
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        raise SheetError(path, [(1, "the sheet is empty: it needs a header row with a 'file' column "
                                 "and one row per scan")])
    skip = first
    if m := re.fullmatch(r"sep=(.)\s*", lines[first]):  # Excel's own delimiter line
        delimiter, skip = m.group(1), first + 1
    else:
        delimiter = max(DELIMITERS, key=lines[first].count)  # header names hold none of them
    reader = csv.reader(io.StringIO("".join(lines[skip:]), newline=""), delimiter=delimiter, strict=True)
    problems: list[Problem] = []
    records: list[tuple[int, list[str]]] = []
    end = 0  # lines the reader has consumed: the next record starts on the line after
    try:
        for cells in reader:
            if any(cell.strip() for cell in cells):  # blank rows (and ';;;;' rows) are no rows
                records.append((skip + end + 1, [cell.strip() for cell in cells]))
            end = reader.line_num
    except csv.Error as exc:  # strict: an unclosed quote would otherwise swallow the rows after it
        problems.append((skip + end + 1, f"not readable as CSV ({exc}): is a quote left open?"))
    if not records:
        raise SheetError(path, problems or [(1, "the sheet has no header row")])
    (header_line, header), body = records[0], records[1:]
    columns, ignored, header_problems = _columns(header)
    problems += [(header_line, why) for why in header_problems]
    if "file" not in columns.values():
        problems.append((header_line, f"no 'file' column (also accepted: {', '.join(FILE_COLUMNS[1:])}); "
                         f"the header read is {', '.join(repr(c) for c in header)}"))
        raise SheetError(path, problems)
    if not body:
        problems.append((header_line, "the sheet has a header but no rows"))
    rows: list[ItemMetadata] = []
    files: dict[str, int] = {}
    identifiers: dict[str, int] = {}
    for line, cells in body:
        item, why = _row(cells, line, columns, ignored)
        problems += [(line, w) for w in why]
        if item is None:
            continue
        if item.file in files:
            problems.append((line, f"repeats row {files[item.file]}'s file '{item.file}'"))
        files.setdefault(item.file, line)
        if item.identifier is not None:
            if item.identifier in identifiers:
                problems.append((line, f"repeats row {identifiers[item.identifier]}'s identifier "
                                 f"'{item.identifier}'"))
            identifiers.setdefault(item.identifier, line)
        if not why:
            rows.append(item)
    if problems:
        raise SheetError(path, problems)
    return rows


def _columns(header: list[str]) -> tuple[dict[int, str], set[int], list[str]]:
    """Column index -> its key (file, title, dc.title, dc.subject, width, ...), the columns already
    refused (not to be refused again on every row), and the header's problems."""
    columns: dict[int, str] = {}
    ignored: set[int] = set()
    names: dict[str, str] = {}  # key -> the header cell that gave it
    problems = []
    known = [*FILE_COLUMNS, *NAMED, *SIZE_COLUMNS, *(f"dc.{e}" for e in DC_ELEMENTS)]
    for i, cell in enumerate(header):
        name = cell.lower()
        if not name:
            continue  # an unnamed column: its cells must stay empty (checked per row)
        key = "file" if name in FILE_COLUMNS else name
        if key not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            problems.append(f"column '{cell}' is not known{hint}; known: {', '.join(FILE_COLUMNS)}, "
                            f"{', '.join(NAMED + SIZE_COLUMNS)}, dc.<element> with element one of "
                            f"{', '.join(DC_ELEMENTS)}")
            ignored.add(i)
        elif key in names:  # one value per element: a repeated dc.subject has nowhere to go
            problems.append(f"column '{cell}' repeats column '{names[key]}'")
            ignored.add(i)
        else:
            names[key] = cell
            columns[i] = key
    return columns, ignored, problems


def _row(cells: list[str], line: int, columns: dict[int, str],
         ignored: set[int]) -> tuple[ItemMetadata | None, list[str]]:
    """One data row as ItemMetadata (None without a usable file cell), and its problems."""
    problems = []
    values: dict[str, str] = {}
    for i, cell in enumerate(cells):
        if i in columns:
            if cell:
                values[columns[i]] = cell
        elif cell and i not in ignored:
            problems.append(f"'{cell}' is in column {i + 1}, which has no header")
    named: dict[str, str | None] = {}
    for key in NAMED:
        plain, qualified = values.get(key), values.get(f"dc.{key}")
        if plain and qualified and plain != qualified:
            problems.append(f"{key} '{plain}' and dc.{key} '{qualified}' differ")
        named[key] = plain or qualified
    physical = _size(values, problems)
    file = values.get("file")
    if file is None:
        problems.append("the file cell is empty: name the scan (its file name, or its path in the folder)")
        return None, problems
    file, why = _file_key(file)
    if why:
        problems.append(why)
        return None, problems
    dc = {k: v for k, v in values.items() if k.startswith("dc.") and k[3:] not in NAMED}
    return ItemMetadata(file=file, row=line, identifier=named["identifier"], title=named["title"],
                        date=named["date"], creator=named["creator"], rights=named["rights"],
                        physical=physical, dc=dc), problems


def _size(values: dict[str, str], problems: list[str]) -> PhysicalSize | None:
    given = [k for k in SIZE_COLUMNS if k in values]
    if not given:
        return None
    if len(given) < len(SIZE_COLUMNS):
        missing = [k for k in SIZE_COLUMNS if k not in values]
        problems.append(f"{' and '.join(given)} without {' and '.join(missing)}: width, height and unit go together")
        return None
    sizes = []
    for key in ("width", "height"):
        raw = values[key]
        number = float(raw.replace(",", ".")) if _NUMBER.fullmatch(raw) else 0.0
        if number <= 0:
            problems.append(f"{key} '{raw}' is not a positive number")
        sizes.append(number)
    unit = UNITS.get(values["unit"].lower())
    if unit is None:
        problems.append(f"unit '{values['unit']}' is not one of mm, cm, in")
    if unit is None or min(sizes) <= 0:
        return None
    return PhysicalSize(sizes[0], sizes[1], unit)


def _file_key(cell: str) -> tuple[str, str | None]:
    """The file cell as matched, or why it cannot be: NFC (macOS names are NFD), '/'-separated and
    normalised; a path keeps a '/' ('./a.tif' is the a.tif at the top, not any a.tif)."""
    if "\\" in cell:
        return cell, f"file '{cell}': separate folders with '/'"
    path = PurePosixPath(_nfc(cell))
    if path.is_absolute() or ".." in path.parts or not path.parts:
        return cell, f"file '{cell}' must be a name, or a path inside the scans folder"
    key = path.as_posix()
    return (f"./{key}" if "/" in cell and "/" not in key else key), None


def _path_key(file: str) -> str:
    return file.removeprefix("./")


def _relative(scan: Path, root: Path) -> str:
    scan, root = Path(scan), Path(root)
    try:
        rel = scan.relative_to(root)
    except ValueError:
        try:
            rel = scan.resolve().relative_to(root.resolve())
        except ValueError:
            raise ValueError(f"{scan} is not under {root}") from None
    return _nfc(rel.as_posix())


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)
