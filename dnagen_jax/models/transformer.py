"""A GPT-style causal transformer decoder (Flax NNX).

Pre-layer-norm blocks: x + Attention(LN(x)), then x + MLP(LN(x)); learned
token and position embeddings; ReLU feed-forward; no dropout (as in the study).
Attention is plain einsums with a causal mask (on CPU faster than
`jax.nn.dot_product_attention`), computed block by block so that the masked
upper half of the T x T scores is mostly never computed (`causal_attention`).
Heads may be narrower than d_model / heads (the study's 3 heads over d=256
use 85 dims each).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from dnagen_jax import tokens


def causal_attention(q: jax.Array, k: jax.Array, v: jax.Array, block: int = 0) -> jax.Array:
  """Softmax attention of each position over itself and the past.

  q, k, v [batch, heads, time, head_dim] -> [batch, heads, time, head_dim].
  block > 0 splits the queries into blocks of `block` positions; block i
  attends only to keys 0 .. (i+1)*block - 1, so with n blocks only
  (n+1)/(2n) of the T x T scores are computed (56% at T=1024, block 128),
  and only the diagonal tile needs the mask. block 0 (or T <= block) is
  the plain full-matrix form. Both give the same result to float rounding.
  """
  t = q.shape[2]
  q = q * (1.0 / np.sqrt(q.shape[-1])).astype(q.dtype)  # scale the small q, not the scores
  if block <= 0 or t <= block:
    starts = [0]
    block = t
  else:
    starts = list(range(0, t, block))
  outs = []
  for start in starts:
    stop = min(start + block, t)
    s = jnp.einsum("bhqd,bhkd->bhqk", q[:, :, start:stop], k[:, :, :stop]).astype(jnp.float32)
    # Static mask: key j is visible to query i when j <= i (numpy, folded at compile time).
    visible = np.arange(stop)[None, :] <= np.arange(start, stop)[:, None]
    probs = jax.nn.softmax(jnp.where(visible, s, -jnp.inf), axis=-1).astype(v.dtype)
    outs.append(jnp.einsum("bhqk,bhkd->bhqd", probs, v[:, :, :stop]))
  return outs[0] if len(outs) == 1 else jnp.concatenate(outs, axis=2)


class CausalSelfAttention(nnx.Module):
  """[batch * time, d] -> [batch * time, d], each position sees itself and the past."""

  def __init__(self, d: int, heads: int, head_dim: int, *, rngs: nnx.Rngs, dtype, block: int = 0):
    self.heads, self.head_dim, self.dtype, self.block = heads, head_dim, dtype, block
    self.qkv = nnx.Linear(d, 3 * heads * head_dim, rngs=rngs, dtype=dtype)
    self.out = nnx.Linear(heads * head_dim, d, rngs=rngs, dtype=dtype)

  def __call__(self, x: jax.Array, seq_len: int) -> jax.Array:
    b = x.shape[0] // seq_len
    # One transpose of the small q/k/v to head-major [3, b, heads, t, head_dim].
    qkv = self.qkv(x).reshape(b, seq_len, 3, self.heads, self.head_dim)
    qkv = jnp.transpose(qkv, (2, 0, 3, 1, 4))
    y = causal_attention(qkv[0], qkv[1], qkv[2], self.block)
    return self.out(jnp.transpose(y, (0, 2, 1, 3)).reshape(b * seq_len, self.heads * self.head_dim))


class Block(nnx.Module):
  """Pre-LN decoder block on flattened activations: [batch * time, d] -> [batch * time, d]."""

  def __init__(self, cfg, head_dim: int, *, rngs: nnx.Rngs, dtype):
    d = cfg.embed_dim
    self.ln1 = nnx.LayerNorm(d, rngs=rngs)
    self.attn = CausalSelfAttention(d, cfg.num_heads, head_dim, rngs=rngs, dtype=dtype,
                                    block=cfg.attention_block)
    self.ln2 = nnx.LayerNorm(d, rngs=rngs)
    self.fc1 = nnx.Linear(d, cfg.mlp_dim, rngs=rngs, dtype=dtype)
    self.fc2 = nnx.Linear(cfg.mlp_dim, d, rngs=rngs, dtype=dtype)

  def __call__(self, x: jax.Array, seq_len: int) -> jax.Array:
    x = x + self.attn(self.ln1(x), seq_len)
    return x + self.fc2(jax.nn.relu(self.fc1(self.ln2(x))))


def _apply_block(block: Block, x: jax.Array, seq_len: int) -> jax.Array:
  return block(x, seq_len)


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
    b, t = inputs.shape
    x = self.embed(inputs) + self.pos(jnp.arange(t))[None]
    # Blocks work on [b * t, d]: every dense layer is then a 2-D matmul, whose
    # weight gradient x^T @ dy XLA:CPU forms without transposed copies of
    # x or dy (autodiff of the 3-D form made one per layer).
    x = x.reshape(b * t, -1)
    # remat: keep only each block's input; recompute its insides in the backward pass.
    apply = nnx.remat(_apply_block, static_argnums=2) if self.remat else _apply_block
    for block in self.blocks:
      x = apply(block, x, t)
    return self.head(self.ln_f(x).astype(jnp.float32)).reshape(b, t, -1)
