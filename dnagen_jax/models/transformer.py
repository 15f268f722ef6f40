"""A GPT-style causal transformer decoder (Flax NNX).

Pre-layer-norm blocks: x + Attention(LN(x)), then x + MLP(LN(x)); learned
token and position embeddings; ReLU feed-forward; no dropout (as in the study).
Attention is computed block by block, so that the masked upper half of the
T x T scores is mostly never computed, with a hand-written backward pass that
recomputes the probabilities instead of storing them (`causal_attention`).
On CPU (float32) it runs in a C++ kernel (`cpu_attention`); otherwise, and
where the kernel cannot be built, in XLA: on CPU one (sequence, head) at a
time, where the scores stay in cache, on GPU/TPU the whole batch at once.
Heads may be narrower than d_model / heads (the study's 3 heads over d=256
use 85 dims each).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax import lax

from dnagen_jax.data import tokens
from dnagen_jax.errors import UserError
from dnagen_jax.models import axes
from dnagen_jax.models import cpu_attention
from dnagen_jax.models import initializers
from dnagen_jax.models.matmul import dense


def _mm(spec: str, a: jax.Array, b: jax.Array) -> jax.Array:
  """einsum(spec, a, b); 16-bit operands: 16-bit products, float32 accumulation and result."""
  if a.dtype == b.dtype == jnp.float32:
    return jnp.einsum(spec, a, b)
  return jnp.einsum(spec, a, b, preferred_element_type=jnp.float32)


def _tiles(t: int, block: int) -> list[tuple[int, int]]:
  """(first, last + 1) query of each block of `block` queries; one block when block <= 0 or >= t."""
  block = block if 0 < block < t else t
  return [(s, min(s + block, t)) for s in range(0, t, block)]


def _visible(s: int, e: int) -> np.ndarray:
  """[e - s, e] bool: query s + i sees key j when j <= s + i (numpy, folded at compile time)."""
  return np.arange(e)[None, :] <= np.arange(s, e)[:, None]


def _forward(q: jax.Array, k: jax.Array, v: jax.Array, block: int) -> tuple[jax.Array, jax.Array]:
  """Pre-scaled q, k, v [..., t, d] -> (o [..., t, d], logsumexp of each query's scores [..., t] float32).

  Query block [s, e) meets keys 0 .. e-1 only, so with n blocks only
  (n+1)/(2n) of the t x t scores are computed, and only the diagonal part needs the mask.
  """
  outs, lses = [], []
  for s, e in _tiles(q.shape[-2], block):
    scores = _mm("...qd,...kd->...qk", q[..., s:e, :], k[..., :e, :]).astype(jnp.float32)
    scores = jnp.where(_visible(s, e), scores, -jnp.inf)
    top = jnp.max(scores, axis=-1, keepdims=True)
    p = jnp.exp(scores - top)
    total = jnp.sum(p, axis=-1, keepdims=True)
    outs.append(_mm("...qk,...kd->...qd", (p / total).astype(v.dtype), v[..., :e, :]).astype(v.dtype))
    lses.append((top + jnp.log(total))[..., 0])
  return jnp.concatenate(outs, axis=-2), jnp.concatenate(lses, axis=-1)


def _backward(q, k, v, o, lse, do, block):
  """Gradients of `_forward`'s o for [..., t, d] inputs: (dq, dk, dv), recomputing p from lse.

  The softmax gradient as flash attention writes it: ds = p * (dp - rowsum(do * o));
  rowsum(do * o) runs over head_dim, not over the scores.
  """
  t = q.shape[-2]
  delta = jnp.sum((do * o).astype(jnp.float32), axis=-1, keepdims=True)
  dq, dk, dv = [], [], []
  for s, e in _tiles(t, block):
    qs, ks, vs, dos = q[..., s:e, :], k[..., :e, :], v[..., :e, :], do[..., s:e, :]
    scores = _mm("...qd,...kd->...qk", qs, ks).astype(jnp.float32)
    p = jnp.where(_visible(s, e), jnp.exp(scores - lse[..., s:e, None]), 0.0)
    dv.append(_mm("...qk,...qd->...kd", p.astype(do.dtype), dos).astype(v.dtype))
    dp = _mm("...qd,...kd->...qk", dos, vs).astype(jnp.float32)
    ds = (p * (dp - delta[..., s:e, :])).astype(q.dtype)
    dq.append(_mm("...qk,...kd->...qd", ds, ks).astype(q.dtype))
    dk.append(_mm("...qk,...qd->...kd", ds, qs).astype(k.dtype))
  # Block i's keys are 0 .. e_i - 1: pad each part with zeros to all t keys, then sum.
  pad = lambda x: jnp.pad(x, [(0, 0)] * (x.ndim - 2) + [(0, t - x.shape[-2]), (0, 0)])
  return jnp.concatenate(dq, axis=-2), sum(map(pad, dk)), sum(map(pad, dv))


def _per_sequence(fn, *arrays):
  """fn over one (sequence, head) at a time on CPU: arrays [b, h, ...] -> fn's outputs [b, h, ...].

  One sequence and head at a time, XLA:CPU's 2-D products find their
  operands and scores in cache; on the whole batch at once the [b, h, 128, t]
  scores of a block (100 MB at batch 64) go through memory between the
  product, the softmax and p @ v. On paper_transformer (batch 64 x 1024)
  scoring went from 0.93x to 1.10-1.18x PyTorch (docs/speed.md); training
  stayed within this machine's noise (0.81-0.90x, from 0.82x). The loop
  runs over (b / n) * h steps with the n devices' sequences side by side in
  each, so that the batch stays split over devices (no collective in the
  compiled step). GPU and TPU run the whole batch at once.
  """
  def looped(*xs):
    b, h = xs[0].shape[:2]
    n = jax.device_count() if b % jax.device_count() == 0 else 1
    # [b, h, ...] -> [(b / n) * h, n, ...]: device j holds sequences j * b/n .. (j+1) * b/n - 1.
    split = lambda x: jnp.moveaxis(x.reshape(n, b // n, h, *x.shape[2:]), 0, 2).reshape(
        (b // n) * h, n, *x.shape[2:])
    merge = lambda y: jnp.moveaxis(y.reshape(b // n, h, n, *y.shape[2:]), 2, 0).reshape(
        b, h, *y.shape[2:])
    return jax.tree.map(merge, lax.map(lambda args: fn(*args), tuple(map(split, xs))))
  return lax.platform_dependent(*arrays, cpu=looped, default=fn)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4))
def _causal_attention(q: jax.Array, k: jax.Array, v: jax.Array, block: int, kernel: bool) -> jax.Array:
  return _causal_attention_fwd(q, k, v, block, kernel)[0]


def _causal_attention_fwd(q, k, v, block, kernel):
  if kernel:
    o, lse = cpu_attention.forward(q, k, v, block)
  else:
    o, lse = _per_sequence(lambda q, k, v: _forward(q, k, v, block), q, k, v)
  return o, (q, k, v, o, lse)  # [b, h, t] logsumexp instead of the [b, h, t, t] probabilities


def _causal_attention_bwd(block, kernel, res, do):
  if kernel:
    return cpu_attention.backward(*res, do, block)
  return _per_sequence(lambda *a: _backward(*a, block), *res, do)


_causal_attention.defvjp(_causal_attention_fwd, _causal_attention_bwd)


def causal_attention(q: jax.Array, k: jax.Array, v: jax.Array, block: int = 0,
                     cpu_kernel: bool = False) -> jax.Array:
  """Softmax attention of each position over itself and the past.

  q, k, v [batch, heads, time, head_dim] -> [batch, heads, time, head_dim].
  block > 0 splits the queries into blocks of `block` positions; block i
  attends only to keys 0 .. (i+1)*block - 1, so with n blocks only
  (n+1)/(2n) of the T x T scores are computed (56% at T=1024, block 128).
  block 0 (or T <= block) is the plain full-matrix form. Both give the same
  result to float rounding. The backward pass recomputes the probabilities
  from each query's logsumexp (as flash attention does) instead of storing them.
  cpu_kernel: on CPU with float32, run both passes in the C++ kernel
  (`cpu_attention`; the XLA form when it cannot be built).
  """
  q = q * (1.0 / np.sqrt(q.shape[-1])).astype(q.dtype)  # scale the small q, not the scores
  return _causal_attention(q, k, v, block, cpu_kernel and cpu_attention.usable(q.dtype))


def fused_attention(q: jax.Array, k: jax.Array, v: jax.Array, implementation: str | None) -> jax.Array:
  """Causal attention through `jax.nn.dot_product_attention` (GPU and TPU).

  q, k, v [batch, time, heads, head_dim] -> [batch, time, heads, head_dim].
  implementation None lets JAX choose (cuDNN's fused flash attention on NVIDIA
  GPUs where it applies, XLA otherwise), 'cudnn' insists, 'xla' is XLA's
  form (any backend, the CPU included). cuDNN takes head widths that are
  multiples of 8 only, so heads are zero-padded up to one (the study's 85 ->
  88): zero columns add nothing to q . k, the padded output columns are
  zeros and are cut, and the scale stays 1 / sqrt(true width).
  """
  width = q.shape[-1]
  padded = -(-width // 8) * 8
  if padded != width:
    pad = lambda x: jnp.pad(x, [(0, 0)] * 3 + [(0, padded - width)])
    q, k, v = pad(q), pad(k), pad(v)
  y = jax.nn.dot_product_attention(q, k, v, scale=1.0 / np.sqrt(width), is_causal=True,
                                   implementation=implementation)
  return y[..., :width]


def attention_path(impl: str) -> str:
  """'blocks' (query blocks with a hand-written VJP: the CPU's, in the C++ kernel where it builds)
  or 'xla' / 'cudnn' / 'fused' (`fused_attention`; 'fused' lets JAX choose) for model.attention_impl
  `impl`; 'auto' decides by the backend at trace time: blocks on the CPU, fused elsewhere."""
  if impl == "cudnn" and jax.default_backend() != "gpu":
    raise UserError(f"config.model.attention_impl='cudnn' needs a GPU; this run's devices are "
                    f"{jax.default_backend()}: use 'auto' or 'xla'")
  if impl != "auto":
    return impl
  return "blocks" if jax.default_backend() == "cpu" else "fused"


class CausalSelfAttention(nnx.Module):
  """[batch * time, d] -> [batch * time, d], each position sees itself and the past."""

  def __init__(self, d: int, heads: int, head_dim: int, *, rngs: nnx.Rngs, dtype, block: int = 0,
               cpu_kernel: bool = False, impl: str = "auto", init: str = "flax"):
    self.heads, self.head_dim, self.dtype, self.block = heads, head_dim, dtype, block
    self.cpu_kernel = cpu_kernel
    self.impl = impl  # model.attention_impl (see `attention_path`)
    self.qkv = nnx.Linear(d, 3 * heads * head_dim, rngs=rngs, dtype=dtype,
                          kernel_metadata=axes.meta("embed", "qkv"), bias_metadata=axes.meta("qkv"),
                          **initializers.linear(init, d))
    self.out = nnx.Linear(heads * head_dim, d, rngs=rngs, dtype=dtype,
                          kernel_metadata=axes.meta("heads", "embed"), bias_metadata=axes.meta("embed"),
                          **initializers.linear(init, heads * head_dim))

  def __call__(self, x: jax.Array, seq_len: int) -> jax.Array:
    b = x.shape[0] // seq_len
    # bfloat16: q, k, v in bfloat16 (dense gives float32); scores, softmax and sums in float32.
    qkv = dense(self.qkv, x).astype(self.dtype).reshape(b, seq_len, 3, self.heads, self.head_dim)
    path = attention_path(self.impl)
    if path != "blocks":  # [b, t, heads, head_dim] as they come: no transposes
      y = fused_attention(qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2],
                          None if path == "fused" else path)
      return dense(self.out, y.reshape(b * seq_len, self.heads * self.head_dim))
    # One transpose of the small q/k/v to head-major [3, b, heads, t, head_dim].
    qkv = jnp.transpose(qkv, (2, 0, 3, 1, 4))
    y = causal_attention(qkv[0], qkv[1], qkv[2], self.block, self.cpu_kernel)
    return dense(self.out, jnp.transpose(y, (0, 2, 1, 3)).reshape(b * seq_len, self.heads * self.head_dim))

  def decode(self, x: jax.Array, seq_len: int, cache: tuple, start) -> tuple[jax.Array, tuple]:
    """x [batch * s, d] at positions start .. start + s - 1, over a KV cache.

    cache (k, v) [batch, heads, length, head_dim] holds positions < start; these
    s positions are written into it. A plain masked softmax over the cache (s = 1
    while generating, s = the prompt to prefill). -> (y [batch * s, d], cache).
    """
    b = x.shape[0] // seq_len
    qkv = jnp.transpose(dense(self.qkv, x).astype(self.dtype).reshape(b, seq_len, 3, self.heads, self.head_dim),
                        (2, 0, 3, 1, 4))
    k = lax.dynamic_update_slice(cache[0], qkv[1].astype(cache[0].dtype), (0, 0, start, 0))
    v = lax.dynamic_update_slice(cache[1], qkv[2].astype(cache[1].dtype), (0, 0, start, 0))
    q = qkv[0] * (1.0 / np.sqrt(self.head_dim)).astype(qkv.dtype)  # as causal_attention scales
    scores = _mm("bhqd,bhkd->bhqk", q, k).astype(jnp.float32)
    visible = jnp.arange(k.shape[2])[None, :] <= start + jnp.arange(seq_len)[:, None]
    p = jax.nn.softmax(jnp.where(visible, scores, -jnp.inf), axis=-1)
    y = _mm("bhqk,bhkd->bhqd", p.astype(v.dtype), v).astype(v.dtype)
    y = jnp.transpose(y, (0, 2, 1, 3)).reshape(b * seq_len, self.heads * self.head_dim)
    return dense(self.out, y), (k, v)


class Block(nnx.Module):
  """Pre-LN decoder block on flattened activations: [batch * time, d] -> [batch * time, d]."""

  def __init__(self, cfg, head_dim: int, *, rngs: nnx.Rngs, dtype):
    d = cfg.embed_dim
    init = cfg.get("transformer_init", "flax")
    norm = dict(scale_metadata=axes.meta("embed"), bias_metadata=axes.meta("embed"))
    self.ln1 = nnx.LayerNorm(d, rngs=rngs, **norm)
    self.attn = CausalSelfAttention(d, cfg.num_heads, head_dim, rngs=rngs, dtype=dtype,
                                    block=cfg.attention_block, cpu_kernel=cfg.cpu_kernel,
                                    impl=cfg.get("attention_impl", "auto"), init=init)
    self.ln2 = nnx.LayerNorm(d, rngs=rngs, **norm)
    self.fc1 = nnx.Linear(d, cfg.mlp_dim, rngs=rngs, dtype=dtype,
                          kernel_metadata=axes.meta("embed", "mlp"), bias_metadata=axes.meta("mlp"),
                          **initializers.linear(init, d))
    self.fc2 = nnx.Linear(cfg.mlp_dim, d, rngs=rngs, dtype=dtype,
                          kernel_metadata=axes.meta("mlp", "embed"), bias_metadata=axes.meta("embed"),
                          **initializers.linear(init, cfg.mlp_dim))

  def __call__(self, x: jax.Array, seq_len: int) -> jax.Array:
    x = x + self.attn(self.ln1(x), seq_len)
    return x + dense(self.fc2, jax.nn.relu(dense(self.fc1, self.ln2(x))))

  def decode(self, x: jax.Array, seq_len: int, cache: tuple, start) -> tuple[jax.Array, tuple]:
    """__call__ over a KV cache (see CausalSelfAttention.decode)."""
    y, cache = self.attn.decode(self.ln1(x), seq_len, cache, start)
    x = x + y
    return x + dense(self.fc2, jax.nn.relu(dense(self.fc1, self.ln2(x)))), cache


def _apply_block(block: Block, x: jax.Array, seq_len: int) -> jax.Array:
  return block(x, seq_len)


class TransformerLM(nnx.Module):
  """__call__: inputs [batch, time] int32 -> logits [batch, time, vocab] float32."""

  def __init__(self, cfg, *, rngs: nnx.Rngs, vocab_size: int = tokens.VOCAB_SIZE):
    dtype = jnp.dtype(cfg.dtype)
    head_dim = cfg.head_dim or cfg.embed_dim // cfg.num_heads
    init = cfg.get("transformer_init", "flax")  # model.transformer_init
    self.embed = nnx.Embed(vocab_size, cfg.embed_dim, rngs=rngs,  # 8 nucleotide tokens or 3 + 4^k k-mers
                           embedding_metadata=axes.meta("vocab", "embed"), **initializers.embed(init))
    self.pos = nnx.Embed(cfg.max_len, cfg.embed_dim, rngs=rngs,
                         embedding_metadata=axes.meta("position", "embed"), **initializers.embed(init))
    self.remat = bool(cfg.remat)
    self.blocks = nnx.List([Block(cfg, head_dim, rngs=rngs, dtype=dtype)
                            for _ in range(cfg.num_layers)])
    self.ln_f = nnx.LayerNorm(cfg.embed_dim, rngs=rngs, scale_metadata=axes.meta("embed"),
                              bias_metadata=axes.meta("embed"))
    self.head = nnx.Linear(cfg.embed_dim, vocab_size, rngs=rngs,
                           kernel_metadata=axes.meta("embed", "vocab"), bias_metadata=axes.meta("vocab"),
                           **initializers.linear(init, cfg.embed_dim))

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

  def init_cache(self, batch: int, length: int) -> tuple:
    """An empty KV cache for `length` positions: per block (k, v) [batch, heads, length, head_dim]."""
    attn = self.blocks[0].attn
    zero = lambda: jnp.zeros((batch, attn.heads, length, attn.head_dim), attn.dtype)
    return tuple((zero(), zero()) for _ in self.blocks)

  def decode(self, inputs: jax.Array, start, cache: tuple) -> tuple[jax.Array, tuple]:
    """inputs [batch, s] at positions start .. start + s - 1 -> (logits [batch, s, vocab], cache).

    The same parameters and maths as __call__, attending over the cache: prefill
    a prompt once (start 0), then one token a step (s = 1).
    """
    b, s = inputs.shape
    x = (self.embed(inputs) + self.pos(start + jnp.arange(s))[None]).reshape(b * s, -1)
    new = []
    for block, layer_cache in zip(self.blocks, cache):
      x, layer_cache = block.decode(x, s, layer_cache, start)
      new.append(layer_cache)
    return self.head(self.ln_f(x).astype(jnp.float32)).reshape(b, s, -1), tuple(new)
