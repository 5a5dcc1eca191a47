"""ONNX / torch.export export: parity with PyTorch at each opset and volume sampling, metadata, the
parity check of run_export."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from sfvideo.deploy import export as ex  # noqa: E402
from sfvideo.deploy.onnx_runtime import OnnxVideoModel  # noqa: E402
from sfvideo.models import create_model, ops  # noqa: E402


@pytest.mark.parametrize("padding", ["zeros", "border"])
@pytest.mark.parametrize("mode", ["frame_pairs", "gather"])
def test_volume_sampling_modes_are_trilinear_sampling(mode, padding):
    g = torch.Generator().manual_seed(0)
    for b, t in ((1, 1), (3, 2), (1, 5), (3, 5)):
        feat = torch.randn(b, 7, t, 6, 9, generator=g)  # (B, C, T, H, W)
        points = torch.rand(b, 4, 11, 3, generator=g) * 1.6 - 0.3  # (B, N, P, 3), some outside [0, 1]
        points[:, 0, :3] = torch.tensor([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [0.5, -1e-7, 1.0 + 1e-7]])  # edges
        for layout in (feat, feat.permute(0, 2, 3, 4, 1).contiguous().permute(0, 4, 1, 2, 3)):  # planar, channels-last
            with ops.volume_sampling("trilinear"):
                ref = ops.sample_features(points, layout, padding)
            with ops.volume_sampling(mode):
                got = ops.sample_features(points, layout, padding)
            assert got.shape == ref.shape == (b, 4, 11, 7)
            assert (got - ref).abs().max().item() <= 1e-5, (b, t)
    assert ops._SAMPLING["volume"] is None  # the context restores the default


def _random_weights(model):
    with torch.no_grad():  # move RoIs and offsets off their init so that sampling really matters
        for unit in model.sampling_units():
            unit.roi_offset_module[1].weight.normal_(0, 0.05)
            unit.roi_adjust_module[1].weight.normal_(0, 0.05)
            unit.adaptive_mixing.parameter_generator[-1].weight.normal_(0, 0.05)  # zero at init
    return model.eval()


NAMES = [f"class {i}" for i in range(7)]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """``exported(arch, opset, sampling)``: (model, ONNX file), the model (random weights, seed 0)
    exported once per module for each of these (an export costs seconds of tracing)."""
    folder, made = tmp_path_factory.mktemp("exports"), {}

    def get(arch: str, opset: int, sampling: str | None = None):
        if (arch, opset, sampling) not in made:
            torch.manual_seed(0)
            model = _random_weights(create_model(arch, num_classes=7))
            meta = ex.export_metadata(model.protocol, NAMES, {"ARCH": arch, "NUM_CLASSES": 7})
            path = ex.export_onnx(model, folder / f"{arch}_{opset}_{sampling}.onnx", meta, opset=opset, sampling=sampling)
            made[arch, opset, sampling] = model, path
        return made[arch, opset, sampling]

    return get


# (arch, opset, sampling, node kinds the graph must have, kinds it must not have): both volume
# samplings (gather, the default from opset 20; frame pairs of 4-D GridSample below) on video_test
# and video_toy (other sizes, one temporal replicate); each exporter (torch's dynamo exporter from
# opset 18, about ten seconds an export; the TorchScript one below) and the fused Attention of
# opset 23 on video_test. Opset 17 on video_test is the case not marked slow.
CASES = [
    pytest.param("video_test", 17, None, {"GridSample"}, set()),
    pytest.param("video_test", 17, "gather", set(), {"GridSample"}, marks=pytest.mark.slow),
    pytest.param("video_test", 20, None, {"Gather"}, {"GridSample"}, marks=pytest.mark.slow),
    pytest.param("video_test", 23, None, {"Attention"}, {"GridSample", "Softmax"}, marks=pytest.mark.slow),
    pytest.param("video_toy", 17, None, {"GridSample"}, set(), marks=pytest.mark.slow),
    pytest.param("video_toy", 17, "gather", set(), {"GridSample"}, marks=pytest.mark.slow),
]


@pytest.mark.parametrize("arch, opset, sampling, need, avoid", CASES)
def test_onnx_export_matches_pytorch(exported, arch, opset, sampling, need, avoid):
    import onnx

    model, path = exported(arch, opset, sampling)
    runtime = OnnxVideoModel(path)
    clips = [ex.example_clip(model.protocol, b, seed=b) for b in (1, 3)]
    for clip in clips:
        assert runtime(clip.numpy()).shape == (clip.shape[0], 7)
    diff = ex.max_logit_difference(model, runtime, clips)
    assert diff < 1e-4, diff
    # the metadata round-trips, read without torch or the model code
    assert runtime.protocol == json.loads(json.dumps(model.protocol.to_dict()))
    assert runtime.class_names == NAMES and runtime.model_keys["ARCH"] == arch
    proto = onnx.load(str(path))
    kinds = {n.op_type for n in proto.graph.node}
    assert need <= kinds and not avoid & kinds, kinds
    for att in (n for n in proto.graph.node if n.op_type == "Attention"):  # heads packed, no layout copies
        assert {a.name for a in att.attribute} >= {"q_num_heads", "kv_num_heads"}
    assert proto.opset_import[0].version == opset


def test_uint8_clips_are_normalised_with_the_protocol(tmp_path):
    from sfvideo.deploy.preprocess import model_input

    clip = np.random.default_rng(0).integers(0, 256, (2, 3, 4, 8, 8), dtype=np.uint8)
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
    got = model_input(clip, mean, std)
    want = (clip.astype(np.float64) / 255 - np.array(mean).reshape(1, 3, 1, 1, 1)) / np.array(std).reshape(1, 3, 1, 1, 1)
    assert got.dtype == np.float32 and np.abs(got - want).max() < 1e-5
    floats = torch.randn(1, 3, 2, 4, 4)
    assert torch.equal(model_input(floats, mean, std), floats)  # floats are already normalised
    assert torch.allclose(model_input(torch.from_numpy(clip), mean, std), torch.from_numpy(got))


@pytest.mark.parametrize("opset", [17, pytest.param(20, marks=pytest.mark.slow)])  # 20: the default, cached above
def test_onnx_export_gives_the_last_layers_token_rois(exported, opset):
    """The second output (what `stream --out-video` draws) is the RoIs the last layer left, as
    ``forward_details`` gives them, with the same logits as the first output alone."""
    from sfvideo.deploy.timeline import TorchClassifier

    model, path = exported("video_test", opset)
    runtime = OnnxVideoModel(path)
    clip = np.random.default_rng(0).integers(0, 256, (3, 3, model.protocol.num_frames, model.protocol.crop_size,
                                                      model.protocol.crop_size), dtype=np.uint8)
    logits, rois = runtime.logits_and_rois(clip)
    eager_logits, eager_rois = TorchClassifier(model, model.protocol.mean, model.protocol.std).logits_and_rois(clip)
    with torch.no_grad():
        details = model.forward_details(torch.from_numpy(runtime_input(clip, model.protocol)))
    assert rois.shape == (3, model.num_tokens, 6)
    assert np.abs(rois - details["rois"][-1].numpy()).max() < 1e-5
    assert np.abs(rois - eager_rois).max() < 1e-5 and np.abs(logits - eager_logits).max() < 1e-4
    assert np.array_equal(runtime(clip), logits)


def runtime_input(clip, protocol):
    from sfvideo.deploy.preprocess import model_input

    return model_input(clip, protocol.mean, protocol.std)


@pytest.mark.slow
def test_torch_export_program_saves_runs_and_keeps_metadata(tmp_path):
    model = _random_weights(create_model("video_test", num_classes=5))
    meta = ex.export_metadata(model.protocol, None, {"ARCH": "video_test"})
    path = ex.export_torch_program(model, tmp_path / "m.pt2", meta)
    program, extra = ex.load_torch_program(path)
    clip = ex.example_clip(model.protocol, 3)
    with torch.no_grad():
        assert (program.module()(clip) - model(clip)).abs().max().item() < 1e-5
    assert json.loads(extra["sfvideo.protocol"])["num_frames"] == model.protocol.num_frames


def test_auto_runtime_takes_onnxruntime_only_where_it_measured_fastest():
    from sfvideo.config import load_config
    from sfvideo.deploy.run import auto_runtime

    fast = load_config("k400_tiny.yaml", ["TEST.CHECKPOINT", "x.pth", "DEVICE", "cpu"])
    assert fast.MODEL.ARCH == "video_tiny" and auto_runtime(fast) == "onnxruntime"
    assert auto_runtime(load_config("k400_tiny.yaml", ["TEST.CHECKPOINT", "x.pth", "MODEL.ARCH", "video_test",
                                                       "MODEL.NUM_CLASSES", "4"])) == "eager"
    assert auto_runtime(load_config("k400_tiny.yaml", ["DEVICE", "cpu"])) == "eager"  # nothing to export


@pytest.mark.slow  # two exports
def test_export_fails_when_the_exported_logits_differ(tmp_path):
    """run_export's parity check (the exporter does not matter here: opset 17's is the quick one)."""
    from sfvideo.config import load_config

    cfg = load_config("k400_tiny.yaml", ["MODEL.ARCH", "video_test", "MODEL.NUM_CLASSES", "4", "DATA.NUM_FRAMES", "4",
                                         "DATA.TEST_CROP_SIZE", "32"])
    result = ex.run_export(cfg, tmp_path / "ok.onnx", opset=17, tolerance=1e-4, log=lambda s: None)
    assert 0 <= result["max_abs_diff"] < 1e-4 and "batch 1 and 3" in result["checked"] and result["opset"] == 17
    with pytest.raises(RuntimeError, match="differ from PyTorch"):
        ex.run_export(cfg, tmp_path / "strict.onnx", opset=17, tolerance=-1.0, log=lambda s: None)


@pytest.mark.slow
def test_onnxruntime_folds_what_runs_before_the_first_read_of_the_clip(exported, tmp_path):
    """The first step's attention, RoI geometry and mixing weights depend on no input (tokens and
    RoIs enter shared by the batch), so onnxruntime computes them once, at load: its optimised
    graph has one Attention fewer than the model has steps."""
    import onnx
    import onnxruntime as ort

    from sfvideo.models.sparseformer import SFUnit

    model, path = exported("video_test", 23)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    opts.optimized_model_filepath = str(tmp_path / "optimised.onnx")
    ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    steps = sum(unit.repeats for unit in model.layers if isinstance(unit, SFUnit))
    exported = [n.op_type for n in onnx.load(str(path)).graph.node]
    optimised = [n.op_type for n in onnx.load(str(tmp_path / "optimised.onnx")).graph.node]
    assert exported.count("Attention") == steps
    assert optimised.count("Attention") == steps - 1
