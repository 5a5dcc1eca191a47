"""Models: golden outputs against the official SparseFormer code, invariances, every variant trains."""

import pytest
import torch

from conftest import FIXTURES, SMALL_ARCH
from sfvideo.checkpoint import load_pretrained
from sfvideo.models import SparseFormer, VideoSparseFormer, create_model, get_variant, list_models, ops, registry
from sfvideo.models.protocol import default_protocol
from sfvideo.models.registry import ModelVariant, register_model
from sfvideo.models.variants import IMAGE_PROTOCOL


def _full_size_slow(names):
    """The variants as parameters, the full-size ones marked slow (a video one's training step
    takes seconds of CPU); the ``*_test`` and ``*_toy`` variants of the same code stay quick."""
    return [pytest.param(n, marks=[] if n.endswith(("_test", "_toy")) else pytest.mark.slow) for n in names]


def _load(name):
    return torch.load(FIXTURES / name, weights_only=True)


def test_library_image_weights_reproduce_official_logits():
    model = SparseFormer(num_classes=10, **SMALL_ARCH).eval()
    model.load_state_dict(_load("v2_small_image.pth"), strict=True)
    ref = _load("v2_small_image_logits.pt")
    with torch.no_grad():
        out = model(ref["image"])
    assert (out - ref["image_logits"]).abs().max() < 1e-4


def test_media_sparseformer_weights_reproduce_official_logits():
    model = VideoSparseFormer(num_classes=10, temporal_replicates=2, **SMALL_ARCH).eval()
    model.load_state_dict(_load("media_small_r2.pth"), strict=True)
    ref = _load("media_small_r2_logits.pt")
    with torch.no_grad():
        out = model(ref["video"])
    assert (out - ref["logits"]).abs().max() < 1e-4


def test_inflated_image_weights_match_official_inflation_and_image_model():
    ref = _load("v2_small_image_logits.pt")
    video = VideoSparseFormer(num_classes=10, temporal_replicates=2, **SMALL_ARCH).eval()
    report = load_pretrained(video, FIXTURES / "v2_small_image.pth", log=None)
    assert len(report.inflated) == 9 and not report.initialised and not report.dropped
    with torch.no_grad():
        out = video(ref["static_video"])
    assert (out - ref["inflated_static_logits"]).abs().max() < 1e-4  # the official inflation
    assert (out - ref["image_logits"]).abs().max() < 1e-4  # static-clip invariance


@pytest.mark.parametrize("v1_numerics,tol", [(False, 5e-2), (True, 1e-4)])
def test_v1_training_checkpoint_reproduces_official_v1_logits(v1_numerics, tol):
    ref = _load("v1_small_logits.pt")
    model = SparseFormer(num_classes=1000, v1_numerics=v1_numerics, **dict(SMALL_ARCH, num_points=36)).eval()
    report = load_pretrained(model, FIXTURES / "v1_small_train_ckpt.pth", log=None)
    assert report.converted and not report.initialised and not report.dropped
    with torch.no_grad():
        out = model(ref["image"])
    diff = (out - ref["logits"]).abs().max().item()
    assert diff < tol
    assert torch.equal(out.argmax(1), ref["logits"].argmax(1))
    if not v1_numerics:  # library numerics differ from v1 by design (variance, eps): not bit-equal
        assert diff > 1e-4


def _perturb(model, std=0.02):
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * std)


@pytest.mark.slow  # full-size models (the small fixture architecture: test_inflated_image_weights_...)
def test_static_clip_invariance_full_size_tiny(tmp_path):
    torch.manual_seed(1)
    image = create_model("image_tiny", num_classes=400).eval()
    _perturb(image)  # exercise the zero-initialised RoI-adjust and offset layers
    path = tmp_path / "image_tiny.pth"
    torch.save({"model": image.state_dict()}, path)
    video = create_model("video_tiny", num_classes=400).eval()
    report = load_pretrained(video, path, log=None)
    assert not report.initialised
    img = torch.randn(1, 3, 96, 128)
    clip = img.unsqueeze(2).expand(1, 3, 8, 96, 128).contiguous()  # 8 frames, all the same image
    with torch.no_grad():
        diff = (video(clip) - image(img)).abs().max().item()
    assert diff < 1e-4


# ------------------------------------------------------------------------ the variant registry
@pytest.mark.parametrize("name", _full_size_slow(list_models()))
def test_every_variant_is_one_entry_with_class_arguments_and_protocol(name):
    variant = get_variant(name)
    assert variant.name == name and variant.description  # its docstring describes it
    assert issubclass(variant.cls, SparseFormer) and variant.kwargs
    with pytest.raises(TypeError):
        variant.kwargs["num_points"] = 1  # read-only: create_model's overrides never change the entry
    assert default_protocol(name) is variant.protocol
    model = create_model(name, num_classes=3)
    assert type(model) is variant.cls and model.protocol is variant.protocol
    video = issubclass(variant.cls, VideoSparseFormer)
    assert name.startswith("video_" if video else "image_")
    assert (variant.protocol == IMAGE_PROTOCOL) != video


def test_registering_a_taken_name_or_a_non_variant_fails(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))  # registrations stay in this test

    def video_test() -> ModelVariant:
        return ModelVariant(VideoSparseFormer, {}, IMAGE_PROTOCOL)

    with pytest.raises(ValueError, match="'video_test' is registered twice"):
        register_model(video_test)

    def video_dict():
        return {"num_points": 4}

    with pytest.raises(ValueError, match="video_dict.. returned dict, not a ModelVariant"):
        register_model(video_dict)
    assert "video_dict" not in list_models()

    @register_model
    def video_new() -> ModelVariant:
        """A new one."""
        return ModelVariant(VideoSparseFormer, dict(get_variant("video_test").kwargs, num_points=4), IMAGE_PROTOCOL)

    assert "video_new" in list_models() and create_model("video_new", num_classes=2).num_points == 4
    with pytest.raises(KeyError, match="unknown model 'video_nwe'; available: .*'video_new'"):
        create_model("video_nwe")


def test_reset_classifier_gives_a_fresh_head_or_pooled_features():
    model = create_model("video_test", num_classes=3).eval()
    with torch.no_grad():
        model.proj.weight.fill_(1.0)
        model.reset_classifier(5)
        x = torch.randn(2, 3, 4, 32, 32)
        assert model(x).shape == (2, 5) and model.num_classes == 5
        assert model.proj.weight.abs().max() < 0.2 and not model.proj.bias.any()  # trunc. normal, std 0.02
        model.reset_classifier(0)
        assert model(x).shape == (2, model.embed_dim)


@pytest.mark.parametrize("name", _full_size_slow(list_models()))
def test_every_variant_forward_backward(name):
    torch.manual_seed(0)
    model = create_model(name, num_classes=7).train()
    video = model.geometry_dims == 3
    x = torch.randn(1, 3, 4, 48, 64) if video else torch.randn(1, 3, 48, 64)  # batch 1: the full-size ones cost
    out = model(x)
    assert out.shape == (1, 7)
    assert torch.isfinite(out).all()
    out.logsumexp(1).sum().backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None]
    assert not no_grad, f"parameters without gradient: {no_grad}"
    bad = [n for n, p in model.named_parameters() if not torch.isfinite(p.grad).all()]
    assert not bad, f"non-finite gradients: {bad}"


@pytest.mark.parametrize("shape", [(1, 3, 1, 32, 32), (2, 3, 3, 40, 56), (1, 3, 7, 64, 48)])
def test_video_model_accepts_any_t_h_w(shape):
    model = create_model("video_test", num_classes=5).eval()
    with torch.no_grad():
        out = model(torch.randn(shape))
    assert out.shape == (shape[0], 5) and torch.isfinite(out).all()


def test_initial_rois_tile_space_and_time_slabs():
    model = create_model("video_test", num_classes=3, temporal_replicates=4)
    rois = model.initial_roi.weight.detach().view(4, 9, 6)  # (R, N, 6), replicate-major
    for k in range(4):
        assert torch.allclose(rois[k, :, 2], torch.full((9,), k / 4))
        assert torch.allclose(rois[k, :, 5], torch.full((9,), (k + 1) / 4))
        assert torch.equal(rois[k, :, [0, 1, 3, 4]], rois[0, :, [0, 1, 3, 4]])
    assert rois[..., [0, 1]].min() == 0 and rois[..., [3, 4]].max() == 1


def test_forward_details_geometry():
    model = create_model("video_test", num_classes=3).eval()
    with torch.no_grad():
        det = model.forward_details(torch.randn(2, 3, 4, 32, 32))
    n, p = model.num_tokens, model.num_points
    assert det["logits"].shape == (2, 3)
    assert len(det["rois"]) == 1 + len(det["points"]) and len(det["points"]) == 3  # 2 repeats + 1 unit
    assert all(r.shape == (2, n, 6) for r in det["rois"])
    assert all(pt.shape == (2, n, p, 3) for pt in det["points"])


def test_roi_adjust_is_identity_at_zero_and_scales():
    roi = torch.tensor([[0.1, 0.2, 0.0, 0.5, 0.6, 0.5]])
    assert torch.allclose(ops.roi_adjust(roi, torch.zeros(1, 6)), roi)
    grown = ops.roi_adjust(roi, torch.tensor([[0.0, 0, 0, 0.6931472, 0, 0]]))  # width x2
    assert torch.allclose(grown[0, [0, 3]], torch.tensor([-0.1, 0.7]), atol=1e-6)  # centre 0.3, width 0.8
    shifted = ops.roi_adjust(roi, torch.tensor([[0.0, 0, 1.0, 0, 0, 0]]))  # t centre + duration
    assert torch.allclose(shifted[0, [2, 5]], torch.tensor([0.5, 1.0]))


def test_trilinear_sampling_reads_the_right_frame():
    feat = torch.arange(4.0).view(1, 1, 4, 1, 1).expand(1, 1, 4, 2, 2).contiguous()  # value = frame index
    t = torch.tensor([0.125, 0.375, 0.5, 0.875])  # frame centres 0, 1, midway 1-2, 3
    points = torch.stack([torch.full((4,), 0.5), torch.full((4,), 0.5), t], -1).view(1, 1, 4, 3)
    out = ops.sample_features(points, feat).flatten()
    assert torch.allclose(out, torch.tensor([0.0, 1.0, 1.5, 3.0]))


def test_sampling_points_are_standardised_inside_roi():
    roi = torch.tensor([[[0.2, 0.2, 0.0, 0.6, 0.4, 1.0]]])
    offset = torch.randn(1, 1, 36 * 3) * 50  # raw scale does not matter
    pts = ops.sampling_points(roi, offset)[0, 0]  # (P, 3)
    centre = torch.tensor([0.4, 0.3, 0.5])
    assert torch.allclose(pts.mean(0), centre, atol=1e-5)
    std = pts.std(0) / torch.tensor([0.4, 0.2, 1.0])
    assert torch.allclose(std, torch.full((3,), 1 / 3), atol=1e-3)


def test_bf16_autocast_keeps_geometry_fp32_and_argmax():
    model = VideoSparseFormer(num_classes=10, temporal_replicates=2, **SMALL_ARCH).eval()
    model.load_state_dict(_load("media_small_r2.pth"), strict=True)
    ref = _load("media_small_r2_logits.pt")
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        det = model.forward_details(ref["video"])
    assert det["logits"].dtype == torch.bfloat16
    assert all(r.dtype == torch.float32 for r in det["rois"])  # RoI geometry stays fp32
    assert all(p.dtype == torch.float32 for p in det["points"])  # so do the sampling coordinates
    assert torch.equal(det["logits"].float().argmax(1), ref["logits"].argmax(1))
    assert (det["logits"].float() - ref["logits"]).abs().max() < 0.2


def test_from_scratch_points_are_tubes_over_time():
    unit = create_model("video_tiny", num_classes=3).sampling_units()[0]
    offsets = unit.roi_offset_bias.detach().view(4, 9, 3)  # (time layers, 3x3 grid, xyt)
    assert torch.equal(offsets[..., :2], offsets[:1, :, :2].expand(4, 9, 2))  # same places at every time
    assert torch.allclose(offsets[:, :, 2], torch.linspace(-0.5, 0.5, 4).view(4, 1).expand(4, 9))


@pytest.mark.parametrize("video", [False, True])
def test_early_convolution_equals_conv_relu_maxpool(video):
    """The stem pools before its ReLU (cheaper); outputs and gradients equal the official order."""
    torch.manual_seed(0)
    model = create_model("video_test" if video else "image_test", num_classes=3)
    stem = model.feat_extractor
    x = torch.randn(2, 3, 3, 32, 40) if video else torch.randn(2, 3, 32, 40)
    weight = stem.conv1.weight.squeeze(2) if video else stem.conv1.weight
    frames = x.transpose(1, 2).reshape(-1, 3, 32, 40) if video else x  # (B[T], 3, H, W)
    ref = torch.nn.functional.max_pool2d(torch.relu(torch.nn.functional.conv2d(
        frames, weight, stem.conv1.bias, stride=2, padding=3)), 3, 2, 1)  # (B[T], C, H/4, W/4)
    ref = ops.channel_layer_norm(ref)
    if video:
        ref = ref.view(2, 3, *ref.shape[1:]).transpose(1, 2)  # (B, C, T, H/4, W/4)
    out = stem(x)
    assert out.shape == ref.shape
    assert torch.allclose(out, ref, atol=1e-5)
    g = torch.randn_like(out)
    grads = torch.autograd.grad(out, [stem.conv1.weight, stem.conv1.bias], g)
    ref_grads = torch.autograd.grad(ref, [stem.conv1.weight, stem.conv1.bias], g)
    for a, b in zip(grads, ref_grads):
        assert torch.allclose(a, b, atol=1e-4, rtol=1e-4)


def test_video_stem_in_frame_chunks_equals_one_pass(monkeypatch):
    """On CPU the video stem runs a few frames at a time (cache-sized); the result is the same bit for bit."""
    torch.manual_seed(0)
    stem = create_model("video_test", num_classes=3).feat_extractor
    x = torch.randn(2, 3, 5, 32, 40, requires_grad=True)  # 5 frames: chunks of 2, 2, 1
    out = stem(x)
    grad = torch.autograd.grad(out.square().sum(), x)[0]
    monkeypatch.setattr(type(stem), "CPU_CHUNK_FRAMES", 1000)  # one pass over all frames
    ref = stem(x)
    assert torch.equal(out, ref) and torch.equal(grad, torch.autograd.grad(ref.square().sum(), x)[0])
    assert out.is_contiguous(memory_format=torch.channels_last_3d)  # channels innermost, as sampling expects


def test_video_stem_gives_the_same_features_for_planar_and_channels_last_clips():
    """Planar clips (test views, exported models) and channels-last ones (training clips) take
    different routes to the convolution's channels-last frames; the features are the same."""
    torch.manual_seed(0)
    stem = create_model("video_test", num_classes=3).feat_extractor
    planar = torch.randn(2, 3, 5, 32, 40)  # (B, C, T, H, W)
    channels_last = planar.permute(0, 2, 3, 4, 1).contiguous().permute(0, 4, 1, 2, 3)  # same values
    assert channels_last.stride(1) == 1 and planar.stride(1) != 1
    with torch.no_grad():
        assert torch.equal(stem(planar), stem(channels_last))


def test_volume_sampling_is_gather_only_where_no_gradient_is_needed():
    feat = torch.randn(1, 4, 3, 5, 6)  # (B, C, T, H, W)
    points = torch.rand(1, 2, 7, 3)
    assert ops.volume_sampling_mode(points, feat) == "gather"  # eager inference on CPU
    assert ops.volume_sampling_mode(points.requires_grad_(), feat) == "trilinear"  # training
    with torch.no_grad():
        assert ops.volume_sampling_mode(points, feat) == "gather"
        with ops.volume_sampling("frame_pairs"):
            assert ops.volume_sampling_mode(points, feat) == "frame_pairs"



@pytest.mark.parametrize("name", ["video_test", "image_test"])
def test_a_batch_gives_each_clip_the_result_it_gets_alone(name):
    """Tokens and RoIs enter the first step shared by the batch (1, N, ...) and are broadcast by
    the first read of the clips: a batch must still give each clip its own logits and geometry."""
    torch.manual_seed(0)
    model = create_model(name, num_classes=5).eval()
    with torch.no_grad():  # move the mixing weights and offsets off their zero init
        for unit in model.sampling_units():
            unit.adaptive_mixing.parameter_generator[-1].weight.normal_(0, 0.05)
            unit.roi_offset_module[1].weight.normal_(0, 0.05)
    video = model.geometry_dims == 3
    x = torch.randn(3, 3, 4, 32, 32) if video else torch.randn(3, 3, 32, 32)
    for mode in ops.VOLUME_SAMPLING if video else ("trilinear",):
        with torch.no_grad(), ops.volume_sampling(mode):
            batch = model.forward_details(x)
            alone = [model.forward_details(x[i:i + 1]) for i in range(3)]
            tokens, roi = model.forward_tokens(x)
        assert tokens.shape == (3, model.num_tokens, model.embed_dim) and roi.shape == (3, model.num_tokens, 6 if video else 4)
        for i, one in enumerate(alone):
            assert (batch["logits"][i] - one["logits"][0]).abs().max() < 1e-5, mode
            for key in ("rois", "points"):
                assert len(batch[key]) == len(one[key])
                for got, want in zip(batch[key], one[key]):
                    assert got.shape[0] == 3 and (got[i] - want[0]).abs().max() < 1e-5, (mode, key)


def test_drop_path_masks_are_drawn_per_clip_even_for_batch_shared_tokens(monkeypatch):
    """A step given batch-shared tokens (1, N, D) that drops paths must draw one mask per clip."""
    from sfvideo.models.sparseformer import DropPath

    torch.manual_seed(0)
    model = create_model("video_test", num_classes=5)
    unit = model.sampling_units()[0].train()
    feat = torch.randn(8, 16, 2, 8, 8)  # (B, C, T, H, W)
    tokens = model.initial_embedding.weight.detach().unsqueeze(0)  # (1, N, D)
    roi = model.initial_roi.weight.detach().unsqueeze(0)  # (1, N, 6)
    batches = []
    forward = DropPath.forward
    monkeypatch.setattr(DropPath, "forward", lambda self, x, p=None: batches.append(x.shape[0]) or forward(self, x, p))
    x, _ = unit.step(feat, tokens, roi, drop=0.5)
    assert x.shape == (8, *tokens.shape[1:])
    assert batches and set(batches) == {8}, batches
