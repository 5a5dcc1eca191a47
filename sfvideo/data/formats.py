"""``path label`` lists from a folder of videos or a benchmark download as it unpacks.

One reader per format turns the download under ``root`` into class names (index order) and
records per split, plus what does not add up (listed but missing, present but unlisted);
``write_lists`` writes ``train.txt``/``val.txt``/``test.txt`` and ``classes.txt`` all-or-nothing.
Paths in the lists are relative to ``root``, so a config's ``DATA.PATH_TO_DATA_DIR`` is ``root``.

Layouts (the official file names and line formats):

========  ============================================================================
folder    ``root/<class>/<video>`` (classes sorted by name; ``val_fraction`` of each class,
          chosen with ``seed``, goes to val) or ``root/train/<class>/...`` +
          ``root/val/<class>/...`` (+ ``root/test/...``), used as given.
ucf101    ``UCF-101/<Class>/v_*.avi`` + ``ucfTrainTestlist/classInd.txt`` (``1 ApplyEyeMakeup``,
          1-based, CRLF), ``trainlist0{1,2,3}.txt`` (``Class/v_x.avi 1``),
          ``testlist0{1,2,3}.txt`` (``Class/v_x.avi``). val = the test split.
hmdb51    ``<any>/<class>/*.avi`` + ``<class>_test_split{1,2,3}.txt`` anywhere below root, lines
          ``video.avi 1`` (1 train, 2 test, 0 unused). Classes sorted by name; val = test.
ssv2      ``20bn-something-something-v2/<id>.webm`` + ``labels/{labels,train,validation,test}.json``
          (or ``something-something-v2-{labels,train,validation,test}.json``). ``labels.json``
          maps a template to an index string; entries' ``template`` lose their ``[ ]`` before
          the lookup. ``test.json`` carries no labels, so no test list is written.
kinetics  official CSVs (``label,youtube_id,time_start,time_end,split``) ``train.csv``,
          ``validate.csv`` (or ``val.csv``), ``test.csv`` in root or two levels below; videos in
          per-class folders or flat (``sfvideo.data.lists.kinetics_candidates``). Classes:
          sorted names of the train CSV unless a class-name file is given.
========  ============================================================================

Bad input raises ``ListFormatError`` naming the file and line (or JSON entry).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
from collections import defaultdict
from pathlib import Path
from typing import Iterable, NamedTuple, Sequence

from .lists import ListFormatError, VideoRecord, read_class_names, read_kinetics_csv

FORMATS = ("folder", "ucf101", "hmdb51", "ssv2", "kinetics")
SPLIT_NAMES = ("train", "val", "test")
# What a folder scan counts as a video.
SCAN_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv", ".3gp", ".ogv")


class BuiltLists(NamedTuple):
    """What a reader found under ``root``.

    Attributes:
        root: the download's root (list paths are relative to it).
        classes: class names in label-index order.
        splits: split name (``train``/``val``/``test``) -> records; only the splits the format has.
        missing: listed paths (relative to root, as expected) whose file does not exist.
        unlisted: video files under the root that no list of the chosen split names.
        notes: one-line remarks for the summary (a split reused, a list not written, ...).
        warnings: what the lists will do wrongly if left as they are (a class without training
            videos); the summary shows them as ``warning:`` lines.
    """

    root: str
    classes: list[str]
    splits: dict[str, list[VideoRecord]]
    missing: list[str]
    unlisted: list[str]
    notes: list[str]
    warnings: tuple[str, ...] = ()


# ---------------------------------------------------------------------------------------- helpers
def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _is_video(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in SCAN_EXTENSIONS and not path.name.startswith(".")


def scan_videos(folder: Path) -> list[Path]:
    """Every video file below ``folder`` (hidden files and folders skipped), sorted."""
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        out += [Path(dirpath) / f for f in filenames if _is_video(Path(dirpath) / f)]
    return sorted(out)


def _subdirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


# Characters that end a line for some reader of a list (Python's str.splitlines breaks at all of them).
_LINE_BREAKS = re.compile("[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]")


def line_problem(text: str, is_path: bool = False) -> str:
    """Why ``text`` cannot be one field of a line of a list and read back the same ("" when it
    can): a line break in it, white space at its ends (readers strip it), or, for a path, a
    leading ``#`` (a comment line)."""
    if _LINE_BREAKS.search(text):
        return "it holds a line break"
    if text != text.strip():
        return "it starts or ends with white space, which a list line loses"
    if is_path and text.startswith("#"):
        return "a list line starting with '#' is a comment"
    return ""


def _check_class_folders(folders: Sequence[Path]) -> None:
    for d in folders:
        problem = line_problem(d.name, is_path=True)
        if problem:
            raise ListFormatError(f"class folder {str(d)!r}: its name cannot be a line of classes.txt or the start "
                                  f"of a list line ({problem}); rename the folder")


def _holds_class_folders(folder: Path) -> bool:
    """``root/train``-style split folder: sub-folders, and no videos of its own (a class folder
    named ``train`` holds its videos)."""
    return folder.is_dir() and bool(_subdirs(folder)) and not any(_is_video(p) for p in folder.iterdir())


def _leaves(rel: str, prefix: str = "") -> bool:
    """True when the list path ``rel`` (below ``prefix``, itself relative to the root) is absolute
    or climbs out of the root."""
    return Path(rel).is_absolute() or Path(os.path.normpath(prefix + rel)).parts[:1] == ("..",)


def _unlisted(root: Path, folder: Path, listed: Iterable[str]) -> list[str]:
    listed = set(listed)
    return [r for r in (_rel(p, root) for p in scan_videos(folder)) if r not in listed]


def _lines(path: Path) -> Iterable[tuple[int, str]]:
    """(1-based line number, line without its CR/LF) for the non-blank lines of ``path``."""
    with open(path, encoding="utf-8-sig", newline="") as f:
        for lineno, raw in enumerate(f, start=1):
            line = raw.rstrip("\r\n")
            if line.strip():
                yield lineno, line


def _find_one(root: Path, names: Sequence[str], what: str) -> Path:
    """The first of ``names`` found directly in ``root`` or anywhere below it."""
    for name in names:
        if (root / name).is_file():
            return root / name
    for name in names:
        found = sorted(root.rglob(name))
        if found:
            return found[0]
    raise ListFormatError(f"{root}: no {what} found (looked for {', '.join(names)} in it and below it)")


def _stratified_split(by_class: dict[int, list[str]], fraction: float, seed: int) -> tuple[list, list]:
    rng = random.Random(seed)
    train, val = [], []
    for label in sorted(by_class):
        paths = sorted(by_class[label])
        rng.shuffle(paths)
        n_val = round(fraction * len(paths))
        if fraction > 0 and n_val == 0 and len(paths) >= 2:
            n_val = 1  # every class is validated as soon as it has two videos
        val += [VideoRecord(p, label) for p in sorted(paths[:n_val])]
        train += [VideoRecord(p, label) for p in sorted(paths[n_val:])]
    return train, val


# ---------------------------------------------------------------------------------------- folder
def _given_splits(root: Path, given: dict[str, Path]) -> BuiltLists:
    """``root/train/<class>/...`` + ``root/val/...`` (+ ``root/test/...``), used as given."""
    class_dirs = _subdirs(given["train"])
    _check_class_folders(class_dirs)
    classes = [d.name for d in class_dirs]
    index = {c: i for i, c in enumerate(classes)}
    splits = {}
    for split, folder in given.items():
        records = []
        for class_dir in _subdirs(folder):
            if class_dir.name not in index:
                raise ListFormatError(f"{class_dir}: class {class_dir.name!r} is not a class of {given['train']}")
            records += [VideoRecord(_rel(p, root), index[class_dir.name]) for p in scan_videos(class_dir)]
        splits[split] = records
    notes = [f"splits as given by the folders: {', '.join(given)}"]
    listed = [r.path for rs in splits.values() for r in rs]
    return BuiltLists(str(root), classes, splits, [], _unlisted(root, root, listed), notes)


def _class_folders(root: Path, folder: Path, val_fraction: float, seed: int) -> BuiltLists:
    """``folder/<class>/<video>`` (``folder`` is ``root`` or ``root/train``), ``val_fraction`` of
    each class held out for val."""
    class_dirs = _subdirs(folder)
    if not class_dirs:
        raise ListFormatError(f"{folder}: no class folders (expected {folder}/<class name>/<video files>)")
    _check_class_folders(class_dirs)
    classes = [d.name for d in class_dirs]
    by_class = {i: [_rel(p, root) for p in scan_videos(d)] for i, d in enumerate(class_dirs)}
    empty = [classes[i] for i, paths in by_class.items() if not paths]
    if empty:
        raise ListFormatError(f"{folder}: class folders without videos: {', '.join(empty)} "
                              f"(extensions read: {' '.join(SCAN_EXTENSIONS)})")
    train, val = _stratified_split(by_class, val_fraction, seed)
    splits = {"train": train}
    notes = [f"{folder.name}/ has no val/ beside it: its class folders are split"] if folder != root else []
    if val:
        splits["val"] = val
        notes.append(f"stratified split: {val_fraction:g} of each class to val (seed {seed})")
    else:
        notes.append("no val list: pass --val-fraction F to hold out part of each class")
    listed = [r.path for rs in splits.values() for r in rs]
    return BuiltLists(str(root), classes, splits, [], _unlisted(root, root, listed), notes)


def read_folder(root: str | os.PathLike, val_fraction: float = 0.2, seed: int = 0) -> BuiltLists:
    """``root/<class>/<video>``, ``root/train/<class>/<video>`` (val split off it), or
    ``root/{train,val[,test]}/<class>/<video>``. A ``train``/``val``/``test`` folder is a split
    folder when it holds class folders and no videos of its own, else a class like any other."""
    root = Path(root)
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    given = {s: root / s for s in SPLIT_NAMES if _holds_class_folders(root / s)}
    if "train" in given and len(given) > 1:
        return _given_splits(root, given)
    if "train" in given:
        return _class_folders(root, given["train"], val_fraction, seed)
    if given:
        raise ListFormatError(f"{root}: {' and '.join(s + '/' for s in given)} without train/ (expected "
                              f"{root}/train/<class>/<videos> beside it, or {root}/<class>/<videos>)")
    return _class_folders(root, root, val_fraction, seed)


# ---------------------------------------------------------------------------------------- UCF101
def read_ucf_class_index(path: Path) -> list[str]:
    """``classInd.txt``: ``<1-based index> <name>`` lines, indices 1..N in any order."""
    by_index: dict[int, tuple[str, int]] = {}
    for lineno, line in _lines(path):
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise ListFormatError(f"{path}:{lineno}: expected '<index> <ClassName>', got {line!r}")
        idx, name = int(parts[0]), parts[1]
        if idx in by_index:
            raise ListFormatError(f"{path}:{lineno}: index {idx} already on line {by_index[idx][1]}")
        by_index[idx] = (name, lineno)
    if sorted(by_index) != list(range(1, len(by_index) + 1)):
        got = sorted(by_index)
        raise ListFormatError(f"{path}: class indices must be 1..{len(by_index)} (1-based), got {got[:5]}...")
    return [by_index[i][0] for i in range(1, len(by_index) + 1)]


def read_ucf101(root: str | os.PathLike, split: int = 1) -> BuiltLists:
    """UCF101 as unpacked: ``UCF-101/`` and ``ucfTrainTestlist/`` below ``root``."""
    root = Path(root)
    if split not in (1, 2, 3):
        raise ValueError(f"UCF101 has splits 1, 2, 3; got {split}")
    class_ind = _find_one(root, ["ucfTrainTestlist/classInd.txt", "classInd.txt"], "classInd.txt")
    list_dir = class_ind.parent
    classes = read_ucf_class_index(class_ind)
    lower = {c.lower(): i for i, c in enumerate(classes)}
    video_dir = root / "UCF-101" if (root / "UCF-101").is_dir() else root
    prefix = _rel(video_dir, root) + "/" if video_dir != root else ""

    def label_of_folder(path: Path, lineno: int, rel: str) -> int:
        folder = rel.split("/")[0]
        if "/" not in rel or folder.lower() not in lower:  # UCF's own HandStand/Handstand case slips
            raise ListFormatError(f"{path}:{lineno}: class folder {folder!r} of {rel!r} is not in {class_ind}")
        return lower[folder.lower()]

    splits: dict[str, list[VideoRecord]] = {}
    missing: list[str] = []
    for name, stem in (("train", "trainlist"), ("test", "testlist")):
        path = list_dir / f"{stem}0{split}.txt"
        if not path.is_file():
            raise ListFormatError(f"{path}: split file missing (UCF101 split {split} needs {stem}0{split}.txt)")
        records = []
        for lineno, line in _lines(path):
            parts = line.split()
            rel = parts[0]
            if _leaves(rel, prefix):
                raise ListFormatError(f"{path}:{lineno}: {rel!r} leaves --root {root}; list paths stay below it")
            if name == "train":
                if len(parts) != 2 or not parts[1].isdigit():
                    raise ListFormatError(f"{path}:{lineno}: expected 'Class/v_name.avi <class index>', got {line!r}")
                idx = int(parts[1])
                if not 1 <= idx <= len(classes):
                    raise ListFormatError(f"{path}:{lineno}: label {idx} is not in {class_ind} (1..{len(classes)})")
                label = idx - 1
                if label != label_of_folder(path, lineno, rel):
                    raise ListFormatError(f"{path}:{lineno}: label {idx} ({classes[label]}) disagrees with the folder "
                                          f"of {rel!r}")
            else:
                if len(parts) != 1:
                    raise ListFormatError(f"{path}:{lineno}: expected 'Class/v_name.avi', got {line!r}")
                label = label_of_folder(path, lineno, rel)
            if not (root / (prefix + rel)).is_file():
                missing.append(prefix + rel)  # reported, not listed
                continue
            records.append(VideoRecord(prefix + rel, label))
        splits[name] = records
    splits["val"] = list(splits["test"])
    listed = [r.path for r in splits["train"] + splits["test"]]
    notes = [f"split {split}; UCF101 has no validation split: val.txt is the test split"]
    return BuiltLists(str(root), classes, splits, missing, _unlisted(root, video_dir, listed), notes)


# ---------------------------------------------------------------------------------------- HMDB51
def read_hmdb51(root: str | os.PathLike, split: int = 1) -> BuiltLists:
    """HMDB51: ``<class>_test_split{N}.txt`` files anywhere below ``root``, videos in ``<class>/``."""
    root = Path(root)
    if split not in (1, 2, 3):
        raise ValueError(f"HMDB51 has splits 1, 2, 3; got {split}")
    suffix = f"_test_split{split}.txt"
    split_files = {}
    for p in sorted(root.rglob(f"*{suffix}")):
        name = p.name[: -len(suffix)]
        if name in split_files:
            raise ListFormatError(f"{p}: second split file for class {name!r} (first: {split_files[name]})")
        split_files[name] = p
    if not split_files:
        raise ListFormatError(f"{root}: no HMDB51 split files *{suffix} found below it")
    classes = sorted(split_files)
    # videos by (class folder, file name), wherever the class folders are
    videos: dict[tuple[str, str], Path] = {}
    for p in scan_videos(root):
        videos.setdefault((p.parent.name, p.name), p)
    folders = {p.parent.name for p in videos.values()}
    without = sorted(folders - set(classes))
    if without:
        raise ListFormatError(f"{root}: split file missing for class folder(s) {', '.join(without)} "
                              f"(expected {without[0]}{suffix} below {root})")
    splits: dict[str, list[VideoRecord]] = {"train": [], "test": []}
    missing: list[str] = []
    for label, name in enumerate(classes):
        path = split_files[name]
        for lineno, line in _lines(path):
            parts = line.split()
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                raise ListFormatError(f"{path}:{lineno}: expected '<video.avi> 0|1|2', got {line!r}")
            if "/" in parts[0] or "\\" in parts[0]:
                raise ListFormatError(f"{path}:{lineno}: expected a file name, got {parts[0]!r} (a split file lists "
                                      f"the videos of its class folder {name}/)")
            if parts[1] == "0":
                continue
            found = videos.get((name, parts[0]))
            rel = _rel(found, root) if found is not None else f"{name}/{parts[0]}"
            if found is None:
                missing.append(rel)
                continue  # no file to point at: reported, not listed
            splits["train" if parts[1] == "1" else "test"].append(VideoRecord(rel, label))
    splits["val"] = list(splits["test"])
    listed = [r.path for r in splits["train"] + splits["test"]]
    notes = [f"split {split}; HMDB51 has no validation split: val.txt is the test split"]
    return BuiltLists(str(root), classes, splits, missing, _unlisted(root, root, listed), notes)


# ---------------------------------------------------------------------------------------- SSv2
_BRACKETS = re.compile(r"[\[\]]")


def _load_json(path: Path):
    try:
        with open(path, encoding="utf-8-sig") as f:
            return json.load(f)
    except json.JSONDecodeError as err:
        raise ListFormatError(f"{path}:{err.lineno}: not valid JSON: {err.msg}") from None


def read_ssv2(root: str | os.PathLike) -> BuiltLists:
    """Something-Something v2: webm videos + the four JSON label files."""
    root = Path(root)

    def label_file(kind: str) -> Path:
        return _find_one(root, [f"labels/{kind}.json", f"something-something-v2-{kind}.json", f"{kind}.json"],
                         f"{kind}.json (Something-Something v2 labels)")

    labels_path = label_file("labels")
    raw = _load_json(labels_path)
    if not isinstance(raw, dict):
        raise ListFormatError(f"{labels_path}: expected a mapping of template -> index string")
    by_index: dict[int, str] = {}
    for template, idx in raw.items():
        try:
            i = int(idx)
        except (TypeError, ValueError):
            raise ListFormatError(f"{labels_path}: template {template!r} has index {idx!r}, not an integer") from None
        if i in by_index:
            raise ListFormatError(f"{labels_path}: index {i} given to {by_index[i]!r} and {template!r}")
        by_index[i] = template
    if sorted(by_index) != list(range(len(by_index))):
        raise ListFormatError(f"{labels_path}: indices must be 0..{len(by_index) - 1}")
    classes = [by_index[i] for i in range(len(by_index))]
    index = {c: i for i, c in enumerate(classes)}
    video_dir = root / "20bn-something-something-v2"
    video_dir = video_dir if video_dir.is_dir() else root
    prefix = _rel(video_dir, root) + "/" if video_dir != root else ""
    by_id = {p.stem: p for p in scan_videos(video_dir)}
    splits: dict[str, list[VideoRecord]] = {}
    missing: list[str] = []
    notes: list[str] = []
    for split, kind in (("train", "train"), ("val", "validation")):
        path = label_file(kind)
        entries = _load_json(path)
        if not isinstance(entries, list):
            raise ListFormatError(f"{path}: expected a list of {{id, label, template, placeholders}} entries")
        records = []
        for n, entry in enumerate(entries):
            where = f"{path}: entry {n}"
            if not isinstance(entry, dict) or "id" not in entry or "template" not in entry:
                raise ListFormatError(f"{where}: expected an object with 'id' and 'template', got {entry!r:.80}")
            template = _BRACKETS.sub("", str(entry["template"]))
            if template not in index:
                raise ListFormatError(f"{where} (id {entry['id']}): template {entry['template']!r} "
                                      f"({template!r} without brackets) is not in {labels_path}")
            vid = str(entry["id"])
            found = by_id.get(vid)
            rel = _rel(found, root) if found is not None else f"{prefix}{vid}.webm"
            if found is None:
                missing.append(rel)
                continue
            records.append(VideoRecord(rel, index[template]))
        splits[split] = records
    with contextlib.suppress(ListFormatError):
        label_file("test")
        notes.append("test.json has no labels: no test list written")
    listed = [r.path for rs in splits.values() for r in rs]
    return BuiltLists(str(root), classes, splits, missing, _unlisted(root, video_dir, listed), notes)


# ---------------------------------------------------------------------------------------- Kinetics
KINETICS_CSVS = {"train": ["train.csv"], "val": ["validate.csv", "val.csv", "valid.csv"], "test": ["test.csv"]}


def _csv_labels(path: Path) -> list[str]:
    import csv

    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        header = [h.strip().lower() for h in next(reader, [])]
        if not header or header[0] != "label":
            return []
        return [row[0].strip() for row in reader if row and row[0].strip()]


def read_kinetics(root: str | os.PathLike, class_names: str | os.PathLike | None = None) -> BuiltLists:
    """Kinetics-400/600/700: official CSVs below ``root``, videos per class or flat."""
    root = Path(root)
    csvs: dict[str, Path] = {}
    for split, names in KINETICS_CSVS.items():
        for name in names:
            # two levels down at most (root/annotations/kinetics700/train.csv): a full walk of
            # hundreds of thousands of videos per name would be slow
            patterns = (name, f"*/{name}", f"*/*/{name}")
            found = sorted(p for pattern in patterns for p in root.glob(pattern) if p.is_file())
            if found:
                csvs[split] = found[0]
                break
    if "train" not in csvs and "val" not in csvs:
        raise ListFormatError(f"{root}: no Kinetics CSV found in it or two levels below (train.csv, validate.csv)")
    notes: list[str] = []
    if class_names:
        classes = read_class_names(class_names)
        notes.append(f"class order from {class_names}")
    else:
        source = csvs.get("train", csvs.get("val"))
        classes = sorted(set(_csv_labels(source)))
        if not classes:
            raise ListFormatError(f"{source}:1: no 'label' column to take the class names from")
        notes.append(f"classes: the sorted labels of {source.name}")
    splits: dict[str, list[VideoRecord]] = {}
    missing: list[str] = []
    for split, path in csvs.items():
        if not _csv_labels(path):
            notes.append(f"{path.name} has no labels: no {split} list written")
            continue
        result = read_kinetics_csv(path, root, classes)
        splits[split] = result.records
        missing += [m.expected for m in result.missing]
    listed = [r.path for rs in splits.values() for r in rs]
    return BuiltLists(str(root), classes, splits, missing, _unlisted(root, root, listed), notes)


# ---------------------------------------------------------------------------------------- entry
def _unique(root: str, split: str, records: Sequence[VideoRecord]) -> tuple[list[VideoRecord], str]:
    """``records`` with repeated lines once, and a note saying how many were repeated.

    Raises:
        ListFormatError: a path that cannot be a list line, that leaves the root, or that is listed
            with two labels.
    """
    labels: dict[str, int] = {}
    unique = []
    for r in records:
        problem = line_problem(r.path, is_path=True)
        if problem:
            raise ListFormatError(f"video {str(Path(root) / r.path)!r}: its path cannot be a line of {split}.txt "
                                  f"({problem}); rename it")
        if _leaves(r.path):
            raise ListFormatError(f"{root}: {split} lists {r.path!r}, which leaves --root; list paths stay below it")
        if r.path in labels:
            if labels[r.path] != r.label:
                raise ListFormatError(f"{root}: {r.path} is listed in {split} with labels {labels[r.path]} and "
                                      f"{r.label}")
            continue
        labels[r.path] = r.label
        unique.append(r)
    repeats = len(records) - len(unique)
    return unique, f"{repeats} repeated lines in {split} written once" if repeats else ""


def _training_gaps(classes: Sequence[str], splits: dict[str, list[VideoRecord]], fmt: str) -> list[str]:
    """A warning per class that has no training video."""
    if "train" not in splits:
        return []
    have = {r.label for r in splits["train"]}
    hint = " (lower --val-fraction)" if fmt == "folder" else ""
    return [f"class {name!r} has no training video, so the model cannot learn it{hint}"
            for i, name in enumerate(classes) if i not in have]


def check_lists(built: BuiltLists, fmt: str) -> BuiltLists:
    """``built`` as it will be written: every class name and path one list line that reads back the
    same and stays below the root (else ``ListFormatError``), repeated lines once (noted), and a
    warning per class without training videos."""
    for name in built.classes:
        problem = line_problem(name)
        if problem:
            raise ListFormatError(f"{built.root}: class {name!r} cannot be a line of classes.txt ({problem})")
    splits, notes = {}, list(built.notes)
    for split, records in built.splits.items():
        splits[split], note = _unique(built.root, split, records)
        notes += [note] if note else []
    return built._replace(splits=splits, notes=notes, warnings=tuple(_training_gaps(built.classes, splits, fmt)))


def _read(fmt: str, root: Path, split: int, val_fraction: float | None, seed: int,
          class_names: str | os.PathLike | None) -> BuiltLists:
    if fmt == "folder":
        return read_folder(root, 0.2 if val_fraction is None else val_fraction, seed)
    if val_fraction is not None:
        raise ValueError(f"--val-fraction applies to the folder format only ({fmt} has its own splits)")
    if fmt == "ucf101":
        return read_ucf101(root, split)
    if fmt == "hmdb51":
        return read_hmdb51(root, split)
    if fmt == "ssv2":
        return read_ssv2(root)
    return read_kinetics(root, class_names)


def build_lists(fmt: str, root: str | os.PathLike, split: int = 1, val_fraction: float | None = None,
                seed: int = 0, class_names: str | os.PathLike | None = None) -> BuiltLists:
    """Read the download under ``root`` in format ``fmt`` (one of ``FORMATS``), checked by
    ``check_lists``.

    Args:
        split: the official split (1, 2 or 3) of UCF101 and HMDB51.
        val_fraction: ``folder`` without a val folder: the fraction of each class held out for
            val (default 0.2).
        seed: seed of that held-out choice.
        class_names: ``kinetics``: a class-name file fixing the label order.
    """
    root = Path(root)
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {FORMATS}")
    if not root.is_dir():
        raise FileNotFoundError(f"--root {root} is not a folder")
    return check_lists(_read(fmt, root, split, val_fraction, seed, class_names), fmt)


def write_lists(built: BuiltLists, out_dir: str | os.PathLike, absolute: bool = False) -> list[Path]:
    """Write ``classes.txt`` and one ``<split>.txt`` per split, all or none.

    Every file is written to a temporary beside its target first; they are renamed only once all
    are complete, so an error (or an interrupt) leaves the old lists as they were.
    """
    from ..utils.io import atomic_write

    out_dir = Path(out_dir)
    root = Path(built.root).resolve()
    contents = {"classes.txt": "".join(f"{c}\n" for c in built.classes)}
    for split in SPLIT_NAMES:
        if split in built.splits:
            lines = (f"{root / r.path if absolute else r.path} {r.label}\n" for r in built.splits[split])
            contents[f"{split}.txt"] = "".join(lines)
    with contextlib.ExitStack() as stack:
        files = {name: stack.enter_context(atomic_write(out_dir / name, "wb")) for name in contents}
        for name, text in contents.items():
            files[name].write(text.encode("utf-8"))  # class folders may have any name, whatever the locale
    return [out_dir / name for name in contents]


def summary(built: BuiltLists, max_items: int = 10) -> str:
    """What was found: classes, videos per split, listed but missing, present but unlisted."""
    shown = ", ".join(built.classes[:max_items]) + (", ..." if len(built.classes) > max_items else "")
    lines = [f"{built.root}: {len(built.classes)} classes ({shown})"]
    for split in SPLIT_NAMES:
        if split in built.splits:
            per_class = defaultdict(int)
            for r in built.splits[split]:
                per_class[r.label] += 1
            counts = sorted(per_class.values()) or [0]
            lines.append(f"  {split}: {len(built.splits[split])} videos "
                         f"({counts[0]}-{counts[-1]} per class, {len(per_class)} classes)")
    for title, items in (("listed but missing", built.missing), ("present but unlisted", built.unlisted)):
        lines.append(f"  {title}: {len(items)}")
        lines += [f"    {p}" for p in items[:max_items]]
        if len(items) > max_items:
            lines.append(f"    ... and {len(items) - max_items} more")
    lines += [f"  note: {n}" for n in built.notes]
    lines += [f"  warning: {w}" for w in built.warnings]
    return "\n".join(lines)
