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

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from dnagen_jax import tokens
from dnagen_jax.models.matmul import dense


def _probabilities(q: jax.Array, k: jax.Array, start: int) -> jax.Array:
  """Softmax scores of queries start.. over keys 0..: q [b, h, n, d], k [b, h, m, d] -> [b, h, n, m] float32."""
  s = jnp.einsum("bhqd,bhkd->bhqk", q, k).astype(jnp.float32)
  # Static mask: key j is visible to query i when j <= i (numpy, folded at compile time).
  visible = np.arange(k.shape[2])[None, :] <= np.arange(start, start + q.shape[2])[:, None]
  return jax.nn.softmax(jnp.where(visible, s, -jnp.inf), axis=-1)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def _attention_tile(q: jax.Array, k: jax.Array, v: jax.Array, start: int) -> jax.Array:
  """Queries start .. start+n-1 attending to keys 0 .. m-1: q [b, h, n, d], k, v [b, h, m, d] -> [b, h, n, d]."""
  return _attention_tile_fwd(q, k, v, start)[0]  # unused residuals are dropped by XLA


def _attention_tile_fwd(q, k, v, start):
  p = _probabilities(q, k, start)
  o = jnp.einsum("bhqk,bhkd->bhqd", p.astype(v.dtype), v)
  return o, (q, k, v, p, o)


def _attention_tile_bwd(start, res, do):
  # The softmax gradient as flash attention writes it: ds = p * (dp - rowsum(do * o)).
  # rowsum(do * o) runs over head_dim, not over the [n, m] scores (autodiff's
  # sum(p * dp)), which saves one pass over the scores; masked p are exactly
  # 0, so ds needs no mask either.
  del start
  q, k, v, p, o = res
  dv = jnp.einsum("bhqk,bhqd->bhkd", p.astype(do.dtype), do)
  dp = jnp.einsum("bhqd,bhkd->bhqk", do, v).astype(jnp.float32)
  ds = (p * (dp - jnp.sum((do * o).astype(jnp.float32), axis=-1, keepdims=True))).astype(q.dtype)
  return jnp.einsum("bhqk,bhkd->bhqd", ds, k), jnp.einsum("bhqk,bhqd->bhkd", ds, q), dv


_attention_tile.defvjp(_attention_tile_fwd, _attention_tile_bwd)


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
    block = t
  outs = [_attention_tile(q[:, :, start:start + block], k[:, :, :start + block],
                          v[:, :, :start + block], start)
          for start in range(0, t, block)]
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
    qkv = dense(self.qkv, x).reshape(b, seq_len, 3, self.heads, self.head_dim)
    qkv = jnp.transpose(qkv, (2, 0, 3, 1, 4))
    y = causal_attention(qkv[0], qkv[1], qkv[2], self.block)
    return dense(self.out, jnp.transpose(y, (0, 2, 1, 3)).reshape(b * seq_len, self.heads * self.head_dim))


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
    return x + dense(self.fc2, jax.nn.relu(dense(self.fc1, self.ln2(x))))


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
