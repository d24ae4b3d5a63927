"""SAM's mask decoder, official parameter names.

Given the image embedding (1, 256, 64, 64), its positional encoding and the prompt embeddings,
predicts low-resolution mask logits (B, C, 256, 256) and their predicted IoU (B, C), where C is
3 (``multimask_output``) or 1. Only the hypernetwork heads of the masks returned are evaluated.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from samdesk.model.common import LayerNorm2d
from samdesk.model.transformer import TwoWayTransformer

#: A mask prompt before the prompt encoder's last 1x1 convolution: features (B, h*w, k)
#: token-major, that convolution's weight (C, k) and bias (C,).
MaskFeatures = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


class MLP(nn.Module):
    """``num_layers`` Linear layers with ReLU in between (official name ``layers``)."""

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int, num_layers: int) -> None:
        super().__init__()
        self.num_layers = num_layers
        h = [hidden_dim] * (num_layers - 1)
        self.layers = nn.ModuleList(
            nn.Linear(n, k) for n, k in zip([input_dim, *h], [*h, output_dim], strict=True)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = F.relu(layer(x)) if i < self.num_layers - 1 else layer(x)
        return x


class MaskDecoder(nn.Module):
    def __init__(
        self,
        *,
        transformer_dim: int,
        transformer: TwoWayTransformer,
        num_multimask_outputs: int = 3,
        iou_head_depth: int = 3,
        iou_head_hidden_dim: int = 256,
    ) -> None:
        super().__init__()
        self.transformer_dim = transformer_dim
        self.transformer = transformer
        self.num_multimask_outputs = num_multimask_outputs
        self.iou_token = nn.Embedding(1, transformer_dim)
        self.num_mask_tokens = num_multimask_outputs + 1
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, transformer_dim)
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose2d(transformer_dim, transformer_dim // 4, kernel_size=2, stride=2),
            LayerNorm2d(transformer_dim // 4),
            nn.GELU(),
            nn.ConvTranspose2d(transformer_dim // 4, transformer_dim // 8, kernel_size=2, stride=2),
            nn.GELU(),
        )
        self.output_hypernetworks_mlps = nn.ModuleList(
            MLP(transformer_dim, transformer_dim, transformer_dim // 8, 3)
            for _ in range(self.num_mask_tokens)
        )
        self.iou_prediction_head = MLP(
            transformer_dim, iou_head_hidden_dim, self.num_mask_tokens, iou_head_depth
        )

    def forward(
        self,
        image_embeddings: torch.Tensor,
        image_pe: torch.Tensor,
        sparse_prompt_embeddings: torch.Tensor,
        dense_prompt_embeddings: torch.Tensor | None,
        multimask_output: bool,
        image_cache: dict[str, torch.Tensor] | None = None,
        dense_cached: bool = True,
        mask_features: MaskFeatures | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Low-res logits (B, C, 256, 256) and predicted IoU (B, C); C = 3 or 1.

        ``image_cache``: a dict the caller keeps for one image embedding (and positional
        encoding). The token-major copies of both are kept in it; when ``dense_cached`` (the
        dense prompt is the same on every call: no mask input) also the image plus dense prompt
        and the first transformer block's projections of it; and, once a mask prompt comes,
        those projections of the image alone.

        ``mask_features``: a mask prompt as :meth:`PromptEncoder.mask_features` gives it, used
        instead of ``dense_prompt_embeddings``: its dense embedding is ``features @ W.T + b``
        per token, a rank-16 change, so the first block's projections of the image plus mask
        are the image's cached ones plus a 16-wide product each (ADR 0018).
        """
        first, last = (1, self.num_mask_tokens) if multimask_output else (0, 1)
        output_tokens = torch.cat([self.iou_token.weight, self.mask_tokens.weight], dim=0)
        output_tokens = output_tokens.unsqueeze(0).expand(sparse_prompt_embeddings.size(0), -1, -1)
        tokens = torch.cat((output_tokens, sparse_prompt_embeddings), dim=1)

        n = tokens.shape[0]
        h, w = image_embeddings.shape[-2:]
        cache = image_cache if image_cache is not None else {}
        if "image_tokens" not in cache:  # token-major (B, h*w, C): strided reads are slow
            cache["image_tokens"] = image_embeddings.flatten(2).transpose(1, 2).contiguous()
            cache["pe_tokens"] = image_pe.flatten(2).transpose(1, 2).contiguous()
        image_tokens, pos_src = cache["image_tokens"], cache["pe_tokens"]
        if n > 1:
            image_tokens = torch.repeat_interleave(image_tokens, n, dim=0)
            pos_src = torch.repeat_interleave(pos_src, n, dim=0)
        first_block = self.transformer.layers[0]
        proj: dict[str, torch.Tensor] | None = None
        if mask_features is not None:
            feats, weight, bias = mask_features  # (B, N, k), (C, k), (C,)
            src = torch.baddbmm(image_tokens + bias, feats, weight.t().expand(n, -1, -1))
            if image_cache is not None and n == 1:
                if "base_t2i_k" not in cache:
                    base = first_block.image_projections(image_tokens, pos_src)
                    cache.update({f"base_{name}": value for name, value in base.items()})
                proj = {}
                for name, linear in first_block.projection_weights().items():
                    folded = linear.weight @ weight  # (internal, k)
                    shift = cache[f"base_{name}"] + linear.weight @ bias
                    proj[name] = torch.baddbmm(shift, feats, folded.t()[None])
            own_keys = True
        elif image_cache is not None and dense_cached and n == 1:
            if "src" not in cache:
                cache["src"] = torch.add(image_tokens, dense_prompt_embeddings.flatten(2).mT)
                cache.update(first_block.image_projections(cache["src"], pos_src))
            src = cache["src"]
            proj = {name: cache[name] for name in ("t2i_k", "t2i_v", "i2t_q")}
            own_keys = False
        else:
            src = torch.add(image_tokens, dense_prompt_embeddings.flatten(2).transpose(1, 2))
            own_keys = True

        hs, src = self.transformer(src, pos_src, tokens, proj, own_keys)
        iou_token_out = hs[:, 0, :]
        mask_tokens_out = hs[:, 1 : 1 + self.num_mask_tokens, :]

        hyper_in = torch.stack(
            [
                self.output_hypernetworks_mlps[i](mask_tokens_out[:, i, :])
                for i in range(first, last)
            ],
            dim=1,
        )
        masks = self._upscale_and_project(src, hyper_in, h, w)
        iou_pred = self.iou_prediction_head(iou_token_out)[:, first:last]
        return masks, iou_pred

    def _upscale_and_project(
        self, src: torch.Tensor, hyper_in: torch.Tensor, h: int, w: int
    ) -> torch.Tensor:
        """``output_upscaling`` then the hypernetwork product, as matrix products.

        src: image tokens (B, h*w, C); hyper_in (B, M, C/8) -> masks (B, M, 4h, 4w).

        Each 2x2 stride-2 transposed convolution maps every input pixel to its own 2x2 output
        block, so it is a matrix product per pixel, and LayerNorm2d/GELU act per pixel. Pixels
        are therefore processed in cache-sized groups and kept in "unshuffled" order
        (i, j, di, dj, ei, ej); they are put in image order once, on the M-channel result. Same
        result as the official ConvTranspose2d -> LayerNorm2d -> GELU -> ConvTranspose2d ->
        GELU -> matmul chain.
        """
        up1, norm, _, up2, _ = self.output_upscaling
        b = src.shape[0]
        m = hyper_in.shape[1]
        w1, b1 = _pointwise_weights(up1)
        w2, b2 = _pointwise_weights(up2)
        c1, c2 = up1.out_channels, up2.out_channels
        out = src.new_empty(b, m, h * w * 16)  # mask-major: the reordering below is cheaper
        step = min(UPSCALE_PIXELS, h * w)
        first = src.new_empty(step, 4 * c1)  # scratch reused by every group
        second = src.new_empty(step * 4, 4 * c2)
        for i in range(b):
            for s in range(0, h * w, step):
                e = min(h * w, s + step)
                n = e - s
                x = torch.addmm(b1, src[i, s:e], w1, out=first[:n]).view(-1, c1)
                x = torch.ops.aten.gelu_(F.layer_norm(x, (c1,), norm.weight, norm.bias, norm.eps))
                y = torch.addmm(b2, x, w2, out=second[: 4 * n]).view(-1, c2)
                torch.mm(hyper_in[i], torch.ops.aten.gelu_(y).t(), out=out[i, :, 16 * s : 16 * e])
        # (i, j, di, dj, ei, ej) -> image order (i, di, ei, j, dj, ej) in two steps whose inner
        # runs are contiguous (one 8-d permute took 2.7x as long)
        step1 = out.view(b * m, h, w, 2, 2, 4).permute(0, 1, 3, 2, 4, 5).contiguous()
        masks = step1.view(b * m, h, 2, w, 2, 2, 2).permute(0, 1, 2, 5, 3, 4, 6)
        return masks.reshape(b, m, 4 * h, 4 * w)


#: Image-embedding pixels upscaled per group: 1024 keeps a group's activations (1 MB and 2 MB)
#: in a 2 MB L2 cache; measured 8 ms per click against 14 ms for one group of all 4096.
UPSCALE_PIXELS = 1024


def _pointwise_weights(conv: nn.ConvTranspose2d) -> tuple[torch.Tensor, torch.Tensor]:
    """A kernel-2 stride-2 ConvTranspose2d as (Cin, 4*Cout) weights and a (4*Cout,) bias, the
    outputs of one input pixel ordered (di, dj, channel)."""
    weight = conv.weight  # (Cin, Cout, 2, 2)
    cin, cout = weight.shape[:2]
    bias = conv.bias if conv.bias is not None else weight.new_zeros(cout)
    return weight.permute(0, 2, 3, 1).reshape(cin, 4 * cout), bias.repeat(4)
