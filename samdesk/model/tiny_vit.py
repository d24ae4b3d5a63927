"""MobileSAM's TinyViT image encoder, official parameter names (``mobile_sam.pt`` loads as is).

Input (B, 3, 1024, 1024) float32 normalised pixels; output (B, 256, 64, 64). After loading, call
:meth:`TinyViT.fuse` to fold every BatchNorm into its convolution (inference only; exact up to
rounding), cache the attention biases and switch to channels-last memory layout.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from samdesk.model.common import LayerNorm2d
from samdesk.model.config import TinyViTConfig


class Conv2d_BN(nn.Sequential):
    """Conv (no bias) + BatchNorm, parameters ``c`` and ``bn``; :meth:`fused` folds them."""

    def __init__(self, a: int, b: int, ks: int = 1, stride: int = 1, pad: int = 0, groups: int = 1):
        super().__init__()
        self.add_module("c", nn.Conv2d(a, b, ks, stride, pad, groups=groups, bias=False))
        self.add_module("bn", nn.BatchNorm2d(b))

    @torch.no_grad()
    def fused(self) -> nn.Conv2d:
        c, bn = self.c, self.bn
        scale = bn.weight / (bn.running_var + bn.eps) ** 0.5
        conv = nn.Conv2d(
            c.in_channels,
            c.out_channels,
            c.kernel_size,
            stride=c.stride,
            padding=c.padding,
            groups=c.groups,
            bias=True,
        )
        conv.weight.copy_(c.weight * scale[:, None, None, None])
        conv.bias.copy_(bn.bias - bn.running_mean * scale)
        return conv


class PatchEmbed(nn.Module):
    def __init__(self, in_chans: int, embed_dim: int) -> None:
        super().__init__()
        n = embed_dim
        self.seq = nn.Sequential(
            Conv2d_BN(in_chans, n // 2, 3, 2, 1), nn.GELU(), Conv2d_BN(n // 2, n, 3, 2, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.seq(x)


class MBConv(nn.Module):
    def __init__(self, chans: int, expand_ratio: float) -> None:
        super().__init__()
        hidden = int(chans * expand_ratio)
        self.conv1 = Conv2d_BN(chans, hidden)
        self.act1 = nn.GELU()
        self.conv2 = Conv2d_BN(hidden, hidden, ks=3, stride=1, pad=1, groups=hidden)
        self.act2 = nn.GELU()
        self.conv3 = Conv2d_BN(hidden, chans)
        self.act3 = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act2(self.conv2(self.act1(self.conv1(x))))
        return self.act3(self.conv3(y) + x)


class PatchMerging(nn.Module):
    """(B, C, H, W) or (B, H*W, C) -> (B, H'*W', C'); stride 1 on the last merge (to stay 64x64)."""

    def __init__(self, resolution: tuple[int, int], dim: int, out_dim: int, stride: int) -> None:
        super().__init__()
        self.input_resolution = resolution
        self.act = nn.GELU()
        self.conv1 = Conv2d_BN(dim, out_dim, 1, 1, 0)
        self.conv2 = Conv2d_BN(out_dim, out_dim, 3, stride, 1, groups=out_dim)
        self.conv3 = Conv2d_BN(out_dim, out_dim, 1, 1, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 3:
            h, w = self.input_resolution
            x = x.view(len(x), h, w, -1).permute(0, 3, 1, 2)
        x = self.act(self.conv1(x))
        x = self.conv3(self.act(self.conv2(x)))
        return x.flatten(2).transpose(1, 2)


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(self.norm(x))))


def _bias_index(window: int) -> torch.Tensor:
    """(N, N) index of the (|dy|, |dx|) offset of every query/key pair in a window, N = window²."""
    points = list(itertools.product(range(window), range(window)))
    offsets: dict[tuple[int, int], int] = {}
    idxs = []
    for p1 in points:
        for p2 in points:
            off = (abs(p1[0] - p2[0]), abs(p1[1] - p2[1]))
            idxs.append(offsets.setdefault(off, len(offsets)))
    return torch.tensor(idxs, dtype=torch.long).view(len(points), len(points))


class Attention(nn.Module):
    """Window self-attention with a learned bias per (|dy|, |dx|) offset; (B, N, C) -> same."""

    def __init__(self, dim: int, key_dim: int, num_heads: int, window: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.scale = key_dim**-0.5
        self.key_dim = key_dim
        self.d = key_dim
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * key_dim * num_heads)
        self.proj = nn.Linear(key_dim * num_heads, dim)
        self.window = window
        self.register_buffer("attention_bias_idxs", _bias_index(window), persistent=False)
        self.attention_biases = nn.Parameter(torch.zeros(num_heads, window * window))
        self._bias: torch.Tensor | None = None

    def reset_index(self) -> None:
        """Recompute the (not saved) bias index, e.g. after building on the meta device."""
        self.attention_bias_idxs = _bias_index(self.window).to(self.attention_biases.device)

    def cache_bias(self) -> None:
        """Precompute the (heads, N, N) bias from the loaded parameters (after load/fuse)."""
        with torch.no_grad():
            self._bias = self.attention_biases[:, self.attention_bias_idxs].contiguous()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        qkv = self.qkv(self.norm(x)).view(b, n, self.num_heads, -1)
        q, k, v = qkv.split([self.key_dim, self.key_dim, self.d], dim=3)
        q, k, v = (t.permute(0, 2, 1, 3) for t in (q, k, v))
        bias = self._bias
        if bias is None:
            bias = self.attention_biases[:, self.attention_bias_idxs]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype), scale=self.scale)
        return self.proj(out.transpose(1, 2).reshape(b, n, -1))


class TinyViTBlock(nn.Module):
    def __init__(self, cfg: TinyViTConfig, stage: int, resolution: tuple[int, int]) -> None:
        super().__init__()
        dim = cfg.embed_dims[stage]
        heads = cfg.num_heads[stage]
        self.input_resolution = resolution
        self.window_size = cfg.window_sizes[stage]
        self.attn = Attention(dim, dim // heads, heads, self.window_size)
        self.mlp = Mlp(dim, int(dim * cfg.mlp_ratio))
        pad = cfg.local_conv_size // 2
        self.local_conv = Conv2d_BN(dim, dim, ks=cfg.local_conv_size, stride=1, pad=pad, groups=dim)

    def _windowed_attention(self, x: torch.Tensor) -> torch.Tensor:
        h, w = self.input_resolution
        b, n, c = x.shape
        ws = self.window_size
        if h == ws and w == ws:
            return self.attn(x)
        x = x.view(b, h, w, c)
        pad_b = (ws - h % ws) % ws
        pad_r = (ws - w % ws) % ws
        if pad_b or pad_r:
            x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
        ph, pw = h + pad_b, w + pad_r
        nh, nw = ph // ws, pw // ws
        x = x.view(b, nh, ws, nw, ws, c).transpose(2, 3).reshape(b * nh * nw, ws * ws, c)
        x = self.attn(x)
        x = x.view(b, nh, nw, ws, ws, c).transpose(2, 3).reshape(b, ph, pw, c)
        return x[:, :h, :w].reshape(b, n, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = self.input_resolution
        b, n, c = x.shape
        x = x + self._windowed_attention(x)
        x = self.local_conv(x.transpose(1, 2).reshape(b, c, h, w))
        x = x.view(b, c, n).transpose(1, 2)
        return x + self.mlp(x)


class ConvLayer(nn.Module):
    def __init__(self, cfg: TinyViTConfig, downsample: PatchMerging) -> None:
        super().__init__()
        dim = cfg.embed_dims[0]
        self.blocks = nn.ModuleList(
            MBConv(dim, cfg.mbconv_expand_ratio) for _ in range(cfg.depths[0])
        )
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for blk in self.blocks:
            x = blk(x)
        return self.downsample(x)


class BasicLayer(nn.Module):
    def __init__(
        self,
        cfg: TinyViTConfig,
        stage: int,
        resolution: tuple[int, int],
        downsample: PatchMerging | None,
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            TinyViTBlock(cfg, stage, resolution) for _ in range(cfg.depths[stage])
        )
        self.downsample = downsample


def _stage_resolutions(cfg: TinyViTConfig) -> list[int]:
    """Token-grid side per stage: 256, 128, 64, 64 for a 1024 input (last merge has stride 1)."""
    side = cfg.img_size // 4
    sides = []
    for stage in range(len(cfg.depths)):
        sides.append(side)
        if stage < len(cfg.depths) - 2:
            side //= 2
    return sides


class TinyViT(nn.Module):
    def __init__(self, cfg: TinyViTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.img_size = cfg.img_size
        dims = cfg.embed_dims
        sides = _stage_resolutions(cfg)
        last = len(dims) - 1
        self.patch_embed = PatchEmbed(3, dims[0])
        self.layers = nn.ModuleList()
        for stage in range(len(dims)):
            res = (sides[stage], sides[stage])
            down = None
            if stage < last:
                stride = 1 if stage == last - 1 else 2
                down = PatchMerging(res, dims[stage], dims[stage + 1], stride)
            if stage == 0:
                self.layers.append(ConvLayer(cfg, down))
            else:
                self.layers.append(BasicLayer(cfg, stage, res, down))
        # The classification head is unused by SAM but present in mobile_sam.pt.
        self.norm_head = nn.LayerNorm(dims[-1])
        self.head = nn.Linear(dims[-1], cfg.num_classes) if cfg.num_classes else nn.Identity()
        self.neck = nn.Sequential(
            nn.Conv2d(dims[-1], cfg.out_chans, kernel_size=1, bias=False),
            LayerNorm2d(cfg.out_chans),
            nn.Conv2d(cfg.out_chans, cfg.out_chans, kernel_size=3, padding=1, bias=False),
            LayerNorm2d(cfg.out_chans),
        )
        self._side = sides[-1]

    @torch.no_grad()
    def fuse(self) -> None:
        """Fold BatchNorms into convolutions and cache attention biases (after loading)."""
        for module in list(self.modules()):
            for name, child in list(module.named_children()):
                if isinstance(child, Conv2d_BN):
                    setattr(module, name, child.fused())
        for module in self.modules():
            if isinstance(module, Attention):
                module.cache_bias()
        # channels-last convolutions run faster on CPU and make the (B, C, H, W) <-> (B, N, C)
        # reshapes between the attention and convolution parts free
        self.to(memory_format=torch.channels_last)

    @property
    def num_steps(self) -> int:
        """How many times ``forward`` calls ``on_step``: once per block, plus the neck."""
        return sum(len(layer.blocks) for layer in self.layers) + 1

    def forward(self, x: torch.Tensor, on_step: Callable[[], None] | None = None) -> torch.Tensor:
        x = self.patch_embed(x.contiguous(memory_format=torch.channels_last))
        for layer in self.layers:
            for blk in layer.blocks:
                x = blk(x)
                if on_step is not None:
                    on_step()
            if layer.downsample is not None:
                x = layer.downsample(x)
        b, _, c = x.shape
        x = x.view(b, self._side, self._side, c).permute(0, 3, 1, 2)
        x = self.neck(x)
        if on_step is not None:
            on_step()
        return x
