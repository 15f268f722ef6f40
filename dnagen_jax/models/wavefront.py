"""All recurrent layers stepped together in one loop (a wavefront), for GPUs and TPUs.

Layer-by-layer, an L-layer net over T steps runs L x T sequential loop
iterations, each one small [B, H] @ [H, G*H] product. In the wavefront,
iteration s advances layer l to time t = s - l: layer l's input at time t is
layer l-1's output at time t, produced one iteration earlier. So all L layers
step together in T + L - 1 iterations, each one batched product over layers,
[L, B, H] @ [L, H, G*H] (plus [L-1, B, H] @ [L-1, H, G*H] for the inputs of
layers 1..L-1). A layer that has not started (s < l) or has finished
(s - l >= T) keeps its state; its results are masked out.

The backward pass is a reverse wavefront (custom VJP, as in `recurrent.py`):
at reverse iteration s, layer l at time t receives d h from layer l at t+1
(through W_hh) and from layer l+1 at t (through W_ih), both produced at
iteration s+1. The weight gradients are then ONE batched product each over
all iterations (dW_hh[l] = sum_s h_prev^T dgates, likewise W_ih), after the loop.

Products use `dot`: float32 stays a plain `@` (as the layer-by-layer scans);
bfloat16 weights multiply bfloat16 copies of the float32 carries with float32
accumulation and float32 results, so the carries (h, c), the gates and their
gradients stay float32 over the whole sequence.
Shapes: gx0 [T, B, G*H] (layer 0's x @ W_ih), b [L, G*H], w_ih [L-1, H, G*H]
(layers 1..L-1), w_hh [L, H, G*H], b_hn [L, H] (GRU) -> hs [T, B, H] of the last layer.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from dnagen_jax.models import axes


def dot(x: jax.Array, w: jax.Array) -> jax.Array:
  """x @ w (batched over leading axes); float32 results, bfloat16 products when w is bfloat16."""
  if x.dtype == w.dtype == jnp.float32:
    return x @ w
  return jnp.matmul(x.astype(w.dtype), w, preferred_element_type=jnp.float32)


def _valid(t: int, layers: int) -> np.ndarray:
  """[T + L - 1, L] float32: 1 where iteration s holds layer l at a real time 0 <= s - l < T."""
  s = np.arange(t + layers - 1)[:, None]
  lag = s - np.arange(layers)[None, :]
  return ((lag >= 0) & (lag < t)).astype(np.float32)


def _pad_steps(x: jax.Array, layers: int) -> jax.Array:
  """[T, ...] -> [T + L - 1, ...] with zeros after the last step."""
  return jnp.pad(x, [(0, layers - 1)] + [(0, 0)] * (x.ndim - 1))


def _shift(xs: jax.Array) -> jax.Array:
  """[S, ...] -> the previous iteration's values, zeros first."""
  return jnp.concatenate([jnp.zeros_like(xs[:1]), xs[:-1]], axis=0)


def _layer_inputs(gx0_s, h, w_ih):
  """Each layer's input projection at one iteration: [L, B, G*H] (layer 0's from gx0)."""
  if w_ih.shape[0] == 0:
    return gx0_s[None]
  return jnp.concatenate([gx0_s[None], dot(h[:-1], w_ih)], axis=0)


def _from_above(dg, w_ih):
  """d h_l from layer l+1's input gradient dg [L, B, G*H] through W_ih[l]^T: [L, B, H], zero for the top."""
  if w_ih.shape[0] == 0:
    return jnp.zeros(dg.shape[:2] + (w_ih.shape[1],), jnp.float32)
  below = dot(dg[1:], jnp.swapaxes(w_ih, 1, 2))
  return jnp.concatenate([below, jnp.zeros_like(below[:1])], axis=0)


def _weight_grads(hs_all, dg, w_dtype):
  """sum over iterations and rows of h_prev^T dg: [L, H, G*H] (and [L-1, H, G*H] for W_ih)."""
  prev = _shift(hs_all)                                          # [S, L, B, H]
  grad = lambda h, g: jnp.einsum("slbh,slbg->lhg", h.astype(w_dtype), g.astype(w_dtype),
                                 preferred_element_type=jnp.float32).astype(w_dtype)
  return grad(prev, dg), grad(prev[:, :-1], dg[:, 1:])


# ---------------------------------------------------------------- LSTM

def _lstm_fwd_loop(gx0, b, w_ih, w_hh, unroll):
  t, batch, _ = gx0.shape
  layers, hidden = w_hh.shape[0], w_hh.shape[1]
  ones = jnp.ones((hidden,), jnp.float32)
  scale = jnp.concatenate([ones, ones, 2 * ones, ones])
  shift = jnp.concatenate([0 * ones, 0 * ones, ones, 0 * ones])
  bias = b.astype(jnp.float32)[:, None, :]

  def step(carry, xs):
    h, c = carry
    g0, keep = xs
    gates = _layer_inputs(g0, h, w_ih) + dot(h, w_hh) + bias
    a = jax.nn.sigmoid(gates * scale) * scale - shift   # sigmoid i, f, o; tanh g
    i, f, g, o = jnp.split(a, 4, axis=-1)
    c_new = f * c + i * g
    h_new = o * jnp.tanh(c_new)
    keep = keep[:, None, None] > 0
    h, c = jnp.where(keep, h_new, h), jnp.where(keep, c_new, c)
    return (h, c), (h, c, a)

  zero = jnp.zeros((layers, batch, hidden), jnp.float32)
  valid = jnp.asarray(_valid(t, layers))
  _, (hs_all, cs_all, acts) = jax.lax.scan(
      step, (zero, zero), (_pad_steps(gx0.astype(jnp.float32), layers), valid), unroll=unroll)
  return hs_all, cs_all, acts


@functools.partial(jax.custom_vjp, nondiff_argnums=(4,))
def lstm_wavefront(gx0, b, w_ih, w_hh, unroll: int = 1):
  """The stacked LSTM's time loops as one wavefront: -> hs [T, B, H] (float32) of the last layer."""
  return _lstm_fwd(gx0, b, w_ih, w_hh, unroll)[0]


def _lstm_fwd(gx0, b, w_ih, w_hh, unroll):
  hs_all, cs_all, acts = _lstm_fwd_loop(gx0, b, w_ih, w_hh, unroll)
  layers = w_hh.shape[0]
  return hs_all[layers - 1:, layers - 1], (hs_all, cs_all, acts, gx0, b, w_ih, w_hh)


def _lstm_bwd(unroll, res, dhs):
  hs_all, cs_all, acts, gx0, b, w_ih, w_hh = res
  t, layers = dhs.shape[0], w_hh.shape[0]
  w_hh_t = jnp.swapaxes(w_hh, 1, 2)
  dhs = axes.batch_rows(dhs, 1)  # rows local in the loop
  dy = jnp.pad(dhs.astype(jnp.float32), [(layers - 1, 0), (0, 0), (0, 0)])   # [S, B, H], last layer's

  def step(carry, xs):
    dg_next, dc_next = carry
    dy_s, a, c, c_prev, keep = xs
    i, f, g, o = jnp.split(a, 4, axis=-1)
    dh = dot(dg_next, w_hh_t) + _from_above(dg_next, w_ih)
    dh = dh.at[-1].add(dy_s)
    tc = jnp.tanh(c)
    dc = dc_next + dh * o * (1 - tc * tc)
    dgates = jnp.concatenate([dc * g * i * (1 - i), dc * c_prev * f * (1 - f),
                              dc * i * (1 - g * g), dh * tc * o * (1 - o)], axis=-1)
    keep = keep[:, None, None] > 0
    dgates = jnp.where(keep, dgates, 0.0)
    return (dgates, jnp.where(keep, dc * f, 0.0)), dgates

  zero_g = jnp.zeros_like(acts[0])
  zero_c = jnp.zeros_like(cs_all[0])
  valid = jnp.asarray(_valid(t, layers))
  _, dg = jax.lax.scan(step, (zero_g, zero_c), (dy, acts, cs_all, _shift(cs_all), valid),
                       reverse=True, unroll=unroll)                     # [S, L, B, 4H]
  dw_hh, dw_ih = _weight_grads(hs_all, dg, w_hh.dtype)
  return (dg[:t, 0].astype(gx0.dtype), dg.sum(axis=(0, 2)).astype(b.dtype),
          dw_ih.astype(w_ih.dtype), dw_hh)


lstm_wavefront.defvjp(_lstm_fwd, _lstm_bwd)


# ---------------------------------------------------------------- GRU

def _gru_fwd_loop(gx0, b, w_ih, w_hh, b_hn, unroll):
  t, batch, _ = gx0.shape
  layers, hidden = w_hh.shape[0], w_hh.shape[1]
  bias = b.astype(jnp.float32)[:, None, :]
  bias_hn = b_hn.astype(jnp.float32)[:, None, :]

  def step(h, xs):
    g0, keep = xs
    gx = _layer_inputs(g0, h, w_ih) + bias
    gh = dot(h, w_hh)
    r = jax.nn.sigmoid(gx[..., :hidden] + gh[..., :hidden])
    z = jax.nn.sigmoid(gx[..., hidden:2 * hidden] + gh[..., hidden:2 * hidden])
    hn = gh[..., 2 * hidden:] + bias_hn
    n = jnp.tanh(gx[..., 2 * hidden:] + r * hn)
    h_new = (1.0 - z) * n + z * h
    h = jnp.where(keep[:, None, None] > 0, h_new, h)
    return h, (h, jnp.concatenate([r, z, n, hn], axis=-1))

  zero = jnp.zeros((layers, batch, hidden), jnp.float32)
  valid = jnp.asarray(_valid(t, layers))
  _, (hs_all, res) = jax.lax.scan(
      step, zero, (_pad_steps(gx0.astype(jnp.float32), layers), valid), unroll=unroll)
  return hs_all, res


@functools.partial(jax.custom_vjp, nondiff_argnums=(5,))
def gru_wavefront(gx0, b, w_ih, w_hh, b_hn, unroll: int = 1):
  """The stacked GRU's time loops as one wavefront: -> hs [T, B, H] (float32) of the last layer."""
  return _gru_fwd(gx0, b, w_ih, w_hh, b_hn, unroll)[0]


def _gru_fwd(gx0, b, w_ih, w_hh, b_hn, unroll):
  hs_all, res = _gru_fwd_loop(gx0, b, w_ih, w_hh, b_hn, unroll)
  layers = w_hh.shape[0]
  return hs_all[layers - 1:, layers - 1], (hs_all, res, gx0, b, w_ih, w_hh, b_hn)


def _gru_bwd(unroll, saved, dhs):
  hs_all, res, gx0, b, w_ih, w_hh, b_hn = saved
  t, layers, hidden = dhs.shape[0], w_hh.shape[0], w_hh.shape[1]
  w_hh_t = jnp.swapaxes(w_hh, 1, 2)
  dy = jnp.pad(axes.batch_rows(dhs, 1).astype(jnp.float32), [(layers - 1, 0), (0, 0), (0, 0)])

  def step(carry, xs):
    rec_next, dgx_next = carry
    dy_s, a, h_prev, keep = xs
    r, z, n, hn = jnp.split(a, 4, axis=-1)
    dh = rec_next + _from_above(dgx_next, w_ih)
    dh = dh.at[-1].add(dy_s)
    dn = dh * (1 - z) * (1 - n * n)
    dr = dn * hn * r * (1 - r)
    dz = dh * (h_prev - n) * z * (1 - z)
    keep = keep[:, None, None] > 0
    dgh = jnp.where(keep, jnp.concatenate([dr, dz, dn * r], axis=-1), 0.0)   # d(h @ W_hh)
    dgx = jnp.where(keep, jnp.concatenate([dr, dz, dn], axis=-1), 0.0)       # d(x @ W_ih + b)
    rec = jnp.where(keep, dh * z + dot(dgh, w_hh_t), 0.0)
    return (rec, dgx), (dgx, dgh)

  zero_h = jnp.zeros_like(hs_all[0])
  zero_g = jnp.zeros(hs_all.shape[1:3] + (3 * hidden,), jnp.float32)
  valid = jnp.asarray(_valid(t, layers))
  _, (dgx, dgh) = jax.lax.scan(step, (zero_h, zero_g), (dy, res, _shift(hs_all), valid),
                               reverse=True, unroll=unroll)
  dw_hh, _ = _weight_grads(hs_all, dgh, w_hh.dtype)
  _, dw_ih = _weight_grads(hs_all, dgx, w_ih.dtype)
  return (dgx[:t, 0].astype(gx0.dtype), dgx.sum(axis=(0, 2)).astype(b.dtype),
          dw_ih.astype(w_ih.dtype), dw_hh, dgh[..., 2 * hidden:].sum(axis=(0, 2)).astype(b_hn.dtype))


gru_wavefront.defvjp(_gru_fwd, _gru_bwd)
