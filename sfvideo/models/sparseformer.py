"""SparseFormer for images and video, in the official library's state-dict layout.

A SparseFormer keeps N latent tokens, each with a RoI. A *sampling unit* lets every token
adjust its RoI, sample P points of an early-convolution feature map inside it, and fold them
into its embedding by adaptive mixing; the other units are plain transformer blocks on the
tokens. The video model is the same network with 3-D geometry: RoIs (x0, y0, t0, x1, y1, t1),
3-D sampling offsets, trilinear reads of a (B, C, T, H', W') feature volume, and tokens
replicated R times over time.

Letters: B batch, N tokens, P points, C feature channels, D token width, T time, H, W space,
S geometric axes (2 or 3).

Key layout (equal to ``sparseformer.modeling.SparseFormer`` / ``sparseformer.media.MediaSparseFormer``):
``feat_extractor.conv1``, ``initial_roi``, ``initial_embedding``, ``layers.{i}.{norm1, attn.qkv,
attn.proj, norm2, mlp.fc1, mlp.fc2, roi_adjust_module, roi_offset_module, roi_offset_bias,
adaptive_mixing.{parameter_generator, m_beta, s_beta, out_proj}}``, transitions
``layers.{i}.{0,1}``, ``norm``, ``proj``.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from . import ops


class DropPath(nn.Module):
    """Stochastic depth: drop the whole residual branch per sample."""

    def __init__(self, p: float = 0.0):
        super().__init__()
        self.p = p

    def forward(self, x: Tensor, p: float | None = None) -> Tensor:
        p = self.p if p is None else p
        if p == 0.0 or not self.training:
            return x
        keep = 1.0 - p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)  # (B, 1, ...)
        return x * mask / keep


class Attention(nn.Module):
    """Multi-head self-attention over tokens (fused scaled-dot-product kernel)."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"width {dim} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        b, n, d = x.shape
        qkv = self.qkv(x).view(b, n, 3, self.num_heads, d // self.num_heads)  # (B, N, 3, h, d/h)
        # Contiguous heads: the CPU flash kernel's backward is faster on them than on strided views.
        q, k, v = qkv.permute(2, 0, 3, 1, 4).contiguous().unbind(0)  # each (B, h, N, d/h)
        x = F.scaled_dot_product_attention(q, k, v)  # (B, h, N, d/h)
        return self.proj(x.transpose(1, 2).reshape(b, n, d))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class AdaptiveMixing(nn.Module):
    """Mix a token's P sampled feature vectors with weights generated from the token itself.

    Channel mixing (C x C) then point mixing (P_out x P), both token-specific, then a linear
    projection of the flattened (P_out x C) result back to the token width D.
    """

    def __init__(self, in_dim: int, in_points: int, query_dim: int, out_points: int,
                 inner_dim: int, norm_eps: float = 1e-5):
        super().__init__()
        self.in_dim, self.in_points, self.out_points = in_dim, in_points, out_points
        self.parameter_generator = nn.Sequential(
            nn.LayerNorm(query_dim, eps=norm_eps),
            nn.Linear(query_dim, inner_dim),
            nn.Linear(inner_dim, in_dim * in_dim + in_points * out_points),
        )
        self.m_beta = nn.Parameter(torch.zeros(in_dim))
        self.s_beta = nn.Parameter(torch.zeros(out_points))
        self.out_proj = nn.Linear(in_dim * out_points, query_dim)
        self.act = nn.GELU()

    def forward(self, sampled: Tensor, query: Tensor) -> Tensor:
        """sampled (B, N, P, C), query (B, N, D) or (1, N, D) shared by the batch -> (B, N, D)."""
        b, n, p, c = sampled.shape
        norm, inner, last = self.parameter_generator
        hidden = inner(norm(query))  # (B or 1, N, inner)
        # The generator's last layer, computed as two products on row slices of its weight, so
        # both mixing matrices come out contiguous (a split of one output would be strided).
        cc = c * c
        weight, bias = last.weight, last.bias
        if torch.onnx.is_in_onnx_export():  # onnxruntime adds a bias in a pass of its own over the
            # (N, C*C) output; as a weight column times an input column of ones it rides in the product
            hidden = torch.cat([hidden, hidden.new_ones(*hidden.shape[:-1], 1)], dim=-1)  # (B|1, N, inner + 1)
            weight, bias = torch.cat([weight, bias.unsqueeze(1)], dim=1), None
        channel_w = F.linear(hidden, weight[:cc], None if bias is None else bias[:cc])
        point_w = F.linear(hidden, weight[cc:], None if bias is None else bias[cc:])
        channel_w = channel_w.unflatten(-1, (c, c))  # (B|1, N, C, C)
        point_w = point_w.unflatten(-1, (self.out_points, p))  # (B|1, N, Po, P)
        x = sampled.to(channel_w.dtype)  # (B, N, P, C)
        # batched products that broadcast batch-shared weights (the first step's) over the clips
        x = self.act(torch.matmul(x, channel_w) + self.m_beta.to(x.dtype))  # (B, N, P, C)
        x = self.act(torch.matmul(point_w, x) + self.s_beta.view(-1, 1).to(x.dtype))  # (B, N, Po, C)
        return self.out_proj(x.flatten(2))  # (B, N, D)

    @torch.no_grad()
    def init_weights(self) -> None:
        norm = self.parameter_generator[0]
        nn.init.constant_(norm.weight, norm.normalized_shape[0] ** -0.5)
        last = self.parameter_generator[-1]
        nn.init.zeros_(last.weight)
        split = self.in_dim * self.in_dim
        nn.init.xavier_uniform_(last.bias[:split].view(self.in_dim, self.in_dim))
        nn.init.xavier_uniform_(last.bias[split:].view(self.in_points, self.out_points))


class SFUnit(nn.Module):
    """One SparseFormer unit, run ``repeats`` times with shared weights.

    Sampling unit: attention, RoI adjustment, sampling + adaptive mixing, MLP (the v1 order).
    Plain unit: attention, MLP.
    """

    def __init__(
        self,
        dim: int,
        feat_dim: int,
        *,
        sampling: bool,
        geometry_dims: int = 2,
        num_points: int = 36,
        num_heads: int = 64,
        mlp_ratio: int = 4,
        repeats: int = 1,
        drop_path: Sequence[float] = (0.0,),
        ln_eps: float = 1e-6,
        mixing_ln_eps: float = 1e-5,
        mixing_out_points: int | None = None,
        offset_eps: float = 1e-5,
        padding_mode: str = "zeros",
    ):
        super().__init__()
        self.dim, self.repeats, self.sampling = dim, repeats, sampling
        self.geometry_dims, self.num_points = geometry_dims, num_points
        self.offset_eps, self.padding_mode = offset_eps, padding_mode
        self.drop_path_rates = list(drop_path) if len(drop_path) == repeats else [drop_path[0]] * repeats
        s = geometry_dims
        if sampling:
            self.roi_offset_bias = nn.Parameter(ops.grid_offsets(num_points, s))
            self.adaptive_mixing = AdaptiveMixing(
                feat_dim, num_points, dim,
                out_points=mixing_out_points if mixing_out_points is not None else max(num_points, 32),
                inner_dim=int(0.25 * dim), norm_eps=mixing_ln_eps,
            )
            self.roi_offset_module = nn.Sequential(nn.LayerNorm(dim, eps=ln_eps), nn.Linear(dim, num_points * s, bias=False))
        self.norm1 = nn.LayerNorm(dim, eps=ln_eps)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=ln_eps)
        self.mlp = Mlp(dim, dim * mlp_ratio)
        if sampling:
            self.roi_adjust_module = nn.Sequential(nn.LayerNorm(dim, eps=ln_eps), nn.Linear(dim, 2 * s, bias=False))
        self.drop = DropPath()

    def step(self, feat: Tensor, x: Tensor, roi: Tensor, drop: float,
             trace: dict | None = None) -> tuple[Tensor, Tensor]:
        """One pass. feat (B, C, [T,] H, W), x (B, N, D), roi (B, N, 2S); x and roi may be (1, ...),
        shared by the batch (see ``SparseFormer.forward_tokens``): they become (B, ...) at the first
        read of ``feat``."""
        if drop > 0 and self.training and x.shape[0] != feat.shape[0]:  # one drop-path mask per clip
            x = x.expand(feat.shape[0], *x.shape[1:])
        x = x + self.drop(self.attn(self.norm1(x)), drop)
        if self.sampling:
            roi = ops.roi_adjust(roi, self.drop(self.roi_adjust_module(x), drop))  # (B, N, 2S)
            offset = self.roi_offset_module(x) + self.roi_offset_bias  # (B, N, P*S)
            points = ops.sampling_points(roi, offset, self.offset_eps)  # (B, N, P, S)
            sampled = ops.sample_features(points, feat, self.padding_mode)  # (B, N, P, C)
            x = x + self.drop(self.adaptive_mixing(sampled, x), drop)
            if trace is not None:  # per clip, as (B, ...) even while shared by the batch
                trace["rois"].append(roi.detach().expand(feat.shape[0], *roi.shape[1:]))
                trace["points"].append(points.detach().expand(feat.shape[0], *points.shape[1:]))
        x = x + self.drop(self.mlp(self.norm2(x)), drop)
        return x, roi

    def forward(self, feat: Tensor, x: Tensor, roi: Tensor, trace: dict | None = None) -> tuple[Tensor, Tensor]:
        for i in range(self.repeats):
            x, roi = self.step(feat, x, roi, self.drop_path_rates[i], trace)
        return x, roi

    @torch.no_grad()
    def init_weights(self) -> None:
        if self.sampling:
            for module in (self.roi_adjust_module, self.roi_offset_module):
                nn.init.constant_(module[0].weight, self.dim**-0.5)
                nn.init.zeros_(module[1].weight)
            self.adaptive_mixing.init_weights()


class EarlyConvolution(nn.Module):
    """7x7/2 convolution, ReLU, 3x3/2 max-pool, channel normalisation: (B,3,H,W) -> (B,C,H/4,W/4).

    The ReLU runs after the max-pool: the two commute exactly (max of rectified values = rectified
    max, the same element receives the gradient), and the pooled map is 4x smaller.

    On CPU a video runs through the stem ``CPU_CHUNK_FRAMES`` frames at a time: the convolution's
    output for all frames at once (154 MB at 32 x 224^2) leaves the caches before the max-pool
    reads it, that of two frames stays in them. Same output and input gradient bit for bit.
    """

    CPU_CHUNK_FRAMES = 2

    def __init__(self, conv_dim: int, video: bool = False, unbiased: bool = False, eps: float = 1e-5):
        super().__init__()
        self.video, self.unbiased, self.eps = video, unbiased, eps
        if video:  # a (1, 7, 7) kernel: the official key shape; it is applied frame by frame
            self.conv1 = nn.Conv3d(3, conv_dim, (1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3))
        else:
            self.conv1 = nn.Conv2d(3, conv_dim, 7, stride=2, padding=3)

    def forward(self, x: Tensor) -> Tensor:
        if not self.video:
            x = F.relu(F.max_pool2d(self.conv1(x), 3, 2, 1))  # (B, C, H', W')
            return ops.channel_layer_norm(x, self.unbiased, self.eps).to(x.dtype)
        t = x.shape[2]
        step = self.CPU_CHUNK_FRAMES if x.device.type == "cpu" else t
        parts = [self._frames(x[:, :, i:i + step]) for i in range(0, t, step)]  # each (B, k, H', W', C)
        y = torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]  # (B, T, H', W', C)
        # (B, C, T, H', W') with channels innermost in memory: each trilinear corner read
        # fetches C contiguous values instead of C values one volume apart.
        return y.permute(0, 4, 1, 2, 3)

    def _frames(self, x: Tensor) -> Tensor:
        """(B, 3, k, H, W) frames -> (B, k, H', W', C) normalised features, contiguous."""
        b, _, t, h, w = x.shape
        if x.stride(1) == 1:  # channels innermost (training clips): a free view, channels-last
            frames = x.permute(0, 2, 3, 4, 1).reshape(b * t, h, w, 3).permute(0, 3, 1, 2)  # (Bk, 3, H, W)
        else:  # planar: whole rows to (Bk, 3, H, W), then torch's NCHW -> NHWC kernel. Gathering
            # the 3-wide channels-last pixels straight from planar memory is one copy but slower
            frames = x.transpose(1, 2).reshape(b * t, 3, h, w).contiguous(memory_format=torch.channels_last)
        weight = self.conv1.weight.squeeze(2)  # (C, 3, 7, 7)
        y = F.conv2d(frames, weight.to(frames.dtype), self.conv1.bias.to(frames.dtype), stride=2, padding=3)
        y = F.relu(F.max_pool2d(y, 3, 2, 1))  # (Bk, C, H', W'), channels-last in memory
        y = y.permute(0, 2, 3, 1)  # (Bk, H', W', C): a free view of the channels-last memory
        if self.unbiased:
            y = ops.channel_layer_norm(y, True, self.eps, dim=-1)
        else:  # biased variance, eps inside the root: exactly layer_norm without affine
            y = F.layer_norm(y.float(), (self.conv1.out_channels,), eps=self.eps)
        hh, ww, c = y.shape[1:]
        return y.contiguous().view(b, t, hh, ww, c)

    @torch.no_grad()
    def init_weights(self) -> None:
        nn.init.kaiming_normal_(self.conv1.weight, mode="fan_out", nonlinearity="relu")
        nn.init.zeros_(self.conv1.bias)


class SparseFormer(nn.Module):
    """Image SparseFormer (``sparseformer.modeling.SparseFormer`` layout, v1 settings).

    Args:
        num_classes: classifier outputs (0: no classifier, ``forward`` returns pooled features).
        conv_dim: channels C of the early convolution.
        num_tokens: latent tokens N (49 for SF-T).
        num_points: sampling points P per token and sampling step.
        widths: token width of each unit (a transition Linear + LayerNorm between widths).
        repeats: times each unit runs with shared weights.
        num_sampling_units: the first units that adjust RoIs and sample (2 in v1).
        num_heads: attention heads (64 in v1, whatever the width).
        drop_path_rate: stochastic depth at the last step, linear from 0.
        ln_eps: LayerNorm eps (1e-6 in v1).
        v1_numerics: reproduce the v1 ``imagenet/`` code's numerics instead of the library's
            (unbiased variance and eps 1e-7 in the feature normalisation and offset
            standardisation, eps 1e-6 in the mixing generator's LayerNorm, P output points).
        padding_mode: feature sampling outside the map: "zeros" (official) or "border".
    """

    geometry_dims = 2

    def __init__(
        self,
        *,
        num_classes: int = 1000,
        conv_dim: int = 96,
        num_tokens: int = 49,
        num_points: int = 36,
        widths: Sequence[int] = (256,) + (512,) * 8,
        repeats: Sequence[int] = (4,) + (1,) * 8,
        num_sampling_units: int = 2,
        num_heads: int = 64,
        mlp_ratio: int = 4,
        drop_path_rate: float = 0.0,
        ln_eps: float = 1e-6,
        v1_numerics: bool = False,
        padding_mode: str = "zeros",
        temporal_replicates: int = 1,
    ):
        super().__init__()
        if len(widths) != len(repeats):
            raise ValueError(f"widths ({len(widths)}) and repeats ({len(repeats)}) differ in length")
        video = self.geometry_dims == 3
        self.num_classes, self.num_points = num_classes, num_points
        self.num_base_tokens = num_tokens
        self.temporal_replicates = temporal_replicates if video else 1
        self.num_tokens = num_tokens * self.temporal_replicates
        self.embed_dim = widths[-1]
        self.feat_extractor = EarlyConvolution(
            conv_dim, video=video, unbiased=v1_numerics, eps=1e-7 if v1_numerics else 1e-5
        )
        self.initial_roi = nn.Embedding(self.num_tokens, 2 * self.geometry_dims)
        self.initial_embedding = nn.Embedding(self.num_tokens, widths[0])

        rates = torch.linspace(0.0, drop_path_rate, sum(repeats)).tolist()
        self.layers = nn.ModuleList()
        done = 0
        for i, (width, repeat) in enumerate(zip(widths, repeats)):
            if i > 0 and widths[i - 1] != width:
                self.layers.append(nn.Sequential(nn.Linear(widths[i - 1], width), nn.LayerNorm(width, eps=ln_eps)))
            self.layers.append(SFUnit(
                width, conv_dim, sampling=i < num_sampling_units, geometry_dims=self.geometry_dims,
                num_points=num_points, num_heads=num_heads, mlp_ratio=mlp_ratio, repeats=repeat,
                drop_path=rates[done:done + repeat], ln_eps=ln_eps,
                mixing_ln_eps=ln_eps if v1_numerics else 1e-5,
                mixing_out_points=num_points if v1_numerics else None,
                offset_eps=1e-7 if v1_numerics else 1e-5, padding_mode=padding_mode,
            ))
            done += repeat
        self.norm = nn.LayerNorm(self.embed_dim, eps=ln_eps)
        self.proj = nn.Linear(self.embed_dim, num_classes) if num_classes > 0 else nn.Identity()
        self.init_weights()

    # ------------------------------------------------------------------ initialisation
    @torch.no_grad()
    def init_weights(self) -> None:
        """The official initialisation: truncated-normal linears, unit-norm RoI/offset heads,
        zero RoI adjustment, grid offsets and grid RoIs (time slabs for video)."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for m in self.modules():
            if isinstance(m, (SFUnit, EarlyConvolution)):
                m.init_weights()
        nn.init.trunc_normal_(self.initial_embedding.weight, std=1.0)
        rois = ops.grid_rois(self.num_base_tokens)
        if self.geometry_dims == 3:
            rois = ops.inflate_rois(rois, self.temporal_replicates)
            self._spread_time_offsets()
        self.initial_roi.weight.copy_(rois)

    def _spread_time_offsets(self) -> None:
        """From scratch, lay each token's P points out as a spatial grid repeated at a few times
        ("tubes"): P = S x L with S a square grid and L in {4, 2, 3} time layers in [-0.5, 0.5].
        Reading the same place at several times lets adaptive mixing take temporal differences,
        the basic motion cue; on the toy motion classes this learns faster than giving every
        point its own time. P with no such split gets a low-discrepancy spread of times."""
        for unit in self.sampling_units():
            p = unit.num_points
            layers = next((n for n in (4, 2, 3) if p % n == 0 and round((p // n) ** 0.5) ** 2 == p // n), 0)
            offsets = unit.roi_offset_bias.view(p, 3)
            if layers:
                grid = ops.grid_offsets(p // layers, 2).view(-1, 2)  # (S, 2)
                times = torch.linspace(-0.5, 0.5, layers).repeat_interleave(p // layers)  # (P,), time-major
                offsets.copy_(torch.cat([grid.repeat(layers, 1), times[:, None]], dim=-1))
            else:
                offsets[:, 2] = (torch.arange(p, dtype=torch.float32) * 0.6180339887) % 1.0 - 0.5

    # ------------------------------------------------------------------ helpers for users
    def sampling_units(self) -> list[SFUnit]:
        return [m for m in self.layers if isinstance(m, SFUnit) and m.sampling]

    def no_weight_decay(self) -> set[str]:
        """Parameters that must not be decayed besides norms and biases: RoIs and token embeddings."""
        return {"initial_roi.weight", "initial_embedding.weight"}

    @property
    def num_layers(self) -> int:
        """Depth for layer-wise LR decay: stem/tokens are 0, ``layers.i`` is i + 1, head is last."""
        return len(self.layers) + 1

    def layer_index(self, name: str) -> int:
        if name.startswith("layers."):
            return int(name.split(".")[1]) + 1
        if name.startswith(("norm.", "proj.")):
            return self.num_layers
        return 0

    def reset_classifier(self, num_classes: int) -> None:
        """A new, freshly initialised classifier with ``num_classes`` outputs (0: none, ``forward``
        returns pooled features), as fine-tuning on another label set starts from."""
        ref = self.norm.weight  # the new head lives where the model does
        self.num_classes = num_classes
        self.proj = (nn.Linear(self.embed_dim, num_classes, device=ref.device, dtype=ref.dtype) if num_classes > 0
                     else nn.Identity())
        if num_classes > 0:
            nn.init.trunc_normal_(self.proj.weight, std=0.02)
            nn.init.zeros_(self.proj.bias)

    # ------------------------------------------------------------------ forward
    def forward_tokens(self, x: Tensor, trace: dict | None = None) -> tuple[Tensor, Tensor]:
        """Input (B, 3, H, W) or (B, 3, T, H, W) -> final tokens (B, N, D) and RoIs (B, N, 2S).

        Tokens and RoIs start as (1, N, ...), shared by the batch, and become (B, ...) where the
        first step first reads the clips: what that step computes before (its attention, RoI
        adjustment, sampling points and mixing weights) depends on no input, so it runs once per
        batch, not per clip, and an exporter's constant folding computes it once for good.
        """
        feat = self.feat_extractor(x)  # (B, C, [T,] H', W')
        b = x.shape[0]
        # Under no_grad, a view of a parameter still says requires_grad but has no grad_fn, which
        # torch's module tracker (FlopCounterMode, ...) cannot handle; a detached view is the same data.
        embedding, initial_roi = self.initial_embedding.weight, self.initial_roi.weight
        if not torch.is_grad_enabled():
            embedding, initial_roi = embedding.detach(), initial_roi.detach()
        tokens = embedding.unsqueeze(0)  # (1, N, D0), shared by the batch
        if tokens.dtype == torch.float16:  # promote as the official code: fp16 tokens overflow
            tokens = tokens.float()
        roi = initial_roi.float().unsqueeze(0)  # (1, N, 2S)
        if trace is not None:
            trace["rois"].append(roi.detach().expand(b, -1, -1))
        for layer in self.layers:
            if isinstance(layer, SFUnit):
                tokens, roi = layer(feat, tokens, roi, trace)
            else:
                tokens = layer(tokens)  # width transition
        return tokens.expand(b, -1, -1), roi.expand(b, -1, -1)  # views; (B, ...) already after a read

    def forward_head(self, tokens: Tensor) -> Tensor:
        return self.proj(self.norm(tokens.mean(dim=1)))  # (B, K)

    def forward(self, x: Tensor) -> Tensor:
        tokens, _ = self.forward_tokens(x)
        return self.forward_head(tokens)

    def forward_details(self, x: Tensor) -> dict:
        """Logits plus the geometry for visualisation.

        Returns:
            dict with ``logits`` (B, K); ``rois``: the initial RoIs then the RoIs after each
            adjustment, each (B, N, 2S); ``points``: each sampling step's points (B, N, P, S);
            all in [0, 1] coordinates (x, y[, t]).
        """
        trace: dict = {"rois": [], "points": []}
        tokens, _ = self.forward_tokens(x, trace)
        return {"logits": self.forward_head(tokens), **trace}


class VideoSparseFormer(SparseFormer):
    """Video SparseFormer (``sparseformer.media.MediaSparseFormer`` layout).

    Input (B, 3, T, H, W), any T, H, W. The early convolution runs per frame into a feature
    volume (B, C, T, H', W'); each of the ``num_tokens * temporal_replicates`` tokens has a RoI
    (x0, y0, t0, x1, y1, t1); replicate k of a token starts on the k-th of R equal time slabs.
    """

    geometry_dims = 3

    def __init__(self, *, temporal_replicates: int = 8, **kwargs):
        super().__init__(temporal_replicates=temporal_replicates, **kwargs)
