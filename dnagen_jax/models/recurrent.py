"""Scanned LSTM and GRU language models (Flax NNX).

Each layer runs the way fused RNN kernels do:
  1. the input projection of all time steps as one matrix product,
     x [batch, time, in] @ W_ih [in, G*H] -> [batch, time, G*H];
  2. a `jax.lax.scan` over time that does only h @ W_hh [H, G*H] and the gates.
Gate order and equations follow PyTorch's `nn.LSTM` / `nn.GRU`, so the two can
be compared weight for weight (G = 4 for LSTM: i, f, g, o; G = 3 for GRU: r, z, n).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from dnagen_jax import tokens


def lstm_cell(carry, gx, w_hh):
  """One LSTM step. carry (h, c) [batch, H]; gx [batch, 4H] precomputed x @ W_ih + b."""
  h, c = carry
  gates = gx + h @ w_hh
  i, f, g, o = jnp.split(gates, 4, axis=-1)
  c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
  h = jax.nn.sigmoid(o) * jnp.tanh(c)
  return (h, c), h


def gru_cell(h, gx, w_hh, b_hn):
  """One GRU step. h [batch, H]; gx [batch, 3H] precomputed x @ W_ih + b."""
  gh = h @ w_hh
  xr, xz, xn = jnp.split(gx, 3, axis=-1)
  hr, hz, hn = jnp.split(gh, 3, axis=-1)
  r = jax.nn.sigmoid(xr + hr)
  z = jax.nn.sigmoid(xz + hz)
  n = jnp.tanh(xn + r * (hn + b_hn))
  h = (1.0 - z) * n + z * h
  return h, h


class RecurrentLayer(nnx.Module):
  """One LSTM or GRU layer: [batch, time, in] -> [batch, time, hidden]."""

  def __init__(self, kind: str, in_dim: int, hidden: int, *, rngs: nnx.Rngs, dtype=jnp.float32):
    gates = {"lstm": 4, "gru": 3}[kind]
    self.kind, self.hidden, self.dtype = kind, hidden, dtype
    scale = 1.0 / hidden ** 0.5  # PyTorch's U(-1/sqrt(H), 1/sqrt(H)) init
    init = nnx.initializers.uniform(2 * scale)
    self.w_ih = nnx.Param(init(rngs.params(), (in_dim, gates * hidden)) - scale)
    self.w_hh = nnx.Param(init(rngs.params(), (hidden, gates * hidden)) - scale)
    self.b = nnx.Param(jnp.zeros((gates * hidden,)))
    if kind == "gru":
      self.b_hn = nnx.Param(jnp.zeros((hidden,)))

  def __call__(self, x: jax.Array) -> jax.Array:
    batch = x.shape[0]
    w_ih, w_hh = self.w_ih[...].astype(self.dtype), self.w_hh[...].astype(self.dtype)
    gx = x.astype(self.dtype) @ w_ih + self.b[...].astype(self.dtype)  # [B, T, G*H]: one matmul
    gx = jnp.swapaxes(gx, 0, 1)                    # time-major for scan: [T, B, G*H]
    h0 = jnp.zeros((batch, self.hidden), self.dtype)
    if self.kind == "lstm":
      _, hs = jax.lax.scan(lambda carry, g: lstm_cell(carry, g, w_hh), (h0, h0), gx)
    else:
      b_hn = self.b_hn[...].astype(self.dtype)
      _, hs = jax.lax.scan(lambda h, g: gru_cell(h, g, w_hh, b_hn), h0, gx)
    return jnp.swapaxes(hs, 0, 1)


class RecurrentLM(nnx.Module):
  """Embedding (+ optional learned positions) -> stacked LSTM/GRU -> logits.

  __call__: inputs [batch, time] int32 -> logits [batch, time, vocab] float32.
  """

  def __init__(self, cfg, *, rngs: nnx.Rngs):
    dtype = jnp.dtype(cfg.dtype)
    self.embed = nnx.Embed(tokens.VOCAB_SIZE, cfg.embed_dim, rngs=rngs)
    self.pos = (nnx.Embed(cfg.max_len, cfg.embed_dim, rngs=rngs)
                if cfg.position_embedding else None)
    dims = [cfg.embed_dim] + [cfg.hidden_dim] * cfg.num_layers
    layer_cls = nnx.remat(RecurrentLayer) if cfg.remat else RecurrentLayer
    self.layers = nnx.List([layer_cls(cfg.name, dims[i], dims[i + 1], rngs=rngs, dtype=dtype)
                            for i in range(cfg.num_layers)])
    self.head = nnx.Linear(cfg.hidden_dim, tokens.VOCAB_SIZE, rngs=rngs)

  def __call__(self, inputs: jax.Array) -> jax.Array:
    x = self.embed(inputs)
    if self.pos is not None:
      x = x + self.pos(jnp.arange(inputs.shape[1]))[None]
    for layer in self.layers:
      x = layer(x)
    return self.head(x.astype(jnp.float32))
