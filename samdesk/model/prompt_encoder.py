"""SAM's prompt encoder (points, boxes, low-resolution masks), official parameter names.

Coordinates given to it are in the model's input frame: x, y in pixels of the resized image
(longest side 1024), not yet shifted to pixel centres.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from samdesk.model.common import LayerNorm2d


class PositionEmbeddingRandom(nn.Module):
    """Fourier features of (x, y) with a fixed random Gaussian matrix (a buffer in the file)."""

    def __init__(self, num_pos_feats: int) -> None:
        super().__init__()
        self.register_buffer("positional_encoding_gaussian_matrix", torch.randn(2, num_pos_feats))

    def _pe_encoding(self, coords: torch.Tensor) -> torch.Tensor:
        """coords (..., 2) in [0, 1] -> (..., 2 * num_pos_feats)."""
        coords = 2 * coords - 1
        coords = coords @ self.positional_encoding_gaussian_matrix
        coords = 2 * math.pi * coords
        return torch.cat([torch.sin(coords), torch.cos(coords)], dim=-1)

    def forward(self, size: tuple[int, int]) -> torch.Tensor:
        """Encoding of every cell centre of an (h, w) grid: (C, h, w)."""
        h, w = size
        device = self.positional_encoding_gaussian_matrix.device
        grid = torch.ones((h, w), device=device, dtype=torch.float32)
        y_embed = (grid.cumsum(dim=0) - 0.5) / h
        x_embed = (grid.cumsum(dim=1) - 0.5) / w
        return self._pe_encoding(torch.stack([x_embed, y_embed], dim=-1)).permute(2, 0, 1)

    def forward_with_coords(
        self, coords_input: torch.Tensor, image_size: tuple[int, int]
    ) -> torch.Tensor:
        """(B, N, 2) pixel coordinates in an (h, w) image -> (B, N, C)."""
        coords = coords_input.clone()
        coords[:, :, 0] = coords[:, :, 0] / image_size[1]
        coords[:, :, 1] = coords[:, :, 1] / image_size[0]
        return self._pe_encoding(coords.to(torch.float))


class PromptEncoder(nn.Module):
    def __init__(
        self,
        embed_dim: int,
        image_embedding_size: tuple[int, int],
        input_image_size: tuple[int, int],
        mask_in_chans: int,
    ) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.input_image_size = input_image_size
        self.image_embedding_size = image_embedding_size
        self.pe_layer = PositionEmbeddingRandom(embed_dim // 2)
        self.num_point_embeddings = 4  # negative point, positive point, 2 box corners
        self.point_embeddings = nn.ModuleList(
            nn.Embedding(1, embed_dim) for _ in range(self.num_point_embeddings)
        )
        self.not_a_point_embed = nn.Embedding(1, embed_dim)
        self.mask_input_size = (4 * image_embedding_size[0], 4 * image_embedding_size[1])
        self.mask_downscaling = nn.Sequential(
            nn.Conv2d(1, mask_in_chans // 4, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans // 4),
            nn.GELU(),
            nn.Conv2d(mask_in_chans // 4, mask_in_chans, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans),
            nn.GELU(),
            nn.Conv2d(mask_in_chans, embed_dim, kernel_size=1),
        )
        self.no_mask_embed = nn.Embedding(1, embed_dim)
        self._dense_pe: torch.Tensor | None = None

    def get_dense_pe(self) -> torch.Tensor:
        """Positional encoding of the embedding grid, (1, C, 64, 64); computed once and cached
        (call :meth:`clear_cache` after changing the buffer or the device)."""
        pe = self._dense_pe
        device = self.positional_encoding_device
        if pe is None or pe.device != device:
            pe = self.pe_layer(self.image_embedding_size).unsqueeze(0)
            self._dense_pe = pe
        return pe

    def clear_cache(self) -> None:
        self._dense_pe = None

    @property
    def positional_encoding_device(self) -> torch.device:
        return self.pe_layer.positional_encoding_gaussian_matrix.device

    def _embed_points(self, points: torch.Tensor, labels: torch.Tensor, pad: bool) -> torch.Tensor:
        points = points + 0.5  # pixel centre
        if pad:
            padding_point = torch.zeros((points.shape[0], 1, 2), device=points.device)
            padding_label = -torch.ones((labels.shape[0], 1), device=labels.device)
            points = torch.cat([points, padding_point], dim=1)
            labels = torch.cat([labels, padding_label], dim=1)
        emb = self.pe_layer.forward_with_coords(points, self.input_image_size)
        # the official masked in-place updates, as three selects (no boolean indexing: that is
        # a nonzero + index_put per line, most of this function's time in a click)
        label = labels[..., None]
        zero = emb.new_zeros(())
        emb = torch.where(label == -1, self.not_a_point_embed.weight, emb)
        emb = emb + torch.where(label == 0, self.point_embeddings[0].weight, zero)
        return emb + torch.where(label == 1, self.point_embeddings[1].weight, zero)

    def _embed_boxes(self, boxes: torch.Tensor) -> torch.Tensor:
        coords = (boxes + 0.5).reshape(-1, 2, 2)
        emb = self.pe_layer.forward_with_coords(coords, self.input_image_size)
        emb[:, 0, :] += self.point_embeddings[2].weight
        emb[:, 1, :] += self.point_embeddings[3].weight
        return emb

    def mask_features(self, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """A mask prompt (B, 1, 256, 256) up to the last 1x1 convolution of
        ``mask_downscaling``: (features (B, h*w, k) token-major, weight (C, k), bias (C,)), so
        that the dense embedding is ``features @ weight.T + bias`` per token."""
        *body, last = self.mask_downscaling
        feats = masks
        for layer in body:
            feats = layer(feats)
        feats = feats.flatten(2).transpose(1, 2).contiguous()
        weight = last.weight.view(last.out_channels, last.in_channels)
        bias = last.bias if last.bias is not None else weight.new_zeros(last.out_channels)
        return feats, weight, bias

    def forward(
        self,
        points: tuple[torch.Tensor, torch.Tensor] | None,
        boxes: torch.Tensor | None,
        masks: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Sparse (B, N, C) embeddings of points/boxes and dense (B, C, 64, 64) of the mask.

        points: ((B, N, 2) float, (B, N) int labels); boxes (B, 4); masks (B, 1, 256, 256).
        """
        if points is not None:
            bs = points[0].shape[0]
        elif boxes is not None:
            bs = boxes.shape[0]
        elif masks is not None:
            bs = masks.shape[0]
        else:
            bs = 1
        device = self.point_embeddings[0].weight.device
        sparse = torch.empty((bs, 0, self.embed_dim), device=device)
        if points is not None:
            sparse = torch.cat([sparse, self._embed_points(*points, pad=boxes is None)], dim=1)
        if boxes is not None:
            sparse = torch.cat([sparse, self._embed_boxes(boxes)], dim=1)
        if masks is not None:
            dense = self.mask_downscaling(masks)
        else:
            dense = self.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(
                bs, -1, self.image_embedding_size[0], self.image_embedding_size[1]
            )
        return sparse, dense
