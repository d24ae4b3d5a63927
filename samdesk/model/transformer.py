"""SAM's two-way transformer (mask decoder core), official parameter names.

Tokens (B, Nt, C) attend to the image tokens (B, N, C) (N = 64 * 64) and the image attends back
to the tokens. The math equals the official ``softmax(q k^T / sqrt(d)) v`` per head.

The prompt tokens are few (Nt = 5-8) and the image tokens many, so the attentions between them
are rearranged (exactly, up to float rounding) to never project the 4096 image tokens to the
internal width (ADR 0017):

* tokens -> image: the image keys' projection is folded into the queries,
  ``(q Wk_h) . x`` instead of ``q . (x Wk_h^T)`` (the key bias adds a constant per query row,
  which softmax ignores), and the value projection is applied after the weighted sum,
  ``(P x) Wv_h^T + bv`` (the rows of P sum to 1);
* image -> tokens: the image queries' projection is folded into the token keys,
  ``x (Wq_h^T k_h^T) + bq_h k_h^T``, and the output projection into the token values,
  ``P (v_h Wo_h^T + bo / heads)``, so the 4096-row products are 256 x (heads * Nt).

That is 2 x 4096 x 256 x 56 multiply-adds per attention instead of 2 x 4096 x 256 x 128 plus the
attention itself.
"""

from __future__ import annotations

import torch
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

    def tokens_to_image(
        self, tokens: Tensor, image_k: Tensor, image_v: Tensor, image_k_pe: Tensor | None = None
    ) -> Tensor:
        """``self(tokens, image_k + image_k_pe, image_v)`` for few tokens (B, Nt, C) and many
        image tokens (B, N, C), without projecting the image tokens (nor adding the positional
        encoding to them: its scores are a second product). -> (B, Nt, C)."""
        b, nt, c = tokens.shape
        heads = self.num_heads
        d = self.internal_dim // heads
        q = self.q_proj(tokens).view(b, nt, heads, d).transpose(1, 2)  # (B, H, Nt, d)
        folded = torch.matmul(q * d**-0.5, self.k_proj.weight.view(heads, d, c))  # (B,H,Nt,C)
        folded = folded.view(b, heads * nt, c)
        scores = torch.matmul(folded, image_k.transpose(1, 2))
        if image_k_pe is not None:
            scores.baddbmm_(folded, image_k_pe.transpose(1, 2).expand(b, c, -1))
        probs = torch.softmax(scores, dim=-1)  # (B, H * Nt, N)
        mixed = torch.matmul(probs, image_v).view(b, heads, nt, c)
        out = torch.matmul(mixed, self.v_proj.weight.view(heads, d, c).transpose(1, 2))
        out = out.add_(self.v_proj.bias.view(heads, 1, d)).transpose(1, 2)
        return self.out_proj(out.reshape(b, nt, self.internal_dim))

    def image_to_tokens(
        self,
        residual: Tensor,
        image_q: Tensor,
        tokens_k: Tensor,
        tokens_v: Tensor,
        projected: bool = False,
        image_q_pe: Tensor | None = None,
        in_place: bool = False,
    ) -> Tensor:
        """``residual + self(image_q, tokens_k, tokens_v)`` (B, N, C) for many image tokens and
        few prompt tokens (the residual add is part of the last product). ``image_q`` is
        (B, N, C) (plus ``image_q_pe``, whose scores are a second product), or (B, N,
        internal_dim) already through ``q_proj`` when ``projected``. ``in_place``: accumulate
        into ``residual`` itself (it must not be needed afterwards)."""
        b, nt, c = tokens_k.shape
        heads = self.num_heads
        d = self.internal_dim // heads
        k = self.k_proj(tokens_k).mul_(d**-0.5).view(b, nt, heads, d).permute(0, 2, 3, 1)
        v = self.v_proj(tokens_v).view(b, nt, heads, d).transpose(1, 2)  # (B, H, Nt, d)
        # scores are computed transposed, (B, H * Nt, N): softmax over a token's few keys is then
        # a reduction over rows of 4096 contiguous values (over a last axis of Nt = 7 it was
        # measured 17x slower)
        if projected:  # block-diagonal: head h's d columns meet only head h's keys
            fold = k.new_zeros(b, heads, nt, heads, d)
            fold[:, torch.arange(heads), :, torch.arange(heads)] = k.permute(1, 0, 3, 2)
            fold = fold.view(b, heads * nt, heads * d)
            scores = torch.matmul(fold, image_q.transpose(1, 2))
        else:
            weight_q = self.q_proj.weight.view(heads, d, c)
            fold = torch.matmul(k.transpose(2, 3), weight_q).view(b, heads * nt, c)
            bias = torch.matmul(k.transpose(2, 3), self.q_proj.bias.view(heads, d, 1))
            scores = torch.baddbmm(bias.view(b, heads * nt, 1), fold, image_q.transpose(1, 2))
            if image_q_pe is not None:
                scores.baddbmm_(fold, image_q_pe.transpose(1, 2).expand(b, c, -1))
        n = image_q.shape[1]
        probs = torch.softmax(scores.view(b, heads, nt, n), dim=2)  # k carries the 1/sqrt(d)
        weight_o = self.out_proj.weight.view(c, heads, d).permute(1, 2, 0)  # (H, d, C)
        values = torch.matmul(v, weight_o).add_(self.out_proj.bias / heads)  # (B, H, Nt, C)
        probs_t = probs.view(b, heads * nt, n).transpose(1, 2)
        if in_place:
            return residual.baddbmm_(probs_t, values.view(b, heads * nt, c))
        return torch.baddbmm(residual, probs_t, values.view(b, heads * nt, c))


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

    def projection_weights(self) -> dict[str, nn.Linear]:
        """The linear layer behind each entry of :meth:`image_projections`."""
        return {
            "t2i_k": self.cross_attn_token_to_image.k_proj,
            "t2i_v": self.cross_attn_token_to_image.v_proj,
            "i2t_q": self.cross_attn_image_to_token.q_proj,
        }

    def forward(
        self,
        queries: Tensor,
        keys: Tensor,
        query_pe: Tensor,
        key_pe: Tensor,
        image_proj: dict[str, Tensor] | None = None,
        own_keys: bool = False,
    ) -> tuple[Tensor, Tensor]:
        """``image_proj``: :meth:`image_projections` of ``keys``, if the caller has them.
        ``own_keys``: ``keys`` may be updated in place (not an image the caller keeps)."""
        if self.skip_first_layer_pe:
            queries = self.self_attn(q=queries, k=queries, v=queries)
        else:
            q = queries + query_pe
            queries = queries + self.self_attn(q=q, k=q, v=queries)
        queries = self.norm1(queries)

        t2i = self.cross_attn_token_to_image
        if image_proj is not None:  # projections of this image cached by the caller
            attn = t2i.attend(
                t2i.q_proj(queries + query_pe), image_proj["t2i_k"], image_proj["t2i_v"]
            )
        else:
            keys_pe = keys + key_pe  # one pass, shared by both attentions (measured faster than
            # a second product with the positional encoding in each)
            attn = t2i.tokens_to_image(queries + query_pe, keys_pe, keys)
        queries = self.norm2(queries + attn)
        queries = self.norm3(queries + self.mlp(queries))

        i2t = self.cross_attn_image_to_token
        q = queries + query_pe
        if image_proj is not None:
            updated = i2t.image_to_tokens(
                keys, image_proj["i2t_q"], q, queries, True, in_place=own_keys
            )
        else:
            updated = i2t.image_to_tokens(keys, keys_pe, q, queries, in_place=own_keys)
        keys = self.norm4(updated)
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
        image_tokens: Tensor,
        image_pe: Tensor,
        point_embedding: Tensor,
        first_projections: dict[str, Tensor] | None = None,
        own_keys: bool = False,
    ) -> tuple[Tensor, Tensor]:
        """image_tokens, image_pe (B, h*w, C) token-major (the official code takes (B, C, h, w)
        and flattens it); point_embedding (B, N, C).

        ``first_projections``: the first block's :meth:`TwoWayAttentionBlock.image_projections`
        of ``image_tokens``, if the caller keeps them (they do not depend on the prompt);
        without them that block folds the projections into the prompt tokens. ``own_keys``:
        ``image_tokens`` may be updated in place. Returns the tokens (B, N, C) and image tokens
        (B, h*w, C).
        """
        queries, keys = point_embedding, image_tokens
        for i, layer in enumerate(self.layers):
            proj = first_projections if i == 0 else None
            own = own_keys or i > 0  # later blocks get the previous block's fresh output
            queries, keys = layer(queries, keys, point_embedding, image_pe, proj, own)
        q = queries + point_embedding
        attn = self.final_attn_token_to_image.tokens_to_image(q, keys + image_pe, keys)
        queries = self.norm_final_attn(queries + attn)
        return queries, keys
