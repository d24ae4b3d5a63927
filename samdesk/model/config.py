"""Architecture descriptions of the SAM family, read from a checkpoint's keys and shapes.

A checkpoint never says which model it is; :func:`samdesk.model.checkpoint.infer_config` derives
one of these from the state dict, and :func:`samdesk.model.sam.build_sam` builds the matching
network. Known shapes get a known name (``vit_b``, ``vit_l``, ``vit_h``, ``tiny_vit``); any other
consistent SAM-format shape set is a fine-tune called ``custom``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ViTConfig:
    """SAM's ViT image encoder (ViTDet backbone with windowed + global attention)."""

    embed_dim: int
    depth: int
    num_heads: int
    global_attn_indexes: tuple[int, ...]
    window_size: int = 14
    img_size: int = 1024
    patch_size: int = 16
    mlp_dim: int = 3072
    out_chans: int = 256
    qkv_bias: bool = True

    @property
    def grid(self) -> int:
        """Side of the token grid (64 for a 1024 input and 16-pixel patches)."""
        return self.img_size // self.patch_size


@dataclass(frozen=True)
class TinyViTConfig:
    """MobileSAM's TinyViT image encoder (conv stage, then three windowed-attention stages)."""

    embed_dims: tuple[int, ...] = (64, 128, 160, 320)
    depths: tuple[int, ...] = (2, 2, 6, 2)
    num_heads: tuple[int, ...] = (2, 4, 5, 10)
    window_sizes: tuple[int, ...] = (7, 7, 14, 7)
    img_size: int = 1024
    mlp_ratio: float = 4.0
    mbconv_expand_ratio: float = 4.0
    local_conv_size: int = 3
    num_classes: int = 1000
    out_chans: int = 256


@dataclass(frozen=True)
class DecoderConfig:
    """Prompt encoder + mask decoder (identical across SAM, MobileSAM and MedSAM)."""

    prompt_embed_dim: int = 256
    mask_in_chans: int = 16
    depth: int = 2
    mlp_dim: int = 2048
    num_heads: int = 8
    attention_downsample_rate: int = 2
    num_multimask_outputs: int = 3
    iou_head_depth: int = 3
    iou_head_hidden_dim: int = 256


@dataclass(frozen=True)
class SamConfig:
    """A whole network: ``arch`` is a known name or ``"custom"``."""

    arch: str
    encoder: ViTConfig | TinyViTConfig
    decoder: DecoderConfig = DecoderConfig()

    @property
    def img_size(self) -> int:
        return self.encoder.img_size

    @property
    def embedding_size(self) -> int:
        """Side of the image embedding grid (64 for every released model)."""
        return self.encoder.img_size // 16


#: The released architectures, by name.
KNOWN_CONFIGS: dict[str, SamConfig] = {
    "vit_b": SamConfig("vit_b", ViTConfig(768, 12, 12, (2, 5, 8, 11), mlp_dim=3072)),
    "vit_l": SamConfig("vit_l", ViTConfig(1024, 24, 16, (5, 11, 17, 23), mlp_dim=4096)),
    "vit_h": SamConfig("vit_h", ViTConfig(1280, 32, 16, (7, 15, 23, 31), mlp_dim=5120)),
    "tiny_vit": SamConfig("tiny_vit", TinyViTConfig()),
}

#: Human-readable names for messages and the app.
DISPLAY_NAMES: dict[str, str] = {
    "vit_b": "SAM ViT-B",
    "vit_l": "SAM ViT-L",
    "vit_h": "SAM ViT-H",
    "tiny_vit": "MobileSAM (TinyViT)",
    "custom": "SAM (custom architecture)",
}


def describe(config: SamConfig) -> str:
    """One line for messages, e.g. ``"ViT-H (1280-dim, 32 blocks)"``."""
    enc = config.encoder
    name = DISPLAY_NAMES.get(config.arch, config.arch)
    if isinstance(enc, ViTConfig):
        return f"{name} ({enc.embed_dim}-dim, {enc.depth} blocks, {enc.num_heads} heads)"
    return f"{name} (TinyViT, stage widths {', '.join(map(str, enc.embed_dims))})"


def name_for(encoder: ViTConfig | TinyViTConfig, decoder: DecoderConfig) -> str:
    """The known name whose shapes equal these, else ``"custom"``."""
    for name, known in KNOWN_CONFIGS.items():
        if known.encoder == encoder and known.decoder == decoder:
            return name
    return "custom"
