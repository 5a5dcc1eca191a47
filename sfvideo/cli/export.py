"""Export a video model to ONNX (default) or a torch.export program, and prove the export runs
the same function: the exported model runs next to PyTorch on random clips (batch 1 and 3) and on
the test views of real videos, and the command fails if a logit differs by more than 1e-4. Or
share it: --format hub writes a model directory in the Hugging Face Hub's layout.

    sfvideo export --cfg toy_tiny.yaml --out model.onnx TEST.CHECKPOINT runs/toy/checkpoints/best.pth
    sfvideo export --checkpoint runs/toy/checkpoints/best.pth --out model.onnx --opset 17
    sfvideo export --checkpoint best.pth --format torch-export --out model.pt2
    sfvideo export --checkpoint best.pth --format hub --out my-model [--test-results runs/toy/test_results.json]

--format hub writes OUT/model.safetensors (the weights, no pickle), OUT/config.json (architecture,
classes, input protocol) and OUT/README.md (a model card: how it was trained, the evaluation
table of --test-results, GFLOPs and parameters, usage, limitations); upload the directory with
`hf upload ORG/NAME OUT .` and load it anywhere a checkpoint is taken as hf-hub:ORG/NAME.

The ONNX metadata carries the class names and the input protocol (frames, sampling rate, crop
size, mean/std, test views), which `sfvideo predict --runtime onnxruntime --onnx model.onnx`
reads. From opset 20 the feature volume is read by default as eight gathered corner rows
(no GridSample; onnxruntime's fastest on CPU), below 20 as two 4-D bilinear samples of
neighbouring frames blended in time (for TensorRT / OpenVINO); --sampling trilinear keeps one 5-D
GridSample (opset 20+). --opset 23 adds ONNX's fused Attention, which onnxruntime (1.23+) runs
faster on CPU.
"""

from __future__ import annotations

from pathlib import Path

from .args import config_for_weights, config_parser, fail, non_negative_float, require_writable_folder


def main(argv=None) -> None:
    parser = config_parser(__doc__, cfg_required=False)
    parser.add_argument("--out", required=True, help="output file (.onnx, or .pt2 with --format torch-export), or "
                                                      "directory (--format hub)")
    parser.add_argument("--format", default="onnx", choices=["onnx", "torch-export", "hub"], help="default onnx")
    parser.add_argument("--opset", type=int, default=20, help="ONNX opset (default 20; 16-19: 4-D sampling; "
                                                               "23: fused Attention, fastest in onnxruntime)")
    parser.add_argument("--checkpoint", help="weights (default TEST.CHECKPOINT); enough on its own for "
                                             "checkpoints written by sfvideo")
    parser.add_argument("--video", action="append", default=[], help="a video whose test views join the parity "
                                                                      "check (repeatable)")
    parser.add_argument("--sampling", default="auto", choices=["auto", "gather", "trilinear", "frame_pairs"],
                        help="how the feature volume is read: auto (gather at opset 20+, frame pairs below); "
                             "trilinear: one 5-D GridSample (opset 20+)")
    parser.add_argument("--tolerance", type=non_negative_float, default=1e-4, help="largest logit difference allowed")
    hub = parser.add_argument_group("--format hub (the model card)")
    hub.add_argument("--test-results", help="test_results.json of `sfvideo test`: the card's evaluation table")
    hub.add_argument("--license", default="mit", help="license identifier of the weights (default mit)")
    hub.add_argument("--dataset", action="append", default=[], help="Hub dataset name (repeatable; default: the "
                                                                       "dataset of the shipped config it was trained from)")
    hub.add_argument("--repo-id", help="ORG/NAME it will have on the Hub (the card's usage examples)")
    args = parser.parse_args(argv)

    from sfvideo.checkpoint import CheckpointError, export_pretrained
    from sfvideo.checkpoint.card import read_test_results
    from sfvideo.data.build import class_names_from_cfg
    from sfvideo.deploy.export import run_export

    _check_options(parser, args)

    try:
        cfg, names = config_for_weights(parser, args)
        if args.cfg:
            try:
                names = class_names_from_cfg(cfg)
            except FileNotFoundError as err:
                print(f"warning: {err}; exporting without class names")
        if args.format == "hub":
            results = read_test_results(args.test_results) if args.test_results else None
            export_pretrained(cfg, args.out, class_names=names, test_results=results, license=args.license,
                              datasets=args.dataset, repo_id=args.repo_id)
            return
        run_export(cfg, args.out, fmt=args.format, opset=args.opset, class_names=names, videos=args.video,
                   tolerance=args.tolerance, sampling=None if args.sampling == "auto" else args.sampling)
    except (CheckpointError, RuntimeError, ValueError) as err:
        fail(str(err))


def _check_options(parser, args) -> None:
    """What would fail only after the model is built and exported, refused first (status 2)."""
    from sfvideo.deploy.export import MIN_VOLUME_OPSET, opset_range

    out = Path(args.out)
    if args.format == "hub":
        if out.exists() and not out.is_dir():
            parser.error(f"--out {args.out} is a file; --format hub writes a model directory")
        require_writable_folder(parser, str(out if out.is_dir() else out.parent), "--out")
        return
    if out.is_dir():
        parser.error(f"--out {args.out} is a folder; name the file to write (.onnx, or .pt2 with --format "
                     "torch-export)")
    require_writable_folder(parser, str(out.parent), "--out")
    if args.format != "onnx":
        return
    low, high = opset_range()
    if not low <= args.opset <= high:
        parser.error(f"--opset {args.opset}: expected {low} to {high} ({low}: the first with GridSample; {high}: "
                     "the newest the installed onnx writes)")
    if args.sampling == "trilinear" and args.opset < MIN_VOLUME_OPSET:
        parser.error(f"--sampling trilinear needs --opset {MIN_VOLUME_OPSET} or above (5-D GridSample), "
                     f"not {args.opset}")
