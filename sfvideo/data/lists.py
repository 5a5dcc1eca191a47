"""Video lists: ``path label`` text files and the official Kinetics CSVs, and class names.

Two formats are read:

* ``path label`` lines. The label is a class index or a class name; the path may contain
  spaces, so a line is split on its *last* whitespace. Blank lines and ``#`` comments are skipped.
  Files are UTF-8; a byte-order mark at the start (Windows editors write one) is ignored.
* The official Kinetics CSV, ``label,youtube_id,time_start,time_end,split[,is_cc]`` with a header.
  Each row's video is looked for under the data directory in both common download layouts::

      {split}/{label}/{youtube_id}_{start:06d}_{end:06d}.{mp4,mkv,webm}
      {split}/{youtube_id}_{start:06d}_{end:06d}.{mp4,mkv,webm}

  (the label folder also with spaces replaced by underscores). Rows whose video is missing are
  returned in ``ListResult.missing`` (and written to a report by the caller), never dropped silently.

A malformed line raises ``ListFormatError`` naming the file and the line number.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import NamedTuple, Sequence

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm")
KINETICS_CSV_COLUMNS = ("label", "youtube_id", "time_start", "time_end", "split")


class ListFormatError(ValueError):
    """A list or class-name file the user must fix; the message names the file and line."""


class VideoRecord(NamedTuple):
    """One video of a list.

    Attributes:
        path: the path as listed (for CSV rows: the found file, relative to the data directory).
        label: class index.
    """

    path: str
    label: int


class MissingVideo(NamedTuple):
    """A CSV row whose video file was not found (``line`` is 1-based in ``list_file``)."""

    list_file: str
    line: int
    youtube_id: str
    label: str
    expected: str


class ListResult(NamedTuple):
    """Parsed records plus the rows whose video is missing (CSV only)."""

    records: list[VideoRecord]
    missing: list[MissingVideo]


def read_class_names(path: str | os.PathLike) -> list[str]:
    """Class names, one per line, in label-index order.

    Raises:
        ListFormatError: a blank or duplicated name (with its line number).
    """
    names: list[str] = []
    seen: dict[str, int] = {}
    with open(path, encoding="utf-8-sig") as f:
        for lineno, raw in enumerate(f, start=1):
            name = raw.strip()
            if not name:
                if raw.strip("\r\n") == "" and all(not r.strip() for r in f):
                    break  # trailing blank lines are fine
                raise ListFormatError(f"{path}:{lineno}: empty class name")
            if name in seen:
                raise ListFormatError(f"{path}:{lineno}: class {name!r} already on line {seen[name]}")
            seen[name] = lineno
            names.append(name)
    return names


def class_names_file(cfg) -> Path | None:
    """The file ``DATA.CLASS_NAMES`` names: absolute, else under ``DATA.PATH_TO_DATA_DIR``, else a
    file shipped with sfvideo (``None`` when the key is empty; the file may not exist)."""
    if not cfg.DATA.CLASS_NAMES:
        return None
    return resolve_path(cfg.DATA.CLASS_NAMES, cfg.DATA.PATH_TO_DATA_DIR, repo_fallback=True)


def class_index(names: Sequence[str]) -> dict[str, int]:
    """Map from class name (and its underscore variant) to index."""
    index = {name: i for i, name in enumerate(names)}
    for i, name in enumerate(names):
        index.setdefault(name.replace(" ", "_"), i)
    return index


def parse_label(text: str, classes: dict[str, int] | None, num_classes: int | None) -> int:
    """A label as an integer index or a class name. Raises ``ValueError`` with the reason."""
    text = text.strip().strip('"')
    if classes and text in classes:
        return classes[text]
    try:
        label = int(text)
    except ValueError:
        if classes is None:
            raise ValueError(f"label {text!r} is not an integer and no class names were given (DATA.CLASS_NAMES)") from None
        raise ValueError(f"unknown class name {text!r}") from None
    if label < 0 or (num_classes is not None and label >= num_classes):
        raise ValueError(f"label {label} out of range [0, {num_classes})")
    return label


def parse_path_label_line(line: str, classes: dict[str, int] | None = None, num_classes: int | None = None) -> VideoRecord:
    """Parse ``path label`` (split on the last whitespace, so paths may contain spaces)."""
    parts = line.strip().rsplit(None, 1)
    if len(parts) != 2:
        raise ValueError(f"expected 'path label', got {line.strip()!r}")
    path, label = parts
    if classes is not None and label not in classes:
        # A class name with spaces ("playing guitar") makes the last split wrong; try the
        # longest suffix of the line that is a known class name.
        words = line.strip().split()
        for k in range(2, len(words)):
            name = " ".join(words[-k:])
            if name in classes:
                return VideoRecord(" ".join(words[:-k]), classes[name])
    return VideoRecord(path, parse_label(label, classes, num_classes))


def read_path_label_list(
    path: str | os.PathLike, class_names: Sequence[str] | None = None
) -> list[VideoRecord]:
    """Read a ``path label`` list.

    Raises:
        ListFormatError: a malformed line, with ``file:line`` in the message.
    """
    classes = class_index(class_names) if class_names else None
    num_classes = len(class_names) if class_names else None
    records = []
    with open(path, encoding="utf-8-sig") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            try:
                records.append(parse_path_label_line(line, classes, num_classes))
            except ValueError as err:
                raise ListFormatError(f"{path}:{lineno}: {err}") from None
    return records


def is_kinetics_csv(path: str | os.PathLike) -> bool:
    """True when the file's first line is the official Kinetics CSV header."""
    with open(path, encoding="utf-8-sig") as f:
        header = f.readline().strip().lower().replace(" ", "")
    return header.startswith(",".join(KINETICS_CSV_COLUMNS[:4]))


def kinetics_file_stem(youtube_id: str, start: int, end: int) -> str:
    """``{youtube_id}_{start:06d}_{end:06d}`` as the official downloaders name files."""
    return f"{youtube_id}_{start:06d}_{end:06d}"


def kinetics_candidates(split: str, label: str, youtube_id: str, start: int, end: int) -> list[str]:
    """Relative paths a CSV row's video may have, most common layout first."""
    stem = kinetics_file_stem(youtube_id, start, end)
    folders = []
    # The CSVs' split column says "validate" in some releases, the download folders "val".
    for name in (split, *_SPLIT_FOLDER_ALIASES.get(split, ())):
        folders.append(f"{name}/{label}")
        if " " in label:
            folders.append(f"{name}/{label.replace(' ', '_')}")
        folders.append(name)
    return [f"{folder}/{stem}{ext}" for folder in folders for ext in VIDEO_EXTENSIONS]


_SPLIT_FOLDER_ALIASES = {"validate": ("val",), "val": ("validate",), "valid": ("val",)}


def _csv_time(text: str) -> int:
    """A CSV time in whole seconds; ValueError (not OverflowError) for inf/nan or a non-number."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"time {text!r} is not a finite number of seconds")
    return int(value)


def read_kinetics_csv(
    path: str | os.PathLike, data_dir: str | os.PathLike, class_names: Sequence[str]
) -> ListResult:
    """Read an official Kinetics CSV and locate each row's video under ``data_dir``.

    Returns:
        records (path relative to ``data_dir``, label index) for rows whose video exists, and
        the rows whose video is missing.

    Raises:
        ListFormatError: bad header, wrong column count, non-numeric times or unknown class,
            with ``file:line``.
    """
    if not class_names:
        raise ListFormatError(f"{path}: a Kinetics CSV needs class names (set DATA.CLASS_NAMES)")
    classes = class_index(class_names)
    data_dir = Path(data_dir)
    records: list[VideoRecord] = []
    missing: list[MissingVideo] = []
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        header = [h.strip().lower() for h in next(reader, [])]
        if tuple(header[:5]) != KINETICS_CSV_COLUMNS:
            raise ListFormatError(f"{path}:1: expected header {','.join(KINETICS_CSV_COLUMNS)}[,is_cc], got {header}")
        for row in reader:
            lineno = reader.line_num
            if not row or not "".join(row).strip():
                continue
            if len(row) not in (5, 6):
                raise ListFormatError(f"{path}:{lineno}: expected 5 or 6 comma-separated fields, got {len(row)}: {row}")
            label, youtube_id, t0, t1, split = (x.strip() for x in row[:5])
            try:
                start, end = _csv_time(t0), _csv_time(t1)
                index = parse_label(label, classes, len(class_names))
            except ValueError as err:
                raise ListFormatError(f"{path}:{lineno}: {err}") from None
            candidates = kinetics_candidates(split, label, youtube_id, start, end)
            found = next((c for c in candidates if (data_dir / c).is_file()), None)
            if found is None:
                missing.append(MissingVideo(str(path), lineno, youtube_id, label, candidates[0]))
            else:
                records.append(VideoRecord(found, index))
    return ListResult(records, missing)


def load_video_list(
    list_path: str | os.PathLike, data_dir: str | os.PathLike, class_names: Sequence[str] | None
) -> ListResult:
    """Read a list in either format (detected from the header)."""
    if is_kinetics_csv(list_path):
        return read_kinetics_csv(list_path, data_dir, class_names or [])
    return ListResult(read_path_label_list(list_path, class_names), [])


def write_missing_report(path: str | os.PathLike, missing: Sequence[MissingVideo]) -> Path:
    """Write one tab-separated line per missing video (list file, line, id, label, expected path),
    all or nothing (``utils.io.atomic_write``)."""
    from ..utils.io import atomic_write

    lines = ["# list_file\tline\tyoutube_id\tlabel\texpected_path\n"]
    lines += [f"{m.list_file}\t{m.line}\t{m.youtube_id}\t{m.label}\t{m.expected}\n" for m in missing]
    with atomic_write(path, "wb") as f:
        f.write("".join(lines).encode("utf-8"))
    return Path(path)


def resolve_path(name: str | os.PathLike, data_dir: str | os.PathLike, repo_fallback: bool = False) -> Path:
    """An absolute path, or ``name`` relative to ``data_dir`` (then, with ``repo_fallback``, a file
    shipped with sfvideo such as ``data_lists/kinetics400_classes.txt``)."""
    p = Path(name)
    if p.is_absolute():
        return p
    cand = Path(data_dir) / p
    if cand.exists() or not repo_fallback:
        return cand
    from ..resources import find_resource  # configs/ and data_lists/, in a checkout or installed

    return find_resource(p) or cand
