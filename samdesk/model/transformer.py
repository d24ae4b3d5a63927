"""SAM's two-way transformer (mask decoder core), official parameter names.

Tokens (B, N, C) attend to the image (B, C, 64, 64) and the image attends back to the tokens.
Attention runs through ``scaled_dot_product_attention``; the math equals the official
``softmax(q k^T / sqrt(d)) v``.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from samdesk.model.common import MLPBlock


class Attention(nn.Module):
    """Multi-head attention that may project to a smaller internal width (downsample_rate)."""

    def __init__(self, embedding_dim: int, num_heads: int, downsample_rate: int = 1) -> None:
        super().__init__()
        self.embedding_dim = embedding_dim
        self.internal_dim = embedding_dim // downsample_rate
        self.num_heads = num_heads
        self.q_proj = nn.Linear(embedding_dim, self.internal_dim)
        self.k_proj = nn.Linear(embedding_dim, self.internal_dim)
        self.v_proj = nn.Linear(embedding_dim, self.internal_dim)
        self.out_proj = nn.Linear(self.internal_dim, embedding_dim)

    def _separate_heads(self, x: Tensor) -> Tensor:
        b, n, c = x.shape
        return x.reshape(b, n, self.num_heads, c // self.num_heads).transpose(1, 2)

    def forward(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        return self.attend(self.q_proj(q), self.k_proj(k), self.v_proj(v))

    def attend(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        """Attention on already projected q, k, v (B, N, internal_dim); -> (B, Nq, C)."""
        q = self._separate_heads(q)
        k = self._separate_heads(k)
        v = self._separate_heads(v)
        out = F.scaled_dot_product_attention(q, k, v)
        b, _, n, _ = out.shape
        return self.out_proj(out.transpose(1, 2).reshape(b, n, self.internal_dim))


class TwoWayAttentionBlock(nn.Module):
    def __init__(
        self,
        embedding_dim: int,
        num_heads: int,
        mlp_dim: int,
        attention_downsample_rate: int,
        skip_first_layer_pe: bool,
    ) -> None:
        super().__init__()
        self.self_attn = Attention(embedding_dim, num_heads)
        self.norm1 = nn.LayerNorm(embedding_dim)
        self.cross_attn_token_to_image = Attention(
            embedding_dim, num_heads, attention_downsample_rate
        )
        self.norm2 = nn.LayerNorm(embedding_dim)
        self.mlp = MLPBlock(embedding_dim, mlp_dim, nn.ReLU)
        self.norm3 = nn.LayerNorm(embedding_dim)
        self.norm4 = nn.LayerNorm(embedding_dim)
        self.cross_attn_image_to_token = Attention(
            embedding_dim, num_heads, attention_downsample_rate
        )
        self.skip_first_layer_pe = skip_first_layer_pe

    def image_projections(self, keys: Tensor, key_pe: Tensor) -> dict[str, Tensor]:
        """The three projections of the image tokens this block makes before it updates them.

        They do not depend on the prompt, so the first block's can be computed once per image
        (see :class:`TwoWayTransformer`) instead of on every click.
        """
        k = keys + key_pe
        return {
            "t2i_k": self.cross_attn_token_to_image.k_proj(k),
            "t2i_v": self.cross_attn_token_to_image.v_proj(keys),
            "i2t_q": self.cross_attn_image_to_token.q_proj(k),
        }

    def forward(
        self,
        queries: Tensor,
        keys: Tensor,
        query_pe: Tensor,
        key_pe: Tensor,
        image_proj: dict[str, Tensor] | None = None,
    ) -> tuple[Tensor, Tensor]:
        if self.skip_first_layer_pe:
            queries = self.self_attn(q=queries, k=queries, v=queries)
        else:
            q = queries + query_pe
            queries = queries + self.self_attn(q=q, k=q, v=queries)
        queries = self.norm1(queries)

        proj = image_proj if image_proj is not None else self.image_projections(keys, key_pe)
        t2i = self.cross_attn_token_to_image
        attn = t2i.attend(t2i.q_proj(queries + query_pe), proj["t2i_k"], proj["t2i_v"])
        queries = self.norm2(queries + attn)
        queries = self.norm3(queries + self.mlp(queries))

        i2t = self.cross_attn_image_to_token
        q = queries + query_pe
        attn = i2t.attend(proj["i2t_q"], i2t.k_proj(q), i2t.v_proj(queries))
        keys = self.norm4(keys + attn)
        return queries, keys


class TwoWayTransformer(nn.Module):
    def __init__(
        self,
        depth: int,
        embedding_dim: int,
        num_heads: int,
        mlp_dim: int,
        attention_downsample_rate: int = 2,
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            TwoWayAttentionBlock(
                embedding_dim, num_heads, mlp_dim, attention_downsample_rate, i == 0
            )
            for i in range(depth)
        )
        self.final_attn_token_to_image = Attention(
            embedding_dim, num_heads, attention_downsample_rate
        )
        self.norm_final_attn = nn.LayerNorm(embedding_dim)

    def forward(
        self,
        image_embedding: Tensor,
        image_pe: Tensor,
        point_embedding: Tensor,
        image_cache: dict[str, Tensor] | None = None,
    ) -> tuple[Tensor, Tensor]:
        """image_embedding, image_pe (B, C, h, w); point_embedding (B, N, C).

        ``image_cache``: a dict owned by the caller for one (image embedding, dense prompt)
        pair; the first block's prompt-independent projections are stored in it on the first
        call and reused afterwards. Returns the tokens (B, N, C) and image tokens (B, h*w, C).
        """
        image_embedding = image_embedding.flatten(2).permute(0, 2, 1)
        image_pe = image_pe.flatten(2).permute(0, 2, 1)
        queries, keys = point_embedding, image_embedding
        for i, layer in enumerate(self.layers):
            proj = None
            if i == 0 and image_cache is not None:
                if "t2i_k" not in image_cache:
                    image_cache.update(layer.image_projections(keys, image_pe))
                proj = image_cache
            queries, keys = layer(queries, keys, point_embedding, image_pe, proj)
        q = queries + point_embedding
        k = keys + image_pe
        queries = self.norm_final_attn(queries + self.final_attn_token_to_image(q=q, k=k, v=keys))
        return queries, keys
