"""Windowed / global self-attention with SAM's decomposed relative position bias.

Two interchangeable implementations of the same function:

* :func:`reference_attention` is the official computation: it materialises the full
  (tokens x tokens) attention matrix per head, adds the relative position terms and applies
  softmax. Kept for tests and as the definition of "correct".
* :func:`blocked_attention` computes the same thing in cache-sized pieces: a group of heads
  (windows) or a block of query rows (global attention) at a time, adding the bias in place and
  never holding more than a few MB of attention scores. This is the production path: on a
  2-core AVX-512 CPU it is 7x (windows) to 11x (global) faster than the reference and exact to
  fp32 rounding.
* :func:`fused_attention` folds the relative position bias exactly into the dot product and runs
  ``torch.nn.functional.scaled_dot_product_attention`` (a flash kernel on CPU that never holds
  the whole matrix). With ``rel_h[q, i] = q . Rh[qy, i]`` and ``rel_w[q, j] = q . Rw[qx, j]``::

      q' = [q * scale, rel_h(q), rel_w(q)]       k' = [k, onehot(ky), onehot(kx)]
      q' . k' = scale * q . k + rel_h[q, ky] + rel_w[q, kx]

  which is the official logit, so softmax(q' k'^T) v equals the reference up to rounding. It
  never materialises the scores, but the augmented head dim (64 -> 192 for global attention)
  triples the q.k work; measured slower than :func:`blocked_attention` on CPU, kept for devices
  whose flash kernel wins (CUDA) and as a second independent check in the tests.

Shapes: q, k, v are (B * heads, H * W, head_dim) for a token grid of H x W (a window or the
whole image); the result has the same shape as v.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from samdesk.model.bf16_matmul import bf16_matmuls


def get_rel_pos(q_size: int, k_size: int, rel_pos: torch.Tensor) -> torch.Tensor:
    """Relative position embeddings (q_size, k_size, C) for every query/key offset.

    ``rel_pos`` is (L, C); it is linearly resized when L != 2 * max(q_size, k_size) - 1, exactly
    as segment-anything does.
    """
    max_rel_dist = int(2 * max(q_size, k_size) - 1)
    if rel_pos.shape[0] != max_rel_dist:
        resized = F.interpolate(
            rel_pos.reshape(1, rel_pos.shape[0], -1).permute(0, 2, 1),
            size=max_rel_dist,
            mode="linear",
        )
        resized = resized.reshape(-1, max_rel_dist).permute(1, 0)
    else:
        resized = rel_pos
    q_coords = torch.arange(q_size)[:, None] * max(k_size / q_size, 1.0)
    k_coords = torch.arange(k_size)[None, :] * max(q_size / k_size, 1.0)
    relative_coords = (q_coords - k_coords) + (k_size - 1) * max(q_size / k_size, 1.0)
    return resized[relative_coords.long()]


def _rel_terms(
    q: torch.Tensor, rel_pos_h: torch.Tensor, rel_pos_w: torch.Tensor, size: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """rel_h (B, H, W, H) and rel_w (B, H, W, W): the query's dot products with Rh and Rw."""
    h, w = size
    rh = get_rel_pos(h, h, rel_pos_h).to(q.dtype)
    rw = get_rel_pos(w, w, rel_pos_w).to(q.dtype)
    b, _, dim = q.shape
    r_q = q.reshape(b, h, w, dim)
    rel_h = torch.einsum("bhwc,hkc->bhwk", r_q, rh)
    rel_w = torch.einsum("bhwc,wkc->bhwk", r_q, rw)
    return rel_h, rel_w


def reference_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    scale: float,
    rel_pos: tuple[torch.Tensor, torch.Tensor] | None,
    size: tuple[int, int],
) -> torch.Tensor:
    """The official computation (segment-anything ``Attention.forward``)."""
    attn = (q * scale) @ k.transpose(-2, -1)
    if rel_pos is not None:
        h, w = size
        rel_h, rel_w = _rel_terms(q, rel_pos[0], rel_pos[1], size)
        b = q.shape[0]
        attn = (attn.view(b, h, w, h, w) + rel_h[:, :, :, :, None] + rel_w[:, :, :, None, :]).view(
            b, h * w, h * w
        )
    return attn.softmax(dim=-1) @ v


def _one_hot_keys(size: tuple[int, int], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """(H * W, H + W): for key (y, x) a 1 in column y and a 1 in column H + x."""
    h, w = size
    ys = torch.arange(h, device=device).repeat_interleave(w)
    xs = torch.arange(w, device=device).repeat(h)
    hot = torch.zeros(h * w, h + w, dtype=dtype, device=device)
    hot[torch.arange(h * w, device=device), ys] = 1
    hot[torch.arange(h * w, device=device), h + xs] = 1
    return hot


def fused_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    scale: float,
    rel_pos: tuple[torch.Tensor, torch.Tensor] | None,
    size: tuple[int, int],
) -> torch.Tensor:
    """Same result as :func:`reference_attention`, through scaled_dot_product_attention."""
    if rel_pos is None:
        return F.scaled_dot_product_attention(q[None], k[None], v[None], scale=scale)[0]
    h, w = size
    b, n, _ = q.shape
    rel_h, rel_w = _rel_terms(q, rel_pos[0], rel_pos[1], size)
    q_aug = torch.cat([q * scale, rel_h.reshape(b, n, h), rel_w.reshape(b, n, w)], dim=-1)
    hot = _one_hot_keys(size, k.dtype, k.device).expand(b, n, h + w)
    k_aug = torch.cat([k, hot], dim=-1)
    return F.scaled_dot_product_attention(q_aug[None], k_aug[None], v[None], scale=1.0)[0]


#: Attention scores held at once by :func:`blocked_attention`, in bytes. Measured on a 2-core
#: AVX-512 CPU (2 MB L2 per core) for a ViT-B global block: 1 MB 552 ms, 2 MB 471 ms, 4 MB 428 ms,
#: 8 MB 366 ms, 16 MB 367 ms, 32 MB 415 ms (with the in-place softmax; 447 ms at 4 MB without).
SCORE_BUDGET = 8 * 1024 * 1024


def _softmax_(scores: torch.Tensor) -> torch.Tensor:
    """Softmax over the last axis, in place for float32 (no second scores-sized buffer)."""
    if scores.dtype != torch.float32:  # autocast: keep torch's own precision rules
        return torch.softmax(scores, dim=-1)
    return torch.ops.aten._softmax.out(scores, -1, False, out=scores)


def blocked_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    scale: float,
    rel_pos: tuple[torch.Tensor, torch.Tensor] | None,
    size: tuple[int, int],
    on_chunk: Callable[[], None] | None = None,
    bf16_products: bool = False,
) -> torch.Tensor:
    """Same result as :func:`reference_attention`, a cache-sized block of scores at a time.

    ``on_chunk`` is called after each head of a global (non-windowed) attention, so that a
    long encode can be paused or cancelled in the middle of a block.

    ``bf16_products``: run q.k^T and P.V with bf16 products and float32 results where the CPU
    has AMX-BF16 (:mod:`samdesk.model.bf16_matmul`; about 2e-3 relative error per product,
    the bias and softmax stay float32). One fast section per block of scores, never around
    ``on_chunk``.
    """
    b, n, _ = q.shape
    h, w = size
    if rel_pos is not None:
        with bf16_matmuls(bf16_products):  # the same products every time (ADR 0071)
            rel_h, rel_w = _rel_terms(q, rel_pos[0], rel_pos[1], size)
        bias_h = rel_h.reshape(b, n, h, 1)
        bias_w = rel_w.reshape(b, n, 1, w)
    out = torch.empty_like(v)
    k_t = k.transpose(1, 2)
    rows = max(1, SCORE_BUDGET // (n * q.element_size()))
    group, chunk = (max(1, rows // n), n) if rows >= n else (1, rows)
    buffer = q.new_empty(min(b, group) * min(n, chunk) * n)  # one scores buffer for all blocks
    for b0 in range(0, b, group):
        b1 = min(b, b0 + group)
        for s in range(0, n, chunk):
            e = min(n, s + chunk)
            scores = buffer[: (b1 - b0) * (e - s) * n].view(b1 - b0, e - s, n)
            with bf16_matmuls(bf16_products):  # a few ms: exact work never waits longer
                if rel_pos is not None:
                    biased = scores.view(b1 - b0, e - s, h, w)
                    torch.add(bias_h[b0:b1, s:e], bias_w[b0:b1, s:e], out=biased)
                    scores.baddbmm_(q[b0:b1, s:e], k_t[b0:b1], alpha=scale)
                else:
                    torch.bmm(q[b0:b1, s:e], k_t[b0:b1], out=scores).mul_(scale)
                torch.bmm(_softmax_(scores), v[b0:b1], out=out[b0:b1, s:e])
        if on_chunk is not None and chunk < n:
            on_chunk()
    return out
