"""A GPT-style causal transformer decoder (Flax NNX).

Pre-layer-norm blocks: x + Attention(LN(x)), then x + MLP(LN(x)); learned
token and position embeddings; ReLU feed-forward; no dropout (as in the study).
Attention is a plain einsum with a causal mask: on CPU it was faster than
`jax.nn.dot_product_attention`. Heads may be narrower than d_model / heads
(the study's 3 heads over d=256 use 85 dims each).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from dnagen_jax import tokens


class CausalSelfAttention(nnx.Module):
  """[batch, time, d] -> [batch, time, d], each position sees itself and the past."""

  def __init__(self, d: int, heads: int, head_dim: int, *, rngs: nnx.Rngs, dtype):
    self.heads, self.head_dim, self.dtype = heads, head_dim, dtype
    self.qkv = nnx.Linear(d, 3 * heads * head_dim, rngs=rngs, dtype=dtype)
    self.out = nnx.Linear(heads * head_dim, d, rngs=rngs, dtype=dtype)

  def __call__(self, x: jax.Array) -> jax.Array:
    b, t, _ = x.shape
    q, k, v = jnp.split(self.qkv(x).reshape(b, t, 3 * self.heads, self.head_dim), 3, axis=2)
    scores = jnp.einsum("bqhd,bkhd->bhqk", q, k) / jnp.sqrt(self.head_dim).astype(x.dtype)
    causal = jnp.tril(jnp.ones((t, t), bool))
    scores = jnp.where(causal, scores.astype(jnp.float32), -1e30)
    probs = jax.nn.softmax(scores, axis=-1).astype(v.dtype)
    y = jnp.einsum("bhqk,bkhd->bqhd", probs, v).reshape(b, t, self.heads * self.head_dim)
    return self.out(y)


class Block(nnx.Module):
  def __init__(self, cfg, head_dim: int, *, rngs: nnx.Rngs, dtype):
    d = cfg.embed_dim
    self.ln1 = nnx.LayerNorm(d, rngs=rngs)
    self.attn = CausalSelfAttention(d, cfg.num_heads, head_dim, rngs=rngs, dtype=dtype)
    self.ln2 = nnx.LayerNorm(d, rngs=rngs)
    self.fc1 = nnx.Linear(d, cfg.mlp_dim, rngs=rngs, dtype=dtype)
    self.fc2 = nnx.Linear(cfg.mlp_dim, d, rngs=rngs, dtype=dtype)

  def __call__(self, x: jax.Array) -> jax.Array:
    x = x + self.attn(self.ln1(x))
    return x + self.fc2(jax.nn.relu(self.fc1(self.ln2(x))))


def _apply_block(block: Block, x: jax.Array) -> jax.Array:
  return block(x)


class TransformerLM(nnx.Module):
  """__call__: inputs [batch, time] int32 -> logits [batch, time, vocab] float32."""

  def __init__(self, cfg, *, rngs: nnx.Rngs):
    dtype = jnp.dtype(cfg.dtype)
    head_dim = cfg.head_dim or cfg.embed_dim // cfg.num_heads
    self.embed = nnx.Embed(tokens.VOCAB_SIZE, cfg.embed_dim, rngs=rngs)
    self.pos = nnx.Embed(cfg.max_len, cfg.embed_dim, rngs=rngs)
    self.remat = bool(cfg.remat)
    self.blocks = nnx.List([Block(cfg, head_dim, rngs=rngs, dtype=dtype)
                            for _ in range(cfg.num_layers)])
    self.ln_f = nnx.LayerNorm(cfg.embed_dim, rngs=rngs)
    self.head = nnx.Linear(cfg.embed_dim, tokens.VOCAB_SIZE, rngs=rngs)

  def __call__(self, inputs: jax.Array) -> jax.Array:
    x = self.embed(inputs) + self.pos(jnp.arange(inputs.shape[1]))[None]
    # remat: keep only each block's input; recompute its insides in the backward pass.
    apply = nnx.remat(_apply_block) if self.remat else _apply_block
    for block in self.blocks:
      x = apply(block, x)
    return self.head(self.ln_f(x).astype(jnp.float32))
