"""The model card (``README.md``) of a model directory, in the Hugging Face Hub's format.

YAML front matter (``library_name``, ``pipeline_tag``, ``license``, ``tags``, ``datasets``,
``metrics``), then what the model is, its classes and input protocol, how it was trained (the
base config and the keys the run changed), its evaluation (``test_results.json`` of ``sfvideo
test``), compute (GFLOPs, parameters), how to load and run it, and its limitations. A section with
nothing to say is left out: the card holds no placeholders.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from .hub import LIBRARY_NAME

TAGS = ("video-classification", "action-recognition", "sparseformer", "sfvideo", "pytorch", "safetensors")
# Hub dataset names of the datasets the shipped configs train on (by the config file's prefix).
DATASETS_BY_CONFIG = {"k400": "kinetics-400", "k600": "kinetics-600", "k700": "kinetics-700", "ucf101": "ucf101",
                      "hmdb51": "hmdb51", "ssv2": "something-something-v2"}
TOY_CONFIG_PREFIX = "toy"
MAX_LISTED_CLASSES = 40


@dataclass
class CardFacts:
    """What a model card states beyond ``config.json``.

    Attributes:
        name: the card's title (the directory's or the repository's name).
        repo_id: ``ORG/NAME`` on the Hub for the usage examples (else ``name`` as a local path).
        license: a Hub license identifier.
        datasets: Hub dataset names (default: the base config's dataset, when it is a known one).
        training: :func:`sfvideo.checkpoint.training.training_record` (None: left out).
        test_results: ``test_results.json`` of ``sfvideo test`` (None: left out).
        gflops_per_view, params: compute (None: left out).
        description: the variant's description (its registered docstring).
    """

    name: str
    repo_id: str | None = None
    license: str = "mit"
    datasets: Sequence[str] = ()
    training: Mapping[str, Any] | None = None
    test_results: Mapping[str, Any] | None = None
    gflops_per_view: float | None = None
    params: int | None = None
    description: str = ""
    extra_tags: Sequence[str] = field(default_factory=tuple)


RESULT_KEYS = ("top1", "top5", "mean_class_accuracy")


def read_test_results(path: str | os.PathLike) -> dict[str, Any]:
    """``test_results.json`` of ``sfvideo test``.

    Raises:
        ValueError: the file is missing, not JSON, or lacks ``top1``/``top5``/``mean_class_accuracy``.
    """
    try:
        results = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as err:
        raise ValueError(f"--test-results {path}: {err.strerror or err}") from None
    except ValueError as err:
        raise ValueError(f"--test-results {path}: not valid JSON ({err})") from None
    missing = [k for k in RESULT_KEYS if not isinstance(results, dict) or not isinstance(results.get(k), (int, float))]
    if missing:
        raise ValueError(f"--test-results {path}: no {', '.join(missing)} (expected the test_results.json that "
                         "`sfvideo test` writes)")
    return results


def card_datasets(facts: CardFacts) -> list[str]:
    """The card's ``datasets``: given ones, else the dataset of a shipped base config."""
    if facts.datasets:
        return list(facts.datasets)
    base = str((facts.training or {}).get("base_config", ""))
    return [name for prefix, name in DATASETS_BY_CONFIG.items() if base.startswith(prefix + "_")][:1]


def front_matter(facts: CardFacts) -> str:
    """The YAML block the Hub reads (library, task, license, tags, datasets, metrics)."""
    meta: dict[str, Any] = {"library_name": LIBRARY_NAME, "pipeline_tag": "video-classification",
                            "license": facts.license, "tags": list(TAGS) + list(facts.extra_tags)}
    datasets = card_datasets(facts)
    if datasets:
        meta["datasets"] = datasets
    meta["metrics"] = ["accuracy"]
    return "---\n" + yaml.safe_dump(meta, sort_keys=False) + "---\n"


def model_card(config: Mapping[str, Any], facts: CardFacts) -> str:
    """The whole ``README.md`` of a model directory whose ``config.json`` is ``config``."""
    sections = [
        front_matter(facts),
        f"# {facts.name}\n\n{_summary(config, facts)}",
        _classes_section(config),
        _protocol_section(config["protocol"]),
        _training_section(facts.training),
        _evaluation_section(facts.test_results),
        _compute_section(facts, config["protocol"]),
        _usage_section(facts),
        _limitations_section(config, facts),
    ]
    return "\n".join(s.rstrip("\n") + "\n" for s in sections if s)


def _summary(config: Mapping[str, Any], facts: CardFacts) -> str:
    p, arch = config["protocol"], config["architecture"]
    span = p["num_frames"] * p["sampling_rate"] / p["target_fps"]
    what = f" ({facts.description.splitlines()[0].rstrip('.')})" if facts.description else ""
    return (f"A video SparseFormer, sfvideo's `{arch}`{what}, that classifies a video into "
            f"{config['num_classes']} action classes. SparseFormer describes a clip with a small set of latent "
            "tokens, each reading the video only inside its own spatiotemporal region of interest through a few "
            "sampling points, instead of attending over every patch. This model reads clips of "
            f"{p['num_frames']} frames taken every {p['sampling_rate']} frames ({span:.2f} s of a "
            f"{p['target_fps']:g} fps video) at {p['crop_size']}x{p['crop_size']} pixels.\n\n"
            f"Files: `model.safetensors` (weights, in the official SparseFormer library's `MediaSparseFormer` key "
            "layout), `config.json` (architecture, classes, input protocol), this card. No pickle.\n")


def _classes_section(config: Mapping[str, Any]) -> str:
    names = config.get("class_names")
    if not names:
        return ""
    shown = ", ".join(f"`{n}`" for n in names[:MAX_LISTED_CLASSES])
    more = f", ... ({len(names) - MAX_LISTED_CLASSES} more in `config.json`)" if len(names) > MAX_LISTED_CLASSES else ""
    return f"## Classes\n\n{len(names)} classes, in label order: {shown}{more}.\n"


def _protocol_section(p: Mapping[str, Any]) -> str:
    rows = [("frames per clip", p["num_frames"]), ("sampling rate (frames)", p["sampling_rate"]),
            ("target frame rate", f"{p['target_fps']:g} fps"),
            ("crop", f"short side resized to {p['crop_size']}, centre crop {p['crop_size']}x{p['crop_size']}"),
            ("mean / std (RGB, [0, 1] scale)", f"{_floats(p['mean'])} / {_floats(p['std'])}"),
            ("test views", f"{p['num_clips']} clips ({p['clip_placement']}) x {p['num_crops']} crops, "
                           f"combined by {p['ensemble']}")]
    return "## Input\n\n| | |\n|---|---|\n" + "".join(f"| {k} | {v} |\n" for k, v in rows)


def _floats(values: Sequence[float]) -> str:
    return "(" + ", ".join(f"{v:.3f}" for v in values) + ")"


def _training_section(training: Mapping[str, Any] | None) -> str:
    if not training:
        return ""
    base = training.get("base_config", "")
    where = f"`configs/{base}`" if base.endswith(".yaml") else str(base)
    lines = ["## Training\n"]
    epochs = training.get("epochs")
    if epochs is not None:
        planned = training.get("max_epochs")
        of = f" of the {planned} its schedule plans (a checkpoint taken before the end)" if planned and planned != epochs else ""
        lines.append(f"Trained with `sfvideo train` for {epochs} epochs{of}.")
    if training.get("best_val_top1") is not None:
        lines.append(f"Best single-clip validation top-1 during training: {training['best_val_top1']:.2f}%.")
    changes = training.get("changes") or {}
    if not changes:
        lines.append(f"\nThe config is {where} as shipped with sfvideo.")
        return "\n".join(lines) + "\n"
    intro = f"is {where} with these changes" if base.endswith(".yaml") else f"differs from {where} in these keys"
    lines.append(f"\nThe config {intro} (training-environment keys such as paths and workers left out):\n")
    lines.append("| key | value |\n|---|---|")
    lines += [f"| `{k}` | `{json.dumps(v)}` |" for k, v in changes.items()]
    return "\n".join(lines) + "\n"


def _evaluation_section(results: Mapping[str, Any] | None) -> str:
    if not results:
        return ""
    views = results.get("views_per_video", "")
    split = results.get("split", "test")
    head = "| split | videos | views per video | top-1 | top-5 | mean class accuracy |\n|---|---|---|---|---|---|\n"
    row = (f"| {split} | {results.get('num_videos', '')} | {views} | {results['top1']:.2f}% | {results['top5']:.2f}% | "
           f"{results['mean_class_accuracy']:.2f}% |\n")
    text = f"## Evaluation\n\nMulti-view test (`sfvideo test`), every video scored once:\n\n{head}{row}"
    failed = results.get("failed_videos") or []
    if failed:
        n = len(failed)
        text += f"\n{n} listed video{'s' if n > 1 else ''} could not be decoded and {'are' if n > 1 else 'is'} not counted.\n"
    return text


def _compute_section(facts: CardFacts, p: Mapping[str, Any]) -> str:
    if facts.gflops_per_view is None and facts.params is None:
        return ""
    rows = []
    if facts.gflops_per_view is not None:
        views = p["num_clips"] * p["num_crops"]
        rows.append(("GFLOPs per view (multiply-adds)", f"{facts.gflops_per_view:.3g}"))
        rows.append((f"GFLOPs per video ({views} views)", f"{facts.gflops_per_view * views:.3g}"))
    if facts.params is not None:
        rows.append(("parameters", f"{facts.params / 1e6:.2f} M"))
    return "## Compute\n\n| | |\n|---|---|\n" + "".join(f"| {k} | {v} |\n" for k, v in rows)


def _usage_section(facts: CardFacts) -> str:
    ckpt = f"hf-hub:{facts.repo_id}" if facts.repo_id else facts.name
    where = ("" if facts.repo_id else f"Here the model is the local directory `{facts.name}`; once it is on the "
             "Hugging Face Hub as ORG/NAME, `hf-hub:ORG/NAME` loads it from there (and from the cache offline).\n\n")
    return (f"## How to use\n\n{where}```bash\npip install sfvideo\n"
            f"sfvideo predict --checkpoint {ckpt} video.mp4                # top-5 classes\n"
            f"sfvideo predict --checkpoint {ckpt} --window 2 video.mp4     # a timeline of a long video\n"
            f"sfvideo app --checkpoint {ckpt}                              # a browser app on 127.0.0.1:7860\n```\n\n"
            f"```python\nfrom sfvideo.checkpoint import from_pretrained\n\nmodel = from_pretrained(\"{ckpt}\")  "
            "# eval mode; model.protocol, model.class_names\nlogits = model(clip)  # clip: (B, 3, T, H, W) float32, "
            "normalised with the protocol's mean/std\n```\n\n"
            "The weights alone, without sfvideo: `safetensors.torch.load_file(\"model.safetensors\")`.\n")


def _limitations_section(config: Mapping[str, Any], facts: CardFacts) -> str:
    p = config["protocol"]
    span = p["num_frames"] * p["sampling_rate"] / p["target_fps"]
    items = [f"It knows only its {config['num_classes']} classes and has no \"none of these\" answer: every video gets "
             "a distribution over them, even one that shows none of them.",
             f"One clip spans {span:.2f} s; a video's prediction averages {p['num_clips']} clips spread over it, so a "
             "long video with several actions is better read as a timeline (`--window`).",
             f"It expects RGB video near {p['target_fps']:g} fps; videos are resampled in time to that rate, and "
             "much lower frame rates or strong compression change what it sees."]
    if str((facts.training or {}).get("base_config", "")).startswith(TOY_CONFIG_PREFIX):
        items.insert(0, "It was trained on sfvideo's synthetic toy dataset (flat shapes moving over a textured "
                        "background): it demonstrates the pipeline and recognises nothing in real videos.")
    if facts.test_results:
        items.append("The accuracy above is measured on one split only; other data (cameras, viewpoints, "
                     "populations) can score differently.")
    return "## Limitations\n\n" + "".join(f"- {item}\n" for item in items)
