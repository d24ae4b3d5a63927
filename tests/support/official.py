"""The official implementations (segment-anything, MobileSAM) as references for tests/benches.

Both packages import a few helpers from torchvision and timm, which samdesk does not depend on.
This module installs tiny stand-ins for exactly those names before importing them:

* ``torchvision.transforms.functional.to_pil_image`` / ``resize``: behave as torchvision's do on
  numpy arrays and PIL images (``Image.fromarray`` with the same mode rules; PIL bilinear resize
  to (h, w)), which is all ``ResizeLongestSide.apply_image`` uses.
* ``torchvision.ops.boxes.batched_nms`` / ``box_area``: plain-torch versions (the automatic mask
  generator imports them; predictor tests never call them).
* ``timm.models.layers.DropPath`` / ``to_2tuple`` / ``trunc_normal_`` and
  ``timm.models.registry.register_model``: only used while building TinyViT.

A stand-in is installed only when the real package is missing, and only while the two official
packages are imported: they bind the names at import time, so the stand-ins are then removed from
``sys.modules`` again and never seen by other code in the same process (an ``import torchvision``
elsewhere fails as it would without this module; ``torch.onnx`` and others probe for it).
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
import types
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from samdesk.model.checkpoint import infer_config, read_state_dict
from samdesk.model.config import TinyViTConfig, ViTConfig


def to_pil_image(pic: Any, mode: str | None = None) -> Image.Image:
    """torchvision's to_pil_image for uint8 numpy arrays (H, W), (H, W, 1|3|4)."""
    if isinstance(pic, Image.Image):
        return pic
    arr = np.asarray(pic)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3:
        raise ValueError(f"pic should be 2/3 dimensional. Got {arr.ndim} dimensions.")
    if arr.shape[2] == 1:
        arr = arr[:, :, 0]
        mode = (
            mode
            or {np.uint8: "L", np.int16: "I;16", np.int32: "I", np.float32: "F"}[arr.dtype.type]
        )
    elif mode is None:
        if arr.dtype != np.uint8:
            raise TypeError(f"Input type {arr.dtype} is not supported")
        mode = {3: "RGB", 4: "RGBA", 2: "LA"}[arr.shape[2]]
    return Image.fromarray(arr, mode=mode)


def resize(
    img: Image.Image,
    size: list[int] | tuple[int, int],
    interpolation: Any = None,
    max_size: int | None = None,
    antialias: bool | None = True,
) -> Image.Image:
    """torchvision's resize on a PIL image with an explicit (h, w): PIL bilinear."""
    h, w = size
    return img.resize((w, h), Image.BILINEAR)


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def _iou(box: torch.Tensor, others: torch.Tensor) -> torch.Tensor:
    lt = torch.max(box[:2], others[:, :2])
    rb = torch.min(box[2:], others[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(dim=1)
    return inter / (box_area(box[None]) + box_area(others) - inter)


def batched_nms(
    boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor, iou_threshold: float
) -> torch.Tensor:
    """Greedy NMS per category, indices sorted by decreasing score (torchvision semantics)."""
    keep: list[int] = []
    order = torch.argsort(scores, descending=True)
    suppressed = torch.zeros(len(boxes), dtype=torch.bool)
    for i in order.tolist():
        if suppressed[i]:
            continue
        keep.append(i)
        same = (idxs == idxs[i]) & ~suppressed
        same[i] = False
        cand = torch.nonzero(same).flatten()
        if len(cand):
            suppressed[cand[_iou(boxes[i], boxes[cand]) > iou_threshold]] = True
    return torch.tensor(keep, dtype=torch.long)


class DropPath(nn.Module):
    """timm's DropPath at inference: identity."""

    def __init__(self, drop_prob: float | None = None) -> None:
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def to_2tuple(x: Any) -> tuple[Any, Any]:
    return tuple(x) if isinstance(x, list | tuple) else (x, x)


def trunc_normal_(tensor: torch.Tensor, std: float = 1.0, **_: Any) -> torch.Tensor:
    return nn.init.trunc_normal_(tensor, std=std)


def register_model(fn: Any) -> Any:
    return fn


def _module(name: str, **attrs: Any) -> types.ModuleType:
    mod = types.ModuleType(name)
    mod.__dict__.update(attrs)
    return mod


def _stand_in_modules() -> dict[str, types.ModuleType]:
    """The stand-in modules for whichever of torchvision / timm is not installed."""
    mods: dict[str, types.ModuleType] = {}
    if "torchvision" not in sys.modules and importlib.util.find_spec("torchvision") is None:
        functional = _module(
            "torchvision.transforms.functional", resize=resize, to_pil_image=to_pil_image
        )
        boxes = _module("torchvision.ops.boxes", batched_nms=batched_nms, box_area=box_area)
        mods["torchvision"] = _module("torchvision")
        mods["torchvision.transforms"] = _module("torchvision.transforms", functional=functional)
        mods["torchvision.transforms.functional"] = functional
        mods["torchvision.ops"] = _module("torchvision.ops", boxes=boxes)
        mods["torchvision.ops.boxes"] = boxes
    if "timm" not in sys.modules and importlib.util.find_spec("timm") is None:
        layers = _module(
            "timm.models.layers",
            DropPath=DropPath,
            to_2tuple=to_2tuple,
            trunc_normal_=trunc_normal_,
        )
        registry = _module("timm.models.registry", register_model=register_model)
        mods["timm"] = _module("timm")
        mods["timm.models"] = _module("timm.models", layers=layers, registry=registry)
        mods["timm.models.layers"] = layers
        mods["timm.models.registry"] = registry
    return mods


@contextlib.contextmanager
def stand_ins() -> Iterator[None]:
    """``import torchvision`` / ``import timm`` find the stand-ins inside the block only."""
    mods = _stand_in_modules()
    sys.modules.update(mods)
    try:
        yield
    finally:
        for name in mods:
            if sys.modules.get(name) is mods[name]:
                del sys.modules[name]


with stand_ins():
    import mobile_sam
    import segment_anything
    from mobile_sam.modeling.tiny_vit_sam import TinyViT as OfficialTinyViT


def _decoder_parts(pkg: Any, cfg: Any) -> dict[str, Any]:
    dec = cfg.decoder
    m = pkg.modeling
    grid = cfg.embedding_size
    return {
        "prompt_encoder": m.PromptEncoder(
            embed_dim=dec.prompt_embed_dim,
            image_embedding_size=(grid, grid),
            input_image_size=(cfg.img_size, cfg.img_size),
            mask_in_chans=dec.mask_in_chans,
        ),
        "mask_decoder": m.MaskDecoder(
            num_multimask_outputs=dec.num_multimask_outputs,
            transformer=m.TwoWayTransformer(
                depth=dec.depth,
                embedding_dim=dec.prompt_embed_dim,
                mlp_dim=dec.mlp_dim,
                num_heads=dec.num_heads,
                attention_downsample_rate=dec.attention_downsample_rate,
            ),
            transformer_dim=dec.prompt_embed_dim,
            iou_head_depth=dec.iou_head_depth,
            iou_head_hidden_dim=dec.iou_head_hidden_dim,
        ),
    }


def official_model(path: str | Path) -> nn.Module:
    """The official ``Sam`` (segment-anything, or mobile_sam for TinyViT) with the file's
    weights, built with the architecture read from the file, in eval mode on the CPU."""
    sd = read_state_dict(path)
    cfg = infer_config(sd, str(path))
    enc = cfg.encoder
    if isinstance(enc, TinyViTConfig):
        encoder: nn.Module = OfficialTinyViT(
            img_size=enc.img_size,
            in_chans=3,
            num_classes=enc.num_classes,
            embed_dims=list(enc.embed_dims),
            depths=list(enc.depths),
            num_heads=list(enc.num_heads),
            window_sizes=list(enc.window_sizes),
            mlp_ratio=enc.mlp_ratio,
            drop_rate=0.0,
            drop_path_rate=0.0,
            mbconv_expand_ratio=enc.mbconv_expand_ratio,
            local_conv_size=enc.local_conv_size,
            layer_lr_decay=0.8,
        )
        pkg: Any = mobile_sam
    else:
        assert isinstance(enc, ViTConfig)
        encoder = segment_anything.modeling.ImageEncoderViT(
            depth=enc.depth,
            embed_dim=enc.embed_dim,
            img_size=enc.img_size,
            mlp_ratio=enc.mlp_dim / enc.embed_dim,
            norm_layer=partial(nn.LayerNorm, eps=1e-6),
            num_heads=enc.num_heads,
            patch_size=enc.patch_size,
            qkv_bias=enc.qkv_bias,
            use_rel_pos=True,
            global_attn_indexes=list(enc.global_attn_indexes),
            window_size=enc.window_size,
            out_chans=enc.out_chans,
        )
        pkg = segment_anything
    model = pkg.modeling.Sam(image_encoder=encoder, **_decoder_parts(pkg, cfg))
    model.load_state_dict(sd, strict=True)
    # As MobileSAM's README does: eval() after loading recomputes TinyViT's cached biases.
    return model.eval()


def official_predictor(path: str | Path) -> Any:
    """``SamPredictor`` of the matching official package on the file's weights."""
    model = official_model(path)
    pkg = mobile_sam if isinstance(model.image_encoder, OfficialTinyViT) else segment_anything
    return pkg.SamPredictor(model)
