"""SAM's ViT image encoder (ViT-B/L/H and fine-tunes such as MedSAM), official parameter names.

Input (B, 3, S, S) float32 normalised pixels (S = ``img_size``, 1024); output the image
embedding (B, out_chans, S/16, S/16), (1, 256, 64, 64) for every released model.

Attention runs through :func:`samdesk.model.attention.blocked_attention` (same result as the
official code, several times faster on CPU). Setting ``attention_impl`` to ``"reference"`` or
``"fused"`` on the encoder selects the other implementations (tests compare all three).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from samdesk.model.attention import blocked_attention, fused_attention, reference_attention
from samdesk.model.bf16_matmul import bf16_matmuls
from samdesk.model.common import LayerNorm2d, MLPBlock
from samdesk.model.config import ViTConfig
from samdesk.model.int8 import ROWS, Int8Block, QLinear

#: Called after every step of the encoder (used for progress, pausing and cancellation).
StepCallback = Callable[[], None]

#: Bytes of MLP hidden activations computed at once (about the L2 cache of two cores).
MLP_CHUNK_BYTES = 2 * 1024 * 1024

_ATTENTION = {
    "blocked": blocked_attention,
    "reference": reference_attention,
    "fused": fused_attention,
}


class Workspace:
    """Scratch tensors reused across the blocks of one forward pass (one per call, so
    concurrent encodes in different threads never share one)."""

    def __init__(self) -> None:
        self._buffers: dict[tuple[str, tuple[int, ...]], torch.Tensor] = {}

    def get(self, name: str, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        key = (name, shape)
        buf = self._buffers.get(key)
        if buf is None or buf.dtype != like.dtype or buf.device != like.device:
            buf = torch.empty(shape, dtype=like.dtype, device=like.device)
            self._buffers[key] = buf
        return buf


class PatchEmbed(nn.Module):
    """16x16 patches -> tokens; (B, 3, S, S) -> (B, S/16, S/16, C)."""

    def __init__(self, patch_size: int, in_chans: int, embed_dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).permute(0, 2, 3, 1)


class Attention(nn.Module):
    """Multi-head self-attention with decomposed relative position bias (B, H, W, C) -> same."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool, input_size: tuple[int, int]):
        super().__init__()
        self.num_heads = num_heads
        head_dim = dim // num_heads
        self.scale = head_dim**-0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.rel_pos_h = nn.Parameter(torch.zeros(2 * input_size[0] - 1, head_dim))
        self.rel_pos_w = nn.Parameter(torch.zeros(2 * input_size[1] - 1, head_dim))
        self.impl = "blocked"

    def forward(self, x: torch.Tensor, on_chunk: StepCallback | None = None) -> torch.Tensor:
        return self.proj(self.attend(x, on_chunk))

    def attend(
        self,
        x: torch.Tensor,
        on_chunk: StepCallback | None = None,
        workspace: Workspace | None = None,
        bf16_products: bool = False,
    ) -> torch.Tensor:
        """Attention without the output projection: (B, H, W, C) -> (B, H, W, C).

        ``workspace`` lends the two large qkv buffers (about 40 MB each for ViT-B) so that
        they are allocated once per image instead of once per block: fresh allocations that
        large are page-faulted in by the OS every time, which costs as much as the work.
        """
        b, h, w, c = x.shape
        heads = self.num_heads
        if workspace is None or torch.is_autocast_enabled(x.device.type):
            with bf16_matmuls(bf16_products):
                qkv = self.qkv(x).reshape(b, h * w, 3, heads, -1).permute(2, 0, 3, 1, 4)
            q, k, v = qkv.reshape(3, b * heads, h * w, -1).unbind(0)
        else:
            flat = workspace.get("qkv", (b * h * w, 3 * c), x)
            with bf16_matmuls(bf16_products):
                if self.qkv.bias is not None:
                    torch.addmm(self.qkv.bias, x.reshape(-1, c), self.qkv.weight.t(), out=flat)
                else:
                    torch.mm(x.reshape(-1, c), self.qkv.weight.t(), out=flat)
            split = workspace.get("qkv_heads", (3, b * heads, h * w, c // heads), x)
            split.view(3, b, heads, h * w, -1).copy_(
                flat.view(b, h * w, 3, heads, -1).permute(2, 0, 3, 1, 4)
            )
            q, k, v = split.unbind(0)
        rel_pos = (self.rel_pos_h, self.rel_pos_w)
        if self.impl == "blocked":
            out = blocked_attention(q, k, v, self.scale, rel_pos, (h, w), on_chunk, bf16_products)
        else:
            out = _ATTENTION[self.impl](q, k, v, self.scale, rel_pos, (h, w))
        return out.view(b, self.num_heads, h, w, -1).permute(0, 2, 3, 1, 4).reshape(b, h, w, -1)


def window_partition(x: torch.Tensor, window: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """(B, H, W, C) -> (B * windows, window, window, C), zero-padding H, W up to a multiple."""
    b, h, w, c = x.shape
    pad_h = (window - h % window) % window
    pad_w = (window - w % window) % window
    if pad_h or pad_w:
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    hp, wp = h + pad_h, w + pad_w
    x = x.view(b, hp // window, window, wp // window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window, window, c), (hp, wp)


def window_unpartition(
    windows: torch.Tensor, window: int, pad_hw: tuple[int, int], hw: tuple[int, int]
) -> torch.Tensor:
    """Inverse of :func:`window_partition`, dropping the padding: -> (B, H, W, C)."""
    hp, wp = pad_hw
    h, w = hw
    b = windows.shape[0] // (hp * wp // window // window)
    x = windows.view(b, hp // window, wp // window, window, window, -1)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(b, hp, wp, -1)
    return x[:, :h, :w, :] if (hp > h or wp > w) else x


class Block(nn.Module):
    """Pre-norm transformer block; windowed attention when ``window_size`` > 0, else global."""

    def __init__(self, cfg: ViTConfig, window_size: int) -> None:
        super().__init__()
        dim = cfg.embed_dim
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        size = (cfg.grid, cfg.grid) if window_size == 0 else (window_size, window_size)
        self.attn = Attention(dim, cfg.num_heads, cfg.qkv_bias, size)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = MLPBlock(dim, cfg.mlp_dim)
        self.window_size = window_size

    def forward(
        self,
        x: torch.Tensor,
        on_chunk: StepCallback | None = None,
        workspace: Workspace | None = None,
        int8: Int8Block | None = None,
        bf16_products: bool = False,
    ) -> torch.Tensor:
        """(B, H, W, C) -> same. Updates ``x`` in place (the encoder owns its activations).

        ``int8``: run the four linears in int8 (:mod:`samdesk.model.int8`); attention, norms
        and the residual stream stay float32. ``bf16_products``: the block's float32 matmuls
        (attention's two products; with ``int8`` None also the four linears) with bf16 inputs
        and float32 results where the CPU has AMX-BF16 (:mod:`samdesk.model.bf16_matmul`), in
        short fast sections.
        """
        if int8 is not None:
            return _forward_int8(self, x, on_chunk, workspace, int8, bf16_products)
        h = self.norm1(x)
        if self.window_size > 0:
            height, width = h.shape[1], h.shape[2]
            h, pad_hw = window_partition(h, self.window_size)
            # windows: too short to report heads
            h = self.attn.attend(h, None, workspace, bf16_products)
            # the projection is per token, so it runs after dropping the padding tokens
            h = window_unpartition(h, self.window_size, pad_hw, (height, width))
        else:
            h = self.attn.attend(h, on_chunk, workspace, bf16_products)
        c = x.shape[-1]
        proj = self.attn.proj
        with bf16_matmuls(bf16_products):
            if not torch.is_autocast_enabled(x.device.type):  # x += proj(h) inside the product
                x.view(-1, c).addmm_(h.reshape(-1, c), proj.weight.t()).add_(proj.bias)
            else:  # autocast: the product comes back in the lower precision
                x.add_(proj(h).to(x.dtype))
        if on_chunk is not None:  # a step between attention and MLP as well
            on_chunk()
        return self._mlp_residual_(x, bf16_products)

    def _mlp_residual_(self, x: torch.Tensor, bf16_products: bool = False) -> torch.Tensor:
        """x += mlp(norm2(x)), a block of tokens at a time so the 4x wider hidden activations
        stay in the CPU cache instead of making several passes over main memory; one fast
        section per block of tokens with ``bf16_products``."""
        c = x.shape[-1]
        flat = x.view(-1, c)
        lin1, lin2, norm = self.mlp.lin1, self.mlp.lin2, self.norm2
        rows = max(64, MLP_CHUNK_BYTES // (lin1.out_features * x.element_size()))
        autocast = torch.is_autocast_enabled(x.device.type)
        for s in range(0, flat.shape[0], rows):
            xs = flat[s : s + rows]
            with bf16_matmuls(bf16_products):
                hidden = F.gelu(lin1(F.layer_norm(xs, (c,), norm.weight, norm.bias, norm.eps)))
                if not autocast:
                    xs.addmm_(hidden, lin2.weight.t()).add_(lin2.bias)
                else:  # autocast: the product comes back in the lower precision
                    xs.add_(lin2(hidden).to(xs.dtype))
        return x


def _forward_int8(
    block: Block,
    x: torch.Tensor,
    on_chunk: StepCallback | None,
    workspace: Workspace | None,
    int8: Int8Block,
    bf16_products: bool,
) -> torch.Tensor:
    """:meth:`Block.forward` with the four linears in int8; (B, H, W, C) -> same, in place.

    Windows are read straight out of the token grid (no padded, partitioned copy) and the
    attention output is put back in token order with one copy, so the int8 path moves about
    four fewer (H, W, C) tensors through memory per windowed block than the float path.
    """
    b, height, width, c = x.shape
    attn = block.attn
    heads, ws = attn.num_heads, block.window_size
    h = F.layer_norm(x, (c,), int8.norm1[0], int8.norm1[1], int8.eps1)  # smoothed norm
    if ws > 0:
        nh, nw = -(-height // ws), -(-width // ws)
        groups = [
            h[i, y * ws : (y + 1) * ws, z * ws : (z + 1) * ws]
            for i in range(b)
            for y in range(nh)
            for z in range(nw)
        ]
        size = (ws, ws)
    else:
        groups = list(h)
        size = (height, width)
    q, k, v = _qkv_int8(int8.qkv, groups, size, heads, workspace).unbind(0)
    rel_pos = (attn.rel_pos_h, attn.rel_pos_w)
    step = on_chunk if ws == 0 else None
    out = blocked_attention(q, k, v, attn.scale, rel_pos, size, step, bf16_products)
    hd = c // heads
    if ws > 0:  # (windows * heads, ws * ws, hd) -> token grid, padding cropped
        shape = (b, nh * ws, nw * ws, c)
        merged = workspace.get("merged", shape, x) if workspace is not None else x.new_empty(shape)
        merged.view(b, nh, ws, nw, ws, heads, hd).copy_(
            out.view(b, nh, nw, heads, ws, ws, hd).permute(0, 1, 4, 2, 5, 3, 6)
        )
        merged = merged[:, :height, :width]
    else:
        merged = out.view(b, heads, height, width, hd).permute(0, 2, 3, 1, 4).reshape(x.shape)
    step = max(1, ROWS // width)  # whole rows of tokens, about ROWS tokens per product
    for i in range(b):
        for r in range(0, height, step):
            int8.proj.add_rows_(x[i, r : r + step].view(-1, c), merged[i, r : r + step])
    if on_chunk is not None:
        on_chunk()
    return _mlp_residual_int8_(x, int8)


def _qkv_int8(
    qkv: QLinear,
    groups: list[torch.Tensor],
    size: tuple[int, int],
    heads: int,
    workspace: Workspace | None,
) -> torch.Tensor:
    """int8 qkv projection of token groups (windows or whole images), each an (h, w, C) view
    of up to ``size`` tokens -> (3, groups * heads, size[0] * size[1], C / heads) float32.

    A window at the image edge that is smaller than ``size`` is padded with zero tokens, as the
    official code pads the normed tokens (their keys and values are the bias).
    """
    like = groups[0]
    c = like.shape[-1]
    n = size[0] * size[1]
    shape = (3, len(groups) * heads, n, c // heads)
    split = (
        workspace.get("qkv_heads", shape, like) if workspace is not None else like.new_empty(shape)
    )
    dest = split.view(3, len(groups), heads, n, -1)
    bias = None if qkv.bias is None else qkv.bias.view(3, heads, 1, -1)
    for g, tokens in enumerate(groups):
        if tokens.shape[:2] != size:
            tile = tokens.new_zeros(*size, c)
            tile[: tokens.shape[0], : tokens.shape[1]] = tokens
            tokens = tile
        rows = tokens.reshape(n, c) if n > ROWS else tokens  # a whole image: a view
        for s in range(0, n, ROWS):
            e = min(n, s + ROWS)
            acc, row_scale = qkv.product(rows[s:e] if n > ROWS else rows)
            acc_heads = acc.view(e - s, 3, heads, -1).permute(1, 2, 0, 3)
            scale = row_scale.view(1, 1, e - s, 1)
            if bias is None:
                torch.mul(acc_heads, scale, out=dest[:, g, :, s:e])
            else:
                torch.addcmul(bias, acc_heads, scale, out=dest[:, g, :, s:e])
    return split


def _mlp_residual_int8_(x: torch.Tensor, int8: Int8Block) -> torch.Tensor:
    """x += mlp(norm2(x)) with int8 linears, :data:`ROWS` tokens at a time."""
    c = x.shape[-1]
    flat = x.view(-1, c)
    weight, bias = int8.norm2
    for s in range(0, flat.shape[0], ROWS):
        xs = flat[s : s + ROWS]
        acc, row_scale = int8.lin1.product(F.layer_norm(xs, (c,), weight, bias, int8.eps2))
        if int8.lin1.bias is not None:
            torch.addcmul(int8.lin1.bias, acc, row_scale, out=acc)
        else:
            acc.mul_(row_scale)
        int8.lin2.add_to_(xs, torch.ops.aten.gelu_(acc))
    return x


class ImageEncoderViT(nn.Module):
    """The ViT encoder: patch embedding, ``depth`` blocks, neck to ``out_chans`` channels."""

    def __init__(self, cfg: ViTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.img_size = cfg.img_size
        self.patch_embed = PatchEmbed(cfg.patch_size, 3, cfg.embed_dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, cfg.grid, cfg.grid, cfg.embed_dim))
        self.blocks = nn.ModuleList(
            Block(cfg, 0 if i in cfg.global_attn_indexes else cfg.window_size)
            for i in range(cfg.depth)
        )
        self.neck = nn.Sequential(
            nn.Conv2d(cfg.embed_dim, cfg.out_chans, kernel_size=1, bias=False),
            LayerNorm2d(cfg.out_chans),
            nn.Conv2d(cfg.out_chans, cfg.out_chans, kernel_size=3, padding=1, bias=False),
            LayerNorm2d(cfg.out_chans),
        )

    def set_attention_impl(self, impl: str) -> None:
        """``"blocked"`` (default), ``"reference"`` (official) or ``"fused"`` (SDPA)."""
        if impl not in _ATTENTION:
            raise ValueError(f"unknown attention implementation {impl!r}")
        for blk in self.blocks:
            blk.attn.impl = impl

    @property
    def num_steps(self) -> int:
        """How many times ``forward`` calls ``on_step``: two per block (after attention, after
        the MLP), one per head of a global block, and one for the neck."""
        heads = self.cfg.num_heads
        return sum(2 + (heads if blk.window_size == 0 else 0) for blk in self.blocks) + 1

    def forward(
        self,
        x: torch.Tensor,
        on_step: StepCallback | None = None,
        int8: list[Int8Block] | None = None,
        bf16_products: bool = False,
    ) -> torch.Tensor:
        """(B, 3, S, S) normalised pixels -> (B, out_chans, S/16, S/16).

        ``int8``: the blocks' int8 linears from :func:`samdesk.model.int8.quantize_vit_blocks`.
        ``bf16_products``: the blocks' float32 matmuls with bf16 inputs and float32 results where
        the CPU has AMX-BF16 (:mod:`samdesk.model.bf16_matmul`); the int8 and bf16 precisions
        use it there.
        """
        if int8 is not None and len(int8) != len(self.blocks):
            raise ValueError("int8 weights are for a different network")
        # the residual stream stays float32 (also under bf16 autocast)
        x = self.patch_embed(x).float().add_(self.pos_embed).contiguous()
        workspace = Workspace()
        for i, blk in enumerate(self.blocks):
            x = blk(x, on_step, workspace, None if int8 is None else int8[i], bf16_products)
            if on_step is not None:
                on_step()
        x = self.neck(x.permute(0, 3, 1, 2))
        if on_step is not None:
            on_step()
        return x
