"""The whole SAM network (image encoder + prompt encoder + mask decoder), built from a config."""

from __future__ import annotations

import torch
from torch import nn

from samdesk.model.config import SamConfig, TinyViTConfig
from samdesk.model.image_encoder import ImageEncoderViT
from samdesk.model.mask_decoder import MaskDecoder
from samdesk.model.prompt_encoder import PromptEncoder
from samdesk.model.tiny_vit import Attention as TinyAttention
from samdesk.model.tiny_vit import TinyViT
from samdesk.model.transformer import TwoWayTransformer

#: SAM's ImageNet pixel statistics (RGB, 0-255 scale); not stored in the checkpoints.
PIXEL_MEAN = (123.675, 116.28, 103.53)
PIXEL_STD = (58.395, 57.12, 57.375)


class Sam(nn.Module):
    """Module tree and parameter names equal segment-anything's ``Sam``."""

    mask_threshold: float = 0.0

    def __init__(self, config: SamConfig) -> None:
        super().__init__()
        self.config = config
        enc = config.encoder
        self.image_encoder: ImageEncoderViT | TinyViT = (
            TinyViT(enc) if isinstance(enc, TinyViTConfig) else ImageEncoderViT(enc)
        )
        dec = config.decoder
        grid = config.embedding_size
        self.prompt_encoder = PromptEncoder(
            embed_dim=dec.prompt_embed_dim,
            image_embedding_size=(grid, grid),
            input_image_size=(config.img_size, config.img_size),
            mask_in_chans=dec.mask_in_chans,
        )
        self.mask_decoder = MaskDecoder(
            transformer_dim=dec.prompt_embed_dim,
            transformer=TwoWayTransformer(
                depth=dec.depth,
                embedding_dim=dec.prompt_embed_dim,
                num_heads=dec.num_heads,
                mlp_dim=dec.mlp_dim,
                attention_downsample_rate=dec.attention_downsample_rate,
            ),
            num_multimask_outputs=dec.num_multimask_outputs,
            iou_head_depth=dec.iou_head_depth,
            iou_head_hidden_dim=dec.iou_head_hidden_dim,
        )
        self.register_buffer("pixel_mean", torch.tensor(PIXEL_MEAN).view(-1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(PIXEL_STD).view(-1, 1, 1), False)

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    def reset_constants(self) -> None:
        """Recreate the tensors that are not in checkpoints (pixel statistics, TinyViT's bias
        index) on the weights' device; needed after building on the meta device."""
        device = self.mask_decoder.iou_token.weight.device
        self.pixel_mean = torch.tensor(PIXEL_MEAN, device=device).view(-1, 1, 1)
        self.pixel_std = torch.tensor(PIXEL_STD, device=device).view(-1, 1, 1)
        for module in self.modules():
            if isinstance(module, TinyAttention):
                module.reset_index()

    def prepare_for_inference(self) -> Sam:
        """eval mode, no gradients, BatchNorms folded (TinyViT), caches cleared. Returns self."""
        self.eval()
        self.requires_grad_(False)
        if isinstance(self.image_encoder, TinyViT):
            self.image_encoder.fuse()
        elif self.device.type == "cuda":
            # GPUs run the bias-folded flash attention well; the blocked CPU path would launch
            # thousands of small kernels (ADR 0011)
            self.image_encoder.set_attention_impl("fused")
        self.prompt_encoder.clear_cache()
        return self


def build_sam(config: SamConfig) -> Sam:
    """An untrained network of the given architecture (load a state dict into it)."""
    return Sam(config)
