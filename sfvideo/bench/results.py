"""Benchmark results as data, and the Markdown tables made from them.

A benchmark command given ``--results FILE`` writes its figures to ``FILE`` (``.csv``, or
``.json``: a list of objects), one record per table row. Every record carries the row's figures
and where they come from: ``benchmark`` (which table it belongs to: a key of ``TABLES``),
``command`` (the command line), ``date``, and the machine (``cpu``, ``cores``, ``threads``,
``device``, the Python and library versions, sfvideo's version and source revision).

``render_table(records)`` is the one formatter of each table: the commands print it and
``update_tables`` writes it into Markdown files between ``<!-- results:NAME -->`` and
``<!-- /results:NAME -->`` (NAME: the stem of a file in the results folder), with a line saying
where the figures were measured. With ``check=True`` it only reports the files whose tables
disagree with their data. This module needs neither torch nor the benchmarks' libraries.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import math
import os
import re
import shlex
from pathlib import Path
from typing import Any, Callable, Collection, NamedTuple, Sequence

from ..demo import CLASS_ACCURACY_PREFIX
from ..utils.io import atomic_write_text

LIBRARIES = ("torch", "torchvision", "torchcodec", "decord", "av", "onnxruntime", "pytorchvideo")
META_KEYS = ("benchmark", "command", "date", "cpu", "cores", "threads", "device", "python", "sfvideo",
             *LIBRARIES)
Record = dict[str, Any]


class ResultsError(ValueError):
    """A results file or a Markdown marker that cannot be used; the message names the file."""


# ----------------------------------------------------------------------------- where and how
def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "unknown CPU"


def _version(dist: str) -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return ""


def _source_revision() -> str:
    """The git commit of sfvideo's source tree (``+`` when it has uncommitted changes), or ``""``."""
    import subprocess

    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return ""
    try:
        rev = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    return f"{rev}+" if rev and dirty else rev


def machine_info(device: str = "cpu") -> Record:
    """CPU model, cores, torch threads, device (with the GPU's name), Python, library and sfvideo versions."""
    import platform

    import torch

    dev = device
    if device.startswith("cuda") and torch.cuda.is_available():
        dev = f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    revision = _source_revision()
    return {"cpu": _cpu_model(), "cores": os.cpu_count() or 0, "threads": torch.get_num_threads(), "device": dev,
            "python": platform.python_version(),
            "sfvideo": _version("sfvideo") + (f" ({revision})" if revision else ""),
            **{lib: _version(lib) for lib in LIBRARIES}}


def machine_description(info: Record) -> str:
    """One line for a table header: CPU, cores, threads, torch (and onnxruntime) version, device."""
    ort = f", onnxruntime {info['onnxruntime']}" if info.get("onnxruntime") else ""
    return (f"{info['cpu']}, {info['cores']} cores, {info['threads']} threads, torch {info['torch']}{ort}, "
            f"device {info['device']}")


def command_line(prog: str, argv: Sequence[str]) -> str:
    """The command as a user would type it again: ``prog`` and the arguments, shell-quoted."""
    return " ".join([prog] + [shlex.quote(a) for a in argv])


def run_metadata(benchmark: str, command: str, device: str = "cpu") -> Record:
    """What every record of one run carries: the table it belongs to, the command, the date, the machine."""
    date = datetime.datetime.now().astimezone().isoformat(timespec="minutes")
    return {"benchmark": benchmark, "command": command, "date": date, **machine_info(device)}


# ----------------------------------------------------------------------------- files
def save_run(path: str | os.PathLike, records: Sequence[Record], benchmark: str, command: str,
             device: str = "cpu") -> Path:
    """``write_results`` with this run's metadata (``run_metadata``)."""
    return write_results(path, records, run_metadata(benchmark, command, device))


def write_results(path: str | os.PathLike, records: Sequence[Record], meta: Record) -> Path:
    """Write ``records``, each joined with ``meta``, to ``path`` (CSV, or JSON for ``.json``),
    replacing the file whole (written to a temporary file, then renamed)."""
    path = Path(path)
    rows = [{**r, **meta} for r in records]
    if path.suffix == ".json":
        return atomic_write_text(path, json.dumps(rows, indent=1) + "\n")
    columns = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: repr(v) if isinstance(v, float) else v for k, v in r.items()} for r in rows)
    return atomic_write_text(path, buf.getvalue())


def read_results(path: str | os.PathLike) -> list[Record]:
    """The records of a results file written by ``write_results``."""
    path = Path(path)
    try:
        if path.suffix == ".json":
            rows = json.loads(path.read_text())
            if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
                raise ResultsError(f"{path}: expected a JSON list of objects")
            return rows
        return list(csv.DictReader(io.StringIO(path.read_text())))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, csv.Error) as err:
        raise ResultsError(f"{path}: cannot read results: {err}") from None


# ----------------------------------------------------------------------------- cells
def _num(value: Any) -> float | None:
    """A cell's number: None when absent or empty, NaN when not measured."""
    if value is None or value == "":
        return None
    return float(value)


def text(key: str) -> Callable[[Record], str]:
    return lambda r: str(r.get(key, ""))


def number(key: str, form: Callable[[float], str]) -> Callable[[Record], str]:
    """The cell of a number written by ``form``: ``n/a`` where not measured (NaN), empty where absent."""

    def cell(r: Record) -> str:
        v = _num(r.get(key))
        return "" if v is None else "n/a" if math.isnan(v) else form(v)

    return cell


def fixed(key: str, digits: int, suffix: str = "", sign: bool = False) -> Callable[[Record], str]:
    """The number with ``digits`` decimals (and ``suffix``; a ``+`` on positive ones with ``sign``)."""
    return number(key, lambda v: f"{v:{'+' if sign else ''}.{digits}f}{suffix}")


def percent(key: str) -> Callable[[Record], str]:
    """A fraction as a percentage with one decimal."""
    return number(key, lambda v: f"{v:.1%}")


def megabytes(key: str) -> Callable[[Record], str]:
    """Memory in MB: whole numbers from 10 up, one decimal below."""
    return number(key, lambda v: f"{v:.0f}" if v >= 10 else f"{v:.1f}")


def scientific(key: str, digits: int = 1) -> Callable[[Record], str]:
    """The number in scientific notation with ``digits`` decimals (``2.4e-07``)."""
    return number(key, lambda v: f"{v:.{digits}e}")


def yes_no(key: str) -> Callable[[Record], str]:
    """A boolean (``True``/``False`` as JSON or CSV writes it) as ``yes`` or ``no``."""

    def cell(r: Record) -> str:
        v = r.get(key)
        if v is None or v == "":
            return ""
        return "yes" if str(v).lower() in ("true", "1") else "no"

    return cell


class Column(NamedTuple):
    header: str
    cell: Callable[[Record], str]


class TableSpec(NamedTuple):
    """A benchmark's table: its columns (or a function of the rows giving them), the rows made from
    the records (one per record unless ``rows`` says otherwise), and lines before and after it."""

    columns: tuple[Column, ...] | Callable[[list[Record]], tuple[Column, ...]]
    intro: Callable[[list[Record]], list[str]] = lambda records: []
    outro: Callable[[list[Record]], list[str]] = lambda records: []
    rows: Callable[[list[Record]], list[Record]] = lambda records: records


# ----------------------------------------------------------------------------- the tables
def _official_intro(records: list[Record]) -> list[str]:
    return [f"Identical weights: max |official - sfvideo| logits = {float(records[0]['max_abs_diff']):.2e}. "
            "Ratios are official time / sfvideo time (> 1: sfvideo faster), the median over rounds of "
            "back-to-back runs; seconds are medians.", ""]


def _official_outro(records: list[Record]) -> list[str]:
    r = records[0]
    if _num(r.get("fixture_clips")) is None:
        return []
    return ["", f"bf16 vs fp32 on the fixture clips (media_small_r2, {int(float(r['fixture_clips']))} clips): "
            f"argmax agreement {float(r['fixture_argmax_agreement']):.0%}, max |bf16 - fp32| logits "
            f"{float(r['fixture_bf16_vs_fp32_max_abs']):.3g} (fp32 vs official reference logits "
            f"{float(r['fixture_fp32_vs_official_max_abs']):.2e})."]


OFFICIAL_SECONDS = ("official_infer_s", "sfvideo_infer_s", "sfvideo_bf16_infer_s", "official_train_s",
                    "sfvideo_train_s")


def _official_seconds(r: Record) -> str:
    return " / ".join(f"{float(r[k]):.3f}" for k in OFFICIAL_SECONDS)


def _flops_rows(records: list[Record]) -> list[Record]:
    """One row per model: its GFLOPs at each input (``gflops@TxS``) and its parameters."""
    by_model: dict[str, Record] = {}
    for r in records:
        row = by_model.setdefault(r["model"], {"model": r["model"], "params_m": r["params_m"]})
        row[f"gflops@{int(float(r['frames']))}x{int(float(r['size']))}"] = r["gflops"]
    return list(by_model.values())


def _flops_columns(rows: list[Record]) -> tuple[Column, ...]:
    inputs = sorted({tuple(int(v) for v in k[len("gflops@"):].split("x")) for r in rows for k in r
                     if k.startswith("gflops@")})
    return (Column("model", text("model")),
            *(Column(f"GFLOPs, {t} x {s}^2" if t > 1 else f"GFLOPs, {s}^2", fixed(f"gflops@{t}x{s}", 2))
              for t, s in inputs),
            Column("params (M)", fixed("params_m", 2)))


def _demo_columns(rows: list[Record]) -> tuple[Column, ...]:
    classes = [k for k in dict.fromkeys(k for r in rows for k in r) if k.startswith(CLASS_ACCURACY_PREFIX)]
    return (Column("seed", text("seed")), Column("frames", text("frames")),
            *(Column(k[len(CLASS_ACCURACY_PREFIX):], fixed(k, 0)) for k in classes),
            Column("video top-1 (%)", fixed("top1", 1)), Column("mean class (%)", fixed("mean_class_accuracy", 1)),
            Column("RoI displacement", fixed("roi_displacement", 3)))


def _long_run(r: Record) -> str:
    return f"{r['set']}, {r['decoder']}, {r['workers']} workers"


TABLES: dict[str, TableSpec] = {
    "flops": TableSpec(_flops_columns, rows=_flops_rows),
    "models": TableSpec((
        Column("model", text("model")), Column("input (T x H x W)", text("input")), Column("runtime", text("runtime")),
        Column("GFLOPs / view", fixed("gflops", 2)), Column("params (M)", fixed("params_m", 2)),
        Column("infer clips/s", fixed("infer_clips_s", 3)),
        Column("infer speed vs slow_r50", fixed("infer_speed_vs_slow_r50", 2, "x")),
        Column("train clips/s", fixed("train_clips_s", 3)), Column("infer peak mem (MB)", megabytes("infer_mem_mb")),
        Column("train peak mem (MB)", megabytes("train_mem_mb")))),
    "official": TableSpec((
        Column("input (B x T x H x W)", lambda r: f"{r['batch']} x {r['frames']} x {r['size']}^2"),
        Column("inference fp32", fixed("infer_ratio", 2)), Column("train step fp32", fixed("train_ratio", 2)),
        Column("sfvideo bf16 inference vs official fp32", fixed("bf16_infer_ratio", 2)),
        Column("s/step official infer / sfvideo infer / sfvideo bf16 infer / official train / sfvideo train",
               _official_seconds)), _official_intro, _official_outro),
    "loader": TableSpec((
        Column("file set", text("set")), Column("loader", text("loader")),
        Column("decode-only clips/s (same spans)", fixed("decode_clips_s", 2)),
        Column("pipeline clips/s", fixed("pipeline_clips_s", 2)),
        Column("pipeline / decode-only", fixed("pipeline_vs_decode", 2)),
        Column("sequential / decode-only", fixed("sequential_vs_decode", 2)),
        Column("CPU per clip, pipeline / decode-only", fixed("cpu_vs_decode", 2)),
        Column("CLIPS_PER_DECODE 2 clips/s", fixed("k2_clips_s", 2)), Column("2 vs 1", fixed("k2_vs_k1", 2, "x")),
        Column("pipeline vs pytorchvideo", fixed("vs_pytorchvideo", 2, "x")))),
    "loader_memory": TableSpec((
        Column("long run", _long_run), Column("clips", text("clips")), Column("clips/s", fixed("clips_s", 2)),
        Column("RSS main+workers, 5-15% of run (MiB)", fixed("rss_start_mb", 0)),
        Column("45-55%", fixed("rss_middle_mb", 0)), Column("90-100%", fixed("rss_end_mb", 0)),
        Column("peak", fixed("rss_peak_mb", 0)), Column("growth (MiB)", fixed("growth_mb", 0, sign=True)),
        Column("growth from 25-30% (MiB)", fixed("growth_from_quarter_mb", 0, sign=True)),
        Column("main 5-15%", fixed("main_start_mb", 0)), Column("main 90-100%", fixed("main_end_mb", 0))),
        outro=lambda records: ["", "(RSS counts shared pages once per process, so batches in flight count in a "
                                   "worker and in the main process.)"]),
    "loader_shards": TableSpec((
        Column("file set", text("set")), Column("source", text("source")), Column("decoder", text("decoder")),
        Column("loader workers", text("workers")), Column("clips/s", fixed("clips_s", 2)),
        Column("vs loose files", fixed("vs_loose_files", 2, "x"))),
        intro=lambda records: ["The same clips through the training loader from each source; ratios are medians "
                               "of per-round ratios (alternating rounds).", ""]),
    "timeline": TableSpec((
        Column("runtime", text("runtime")), Column("video (s)", fixed("video_s", 0)),
        Column("segments", text("segments")), Column("windows", text("windows")),
        Column("top-1 = segment under the window centre", percent("centre")),
        Column("windows inside one segment", percent("inside")),
        Column("windows inside one toy clip", percent("one_clip")),
        Column("peak RSS, 1 min video (MB)", fixed("peak_rss_1min_mb", 0)),
        Column("peak RSS, long video (MB)", fixed("peak_rss_long_mb", 0)),
        Column("long video (min)", text("long_minutes")), Column("model loaded (MB)", fixed("loaded_rss_mb", 0)),
        Column("bound (MB)", fixed("bound_mb", 0)))),
    "parity": TableSpec((
        Column("check", text("description")), Column("max abs difference of the logits", scientific("max_abs_diff")),
        Column("same argmax", yes_no("argmax_agrees")))),
    "demo": TableSpec(_demo_columns),
    "stream": TableSpec((
        Column("setting", text("setting")), Column("weights", text("weights")), Column("minutes", text("minutes")),
        Column("input fps", fixed("input_fps", 1)), Column("windows/s", fixed("inference_per_s", 2)),
        Column("dropped windows", text("dropped_windows")), Column("latency p50 (s)", fixed("latency_p50_s", 3)),
        Column("p95 (s)", fixed("latency_p95_s", 3)), Column("max (s)", fixed("latency_max_s", 3)),
        Column("p95 first / last minute (s)",
               lambda r: f"{float(r['latency_p95_first_min_s']):.3f} / {float(r['latency_p95_last_min_s']):.3f}"),
        Column("p95 each minute (s)", lambda r: r.get("latency_p95_by_min_s") or "-"),
        Column("RSS start / minute 1 / last minute / end (MB)",
               lambda r: " / ".join(f"{float(r[k]):.0f}" for k in ("rss_start_mb", "rss_min1_mb", "rss_last_min_mb",
                                                                      "rss_end_mb"))),
        Column("RSS growth from minute 1 (MB)", fixed("rss_growth_mb", 0, sign=True)),
        Column("real-time factor", fixed("real_time_factor", 2))),
        outro=lambda records: ["", "(Real-time factor: mean inference time per window / stride; above 1, windows "
                                   "are dropped.)"]),
    "stream_accuracy": TableSpec((
        Column("video (s)", fixed("video_s", 0)), Column("segments", text("segments")),
        Column("windows", text("windows")), Column("dropped", text("dropped_windows")),
        Column("window / stride / smoothing (s)",
               lambda r: f"{float(r['window_s']):.2f} / {float(r['stride_s']):.2f} / {float(r['smooth_s']):g}"),
        Column("windows inside one segment", text("inside_windows")),
        Column("smoothed label = segment", percent("smoothed_inside")),
        Column("own top-1 = segment", percent("raw_inside")))),
    "train_step": TableSpec((
        Column("model", text("arch")), Column("batch", text("batch_size")),
        Column("input (T x H x W)", lambda r: f"{r['frames']} x {r['crop']}^2"), Column("steps", text("steps")),
        Column("training clips/s", fixed("clips_per_s", 3)), Column("peak RSS (MiB)", fixed("peak_rss_mib", 0)),
        Column("device", text("device")), Column("threads", text("threads")))),
}


def _generic(records: list[Record]) -> TableSpec:
    keys = [k for k in dict.fromkeys(k for r in records for k in r) if k not in META_KEYS]
    return TableSpec(tuple(Column(k, text(k)) for k in keys))


def render_table(records: list[Record], kind: str | None = None) -> str:
    """The Markdown table of ``records`` (with the benchmark's lines around it); ``kind`` defaults
    to the records' ``benchmark`` field (a kind ``TABLES`` lacks: every figure column as written)."""
    if not records:
        raise ResultsError("no records to tabulate")
    kind = kind or str(records[0].get("benchmark", ""))
    spec = TABLES.get(kind) or _generic(records)
    rows = spec.rows(records)
    columns = spec.columns(rows) if callable(spec.columns) else spec.columns
    lines = spec.intro(records)
    lines += ["| " + " | ".join(c.header for c in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(c.cell(r) for c in columns) + " |" for r in rows]
    return "\n".join(lines + spec.outro(records))


def provenance(records: list[Record]) -> str:
    """Where the figures come from: date, machine and command of each run among ``records``."""
    runs = dict.fromkeys((r.get("date", ""), machine_description(r) if r.get("cpu") else "", r.get("command", ""))
                         for r in records)
    return "\n".join(f"Measured {date or '(no date)'} on {machine or '(no machine recorded)'}: "
                     f"`{command or '(no command recorded)'}`" for date, machine, command in runs)


def results_markdown(records: list[Record]) -> str:
    """What ``update_tables`` writes between a pair of markers: the table, then its provenance."""
    return f"{render_table(records)}\n\n{provenance(records)}"


# ----------------------------------------------------------------------------- Markdown
_PAIR = re.compile(r"<!-- results:(?P<name>[\w.-]+) -->.*?<!-- /results:(?P=name) -->", re.S)
_ANY = re.compile(r"<!-- (?P<close>/?)results:(?P<name>[\w.-]+) -->")


def markdown_files(root: str | os.PathLike) -> list[Path]:
    """``README.md`` and every Markdown file under ``docs/`` of ``root``."""
    root = Path(root)
    readme = [root / "README.md"] if (root / "README.md").is_file() else []
    return readme + sorted((root / "docs").rglob("*.md"))


def results_file(results_dir: str | os.PathLike, name: str) -> Path:
    """``results_dir/NAME.csv`` or ``NAME.json``, whichever exists."""
    found = [p for p in (Path(results_dir) / f"{name}.csv", Path(results_dir) / f"{name}.json") if p.is_file()]
    if len(found) != 1:
        raise ResultsError(f"results:{name}: expected one of {name}.csv, {name}.json in {results_dir}, "
                           f"found {len(found)}")
    return found[0]


def _check_pairs(text: str, source: Path) -> None:
    """Every marker is half of an opening/closing pair of one name."""
    paired = {m.start() for m in _PAIR.finditer(text)} | {m.end() for m in _PAIR.finditer(text)}
    for m in _ANY.finditer(text):
        if m.start() not in paired and m.end() not in paired:
            line = text.count("\n", 0, m.start()) + 1
            other = "<!-- results:" if m.group("close") else "<!-- /results:"
            raise ResultsError(f"{source}:{line}: {m.group(0)} has no matching {other}{m.group('name')} -->")


def marked_block(name: str, results_dir: str | os.PathLike) -> str:
    """What a pair of ``results:NAME`` markers holds, the markers included: the table of
    ``results_dir/NAME.csv`` (or ``.json``) and its provenance.

    Raises:
        ResultsError: the results file is missing, unreadable, or lacks what its table needs.
    """
    path = results_file(results_dir, name)
    try:
        body = results_markdown(read_results(path))
    except (ValueError, KeyError, TypeError) as err:  # a missing column, a cell that is no number
        raise ResultsError(f"{path}: cannot make its table: {err!r}") from None
    return f"<!-- results:{name} -->\n{body}\n<!-- /results:{name} -->"


def marked_tables(text: str) -> list[tuple[str, str]]:
    """The ``(name, block)`` of every pair of results markers in ``text``, markers included."""
    return [(m.group("name"), m.group(0)) for m in _PAIR.finditer(text)]


def fill_tables(text: str, source: Path, results_dir: str | os.PathLike,
                names: Collection[str] | None = None) -> tuple[str, list[str]]:
    """``text`` with every marked table (or those of ``names``) regenerated from its results
    file, and the names of the tables that changed."""
    _check_pairs(text, source)
    changed: list[str] = []

    def table(m: re.Match) -> str:
        name = m.group("name")
        if names is not None and name not in names:
            return m.group(0)
        try:
            block = marked_block(name, results_dir)
        except ResultsError as err:
            raise ResultsError(f"{source}:{text.count(chr(10), 0, m.start()) + 1}: {err}") from None
        if block != m.group(0):
            changed.append(name)
        return block

    return _PAIR.sub(table, text), changed


def update_tables(root: str | os.PathLike, results_dir: str | os.PathLike | None = None,
                  check: bool = False, names: Collection[str] | None = None) -> list[tuple[Path, list[str]]]:
    """Regenerate the marked tables of ``markdown_files(root)`` (only those named ``names``, when
    given) from ``results_dir`` (default ``root/results``). Returns each file whose tables
    disagreed with their data and the names of those tables; unless ``check``, those files are
    rewritten (atomically).

    Raises:
        ResultsError: a marker without its pair, a missing or unreadable results file (file and line
            named), or a name of ``names`` that no marker carries.
    """
    results_dir = Path(results_dir) if results_dir is not None else Path(root) / "results"
    texts = {path: path.read_text() for path in markdown_files(root)}
    unmarked = sorted(set(names or ()) - {name for text in texts.values() for name, _ in marked_tables(text)})
    if unmarked:
        raise ResultsError(f"no results markers named {', '.join(unmarked)} in {root}'s README.md or docs/")
    stale = []
    for path, text in texts.items():
        new, changed = fill_tables(text, path, results_dir, names)
        if changed:
            stale.append((path, changed))
            if not check:
                atomic_write_text(path, new)
    return stale
