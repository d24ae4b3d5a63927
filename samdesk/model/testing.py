"""Seeded random SAM-family networks saved in the official checkpoint layout.

For tests, benchmarks and demos on machines without the real weights (which are hundreds of MB
and not redistributable everywhere). The files load with segment-anything / mobile_sam as they
are, so the official code can be run on the same weights.

Initialisation (documented because tests rely on it): every Linear/Conv weight is drawn from
N(0, 1/fan_in) (so activations keep unit scale through the depth), biases from N(0, 0.02²),
norm weights 1 + N(0, 0.1²), embeddings and the positional Gaussian matrix from N(0, 1), the
relative position tables from N(0, 0.1²) (the official init is zero, which would leave that code
path untested) and TinyViT's attention biases from N(0, 0.5²). BatchNorm statistics are random
(mean N(0, 0.1²), var U(0.5, 1.5)) so that folding them is exercised. With zero-mean weights the
mask logits change sign across the image, so masks at threshold 0 are neither all on nor all
off (about half of the pixels are on).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch
from torch import nn

from samdesk.model.common import LayerNorm2d
from samdesk.model.config import KNOWN_CONFIGS, SamConfig, ViTConfig
from samdesk.model.image_encoder import Attention as ViTAttention
from samdesk.model.sam import build_sam
from samdesk.model.tiny_vit import Attention as TinyAttention

#: A SAM-format network small enough for fast tests: a 64-wide, 4-block ViT with the real
#: 1024-pixel input, 64x64x256 embedding and the full-size prompt encoder and mask decoder.
SMALL_CONFIG = SamConfig(
    "custom", ViTConfig(embed_dim=64, depth=4, num_heads=2, global_attn_indexes=(1, 3), mlp_dim=256)
)

ARCHS: dict[str, SamConfig] = {**KNOWN_CONFIGS, "small": SMALL_CONFIG}


def _normal(t: torch.Tensor, gen: torch.Generator, std: float, mean: float = 0.0) -> None:
    t.copy_(torch.randn(t.shape, generator=gen) * std + mean)


@torch.no_grad()
def _init(model: nn.Module, gen: torch.Generator) -> None:
    for module in model.modules():
        if isinstance(module, nn.Linear | nn.Conv2d | nn.ConvTranspose2d):
            w = module.weight
            fan_in = w.shape[1] * math.prod(w.shape[2:])
            if isinstance(module, nn.ConvTranspose2d):
                fan_in = w.shape[0]
            _normal(w, gen, 1.0 / math.sqrt(fan_in))
            if module.bias is not None:
                _normal(module.bias, gen, 0.02)
        elif isinstance(module, nn.LayerNorm | LayerNorm2d | nn.BatchNorm2d):
            _normal(module.weight, gen, 0.1, 1.0)
            _normal(module.bias, gen, 0.02)
            if isinstance(module, nn.BatchNorm2d):
                _normal(module.running_mean, gen, 0.1)
                module.running_var.copy_(torch.rand(module.running_var.shape, generator=gen) + 0.5)
        elif isinstance(module, nn.Embedding):
            _normal(module.weight, gen, 1.0)
        elif isinstance(module, ViTAttention):
            _normal(module.rel_pos_h, gen, 0.1)
            _normal(module.rel_pos_w, gen, 0.1)
        elif isinstance(module, TinyAttention):
            _normal(module.attention_biases, gen, 0.5)
    for name, param in model.named_parameters():
        if name.endswith("pos_embed"):
            _normal(param, gen, 0.02)
    for name, buf in model.named_buffers():
        if name.endswith("positional_encoding_gaussian_matrix"):
            _normal(buf, gen, 1.0)


def random_sam_state_dict(config: SamConfig, seed: int = 0) -> dict[str, torch.Tensor]:
    """A seeded random state dict of ``config`` in the official key layout (CPU, float32)."""
    gen = torch.Generator().manual_seed(seed)
    model = build_sam(config)
    _init(model, gen)
    return {k: v.contiguous() for k, v in model.state_dict().items()}


def save_random_checkpoint(
    path: str | os.PathLike[str], arch: str = "vit_b", seed: int = 0
) -> Path:
    """Write a random ``arch`` network (``vit_b``, ``vit_l``, ``vit_h``, ``tiny_vit`` or
    ``small``) to ``path`` as the official files are written (``torch.save`` of the state
    dict). The file appears complete or not at all. Returns the path."""
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}; choose one of {', '.join(ARCHS)}")
    target = Path(path)
    tmp = target.with_name(target.name + ".part")
    torch.save(random_sam_state_dict(ARCHS[arch], seed), tmp)
    os.replace(tmp, target)
    return target
