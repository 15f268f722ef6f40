"""Scanned LSTM and GRU language models (Flax NNX) with a hand-written backward pass.

Each layer runs the way fused RNN kernels (cuDNN, PyTorch's nn.LSTM) do:
  1. the input projection of all time steps as one 2-D matrix product
     (`project`): x [T*B, in] @ W_ih [in, G*H] -> [T, B, G*H]; 2-D so that
     autodiff forms dx and dW_ih as plain 2-D products (for a 3-D einsum
     XLA:CPU copied and transposed the gradient first);
  2. a `jax.lax.scan` over time that does only h @ W_hh [H, G*H], the bias
     and the gates, and stores the gate activations for the backward pass;
  3. a custom VJP for that loop (`lstm_recurrence` / `gru_recurrence`) whose
     backward scan does only dgates @ W_hh^T and the gate derivatives per
     step; dW_hh = sum_t h_{t-1}^T dgates_t and db are then ONE product /
     sum each, after the loop (autodiff of a scan would accumulate dW_hh with
     a small product per step).
`RecurrentLM` skips step 1 for its first layer: with 8 tokens, the
embedding's projection is a lookup in an [8, G*H] table (E @ W_ih).
Gate order and equations follow PyTorch's `nn.LSTM` / `nn.GRU`, so the two can
be compared weight for weight (G = 4 for LSTM: i, f, g, o; G = 3 for GRU: r, z, n).
`lstm_cell` / `gru_cell` are the plain one-step cells: the reference the fast
path is tested against.
That is the CPU's path (its loops in the C++ kernel `cpu_recurrent` where it
builds). GPUs and TPUs step all layers in one loop (`wavefront.py`), and a
float32 LSTM on a CUDA GPU runs in cuDNN (`cudnn_lstm.py`): `RecurrentLM.path`
chooses (docs/accelerators.md). Under bfloat16, products take bfloat16
operands and float32 accumulation; gx, the carries and the gates stay float32.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from flax import nnx

from dnagen_jax.data import tokens
from dnagen_jax.errors import UserError
from dnagen_jax.models import axes
from dnagen_jax.models import initializers
from dnagen_jax.models import cpu_recurrent
from dnagen_jax.models import cudnn_lstm
from dnagen_jax.models import wavefront
from dnagen_jax.models.matmul import matmul

# Time steps per loop iteration. On CPU the loop's own cost is ~1 us a step
# (the matmul and gate fusions dominate); measured side by side, unroll 1 was
# as fast as 4 and faster than 8-16, which also compile 2-3x slower.
UNROLL = 1
# Off the CPU a loop iteration costs a kernel launch or more (GPU) or a
# sequencer round trip (TPU); unrolling lets XLA fuse the gate arithmetic of
# several steps. Not yet measured on a device (launch/gpu_bench.sh reports the
# step time; no GPU figure exists yet).
UNROLL_BY_BACKEND = {"cpu": UNROLL, "gpu": 8, "tpu": 8}


def unroll_for(backend: str) -> int:
  """Time steps per loop iteration on `backend` ('cpu', 'gpu', 'tpu')."""
  return UNROLL_BY_BACKEND.get(backend, UNROLL)


def lstm_cell(carry, gx, w_hh):
  """One LSTM step. carry (h, c) [batch, H]; gx [batch, 4H] precomputed x @ W_ih + b."""
  h, c = carry
  gates = gx + wavefront.dot(h, w_hh)
  i, f, g, o = jnp.split(gates, 4, axis=-1)
  c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
  h = jax.nn.sigmoid(o) * jnp.tanh(c)
  return (h, c), h


def gru_cell(h, gx, w_hh, b_hn):
  """One GRU step. h [batch, H]; gx [batch, 3H] precomputed x @ W_ih + b."""
  gh = wavefront.dot(h, w_hh)
  xr, xz, xn = jnp.split(gx, 3, axis=-1)
  hr, hz, hn = jnp.split(gh, 3, axis=-1)
  r = jax.nn.sigmoid(xr + hr)
  z = jax.nn.sigmoid(xz + hz)
  n = jnp.tanh(xn + r * (hn + b_hn))
  h = (1.0 - z) * n + z * h
  return h, h


def _shift(xs):
  """[T, B, H] -> the previous step's values [T, B, H], zeros (the initial state) first."""
  return jnp.concatenate([jnp.zeros_like(xs[:1]), xs[:-1]], axis=0)


# ---------------------------------------------------------------- LSTM

def _lstm_forward(gx, b, w_hh, unroll):
  """gx [T, B, 4H] = x @ W_ih, b [4H], w_hh [H, 4H] -> hs, cs [T, B, H] and activations [T, B, 4H].

  The bias is added inside the loop, where it fuses into the gate arithmetic
  (added to gx outside, it was one more pass over [T, B, 4H] per layer).
  """
  hidden = w_hh.shape[0]

  def step(carry, g):
    h, c = carry
    gates = wavefront.dot(h, w_hh) + g + b
    # sigmoid on i, f, o and tanh on g in one pass: tanh(x) = 2 sigmoid(2x) - 1.
    a = jax.nn.sigmoid(gates * scale) * scale - shift
    i, f, gg, o = jnp.split(a, 4, axis=-1)
    c = f * c + i * gg
    h = o * jnp.tanh(c)
    return (h, c), (h, c, a)

  ones = jnp.ones((hidden,), gx.dtype)
  scale = jnp.concatenate([ones, ones, 2 * ones, ones])
  shift = jnp.concatenate([0 * ones, 0 * ones, ones, 0 * ones])
  h0 = jnp.zeros(gx.shape[1:2] + (hidden,), gx.dtype)
  _, (hs, cs, acts) = jax.lax.scan(step, (h0, h0), gx, unroll=unroll)
  return hs, cs, acts


def _lstm_dgates(hs, cs, acts, w_hh, dhs, unroll):
  """The backward time loop: d loss / d gates [T, B, 4H] from d loss / d hs [T, B, H]."""
  w_hh_t = w_hh.T  # transposed once, outside the loop

  def step(carry, xs):
    dh_next, dc_next = carry
    dy, a, c, c_prev = xs
    i, f, g, o = jnp.split(a, 4, axis=-1)
    dh = dy + dh_next
    tc = jnp.tanh(c)
    dc = dc_next + dh * o * (1 - tc * tc)
    dgates = jnp.concatenate([dc * g * i * (1 - i), dc * c_prev * f * (1 - f),
                              dc * i * (1 - g * g), dh * tc * o * (1 - o)], axis=-1)
    return (wavefront.dot(dgates, w_hh_t), dc * f), dgates

  zero = jnp.zeros_like(hs[0])
  return jax.lax.scan(step, (zero, zero), (dhs, acts, cs, _shift(cs)),
                      reverse=True, unroll=unroll)[1]


def _w_hh_grad(hs, dg, dtype=jnp.float32):
  """dW_hh = sum_t h_{t-1}^T dgates_t as ONE [H, T*B] @ [T*B, G*H] product.

  Written with 2-D reshapes rather than an einsum over (t, b): XLA:CPU then
  feeds both operands to the matmul without transposed copies (1.4x faster).
  """
  hidden = hs.shape[-1]
  h, g = _shift(hs).reshape(-1, hidden).T, dg.reshape(-1, dg.shape[-1])
  if dtype == jnp.float32:
    return h @ g
  return jnp.matmul(h.astype(dtype), g.astype(dtype), preferred_element_type=jnp.float32).astype(dtype)


# ---------------------------------------------------------------- GRU

def _gru_forward(gx, b, w_hh, b_hn, unroll):
  """gx [T, B, 3H] -> hs [T, B, H] and residuals [T, B, 4H]: r, z, n and hn + b_hn.

  The loop reads the three gate inputs as separate [T, B, H] arrays (one
  split before it): reading column slices of the per-step [B, 3H] slice of
  gx made XLA:CPU emit the fused gate arithmetic without vectorisation,
  ~0.6 ms a step at [64, 512], 8x the gates' cost in this form.
  """
  hidden = w_hh.shape[0]

  def step(h, xs):
    xr, xz, xn = xs
    gh = wavefront.dot(h, w_hh)
    r = jax.nn.sigmoid(xr + gh[:, :hidden] + b[:hidden])
    z = jax.nn.sigmoid(xz + gh[:, hidden:2 * hidden] + b[hidden:2 * hidden])
    hn = gh[:, 2 * hidden:] + b_hn
    n = jnp.tanh(xn + b[2 * hidden:] + r * hn)
    h = (1.0 - z) * n + z * h
    return h, (h, jnp.concatenate([r, z, n, hn], axis=-1))

  h0 = jnp.zeros(gx.shape[1:2] + (hidden,), gx.dtype)
  _, (hs, res) = jax.lax.scan(step, h0, tuple(jnp.split(gx, 3, axis=-1)), unroll=unroll)
  return hs, res


def _gru_dgates(hs, res, w_hh, dhs, unroll):
  """The backward time loop: d loss / d gx [T, B, 3H] and d loss / d (h @ W_hh) [T, B, 3H]."""
  w_hh_t = w_hh.T

  def step(dh_next, xs):
    dy, a, h_prev = xs
    r, z, n, hn = jnp.split(a, 4, axis=-1)
    dh = dy + dh_next
    dn = dh * (1 - z) * (1 - n * n)
    dr = dn * hn * r * (1 - r)
    dz = dh * (h_prev - n) * z * (1 - z)
    dgh = jnp.concatenate([dr, dz, dn * r], axis=-1)   # d(h @ W_hh)
    return dh * z + wavefront.dot(dgh, w_hh_t), (jnp.concatenate([dr, dz, dn], axis=-1), dgh)

  return jax.lax.scan(step, jnp.zeros_like(hs[0]), (dhs, res, _shift(hs)),
                      reverse=True, unroll=unroll)[1]


# ---------------------------------------------------------------- layers

@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def lstm_recurrence(gx, b, w_hh, kernel: bool = False):
  """The LSTM's time loop from zero state: gx [T, B, 4H] (= x @ W_ih), b [4H], w_hh [H, 4H] -> hs [T, B, H].

  kernel: both time loops in the C++ CPU kernel (`cpu_recurrent`; the caller checks `usable`).
  """
  return _lstm_recurrence_fwd(gx, b, w_hh, kernel)[0]


def _lstm_recurrence_fwd(gx, b, w_hh, kernel):
  if kernel:
    hs, cs, acts = cpu_recurrent.lstm_forward(gx, b, w_hh)
  else:
    hs, cs, acts = _lstm_forward(gx, b, w_hh, unroll_for(jax.default_backend()))
  return hs, (hs, cs, acts, w_hh)


def _lstm_recurrence_bwd(kernel, res, dhs):
  hs, cs, acts, w_hh = res
  dhs = axes.batch_rows(dhs, 1)  # rows local in the loop, whatever layout the layer above gave
  if kernel:
    dgates = cpu_recurrent.lstm_backward(cs, acts, w_hh, dhs)
  else:
    dgates = _lstm_dgates(hs, cs, acts, w_hh, dhs, unroll_for(jax.default_backend()))
  return dgates, dgates.sum(axis=(0, 1)), _w_hh_grad(hs, dgates, w_hh.dtype)


lstm_recurrence.defvjp(_lstm_recurrence_fwd, _lstm_recurrence_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(4,))
def gru_recurrence(gx, b, w_hh, b_hn, kernel: bool = False):
  """The GRU's time loop from zero state: gx [T, B, 3H] (= x @ W_ih), b [3H], w_hh [H, 3H], b_hn [H] -> hs [T, B, H].

  kernel: both time loops in the C++ CPU kernel (`cpu_recurrent`; the caller checks `usable`).
  """
  return _gru_recurrence_fwd(gx, b, w_hh, b_hn, kernel)[0]


def _gru_recurrence_fwd(gx, b, w_hh, b_hn, kernel):
  if kernel:
    hs, res = cpu_recurrent.gru_forward(gx, b, w_hh, b_hn)
  else:
    hs, res = _gru_forward(gx, b, w_hh, b_hn, unroll_for(jax.default_backend()))
  return hs, (hs, res, w_hh)


def _gru_recurrence_bwd(kernel, saved, dhs):
  hs, res, w_hh = saved
  dhs = axes.batch_rows(dhs, 1)
  if kernel:
    dgx, dgh = cpu_recurrent.gru_backward(hs, res, w_hh, dhs)
  else:
    dgx, dgh = _gru_dgates(hs, res, w_hh, dhs, unroll_for(jax.default_backend()))
  hidden = hs.shape[-1]
  return (dgx, dgx.sum(axis=(0, 1)), _w_hh_grad(hs, dgh, w_hh.dtype),
          dgh[..., 2 * hidden:].sum(axis=(0, 1)))


gru_recurrence.defvjp(_gru_recurrence_fwd, _gru_recurrence_bwd)


def project(x, w_ih):
  """x [T, B, in] @ w_ih [in, G*H] -> [T, B, G*H] as one 2-D matmul.

  2-D on purpose: the gradients dx = dgx @ W_ih^T and dW_ih = x^T @ dgx are
  then plain 2-D products; for the 3-D form XLA:CPU copied and transposed the
  [T, B, G*H] gradient before each product. `matmul` picks the faster CPU
  kernel for each of the three products.
  """
  t, batch, _ = x.shape
  return matmul(x.reshape(t * batch, -1), w_ih).reshape(t, batch, -1)


# ---------------------------------------------------------------- modules

class RecurrentLayer(nnx.Module):
  """One LSTM or GRU layer: [batch, time, in] -> [batch, time, hidden].

  `time_major(x)` does the same on [time, batch, in] -> [time, batch, hidden]
  without the two transposes (RecurrentLM keeps its activations time-major).
  """

  def __init__(self, kind: str, in_dim: int, hidden: int, *, rngs: nnx.Rngs, dtype=jnp.float32,
               init: str = "pytorch", cpu_kernel: bool = False, bias_pair: bool = False):
    """bias_pair: PyTorch's two bias vectors b_ih and b_hh as two parameters (`b` and
    `b_hh`) whose sum the gates add, instead of the sum as one parameter `b`. The
    function computed is the same; the training differs: Adam moves each of the
    two by a step of about lr, so their sum moves twice as far as one `b` would.
    """
    gates = {"lstm": 4, "gru": 3}[kind]
    self.kind, self.hidden, self.dtype = kind, hidden, dtype
    self.cpu_kernel = cpu_kernel  # on CPU: the time loops in the C++ kernel where it builds
    draw = initializers.pytorch_uniform(hidden)  # nn.LSTM/nn.GRU: U(-1/sqrt(H), 1/sqrt(H))
    uniform = lambda shape: draw(rngs.params(), shape)
    # Dimensions named for sharding (models/axes.py).
    self.w_ih = axes.param(uniform((in_dim, gates * hidden)), "rnn_in", "rnn_gates")
    self.w_hh = axes.param(uniform((hidden, gates * hidden)), "rnn_hidden", "rnn_gates")
    if init == "flax":
      self.b = axes.param(jnp.zeros((gates * hidden,)), "rnn_gates")
      if bias_pair:
        self.b_hh = axes.param(jnp.zeros(((gates if kind == "lstm" else 2) * hidden,)), "rnn_gates")
      if kind == "gru":
        self.b_hn = axes.param(jnp.zeros((hidden,)), "rnn_hidden")
    elif kind == "lstm":
      # PyTorch draws b_ih and b_hh, U each; their sum is the one bias used here
      # (or, bias_pair, the two are kept apart: the same draws, the same sum).
      b_ih, b_hh = uniform((4 * hidden,)), uniform((4 * hidden,))
      self.b = axes.param(b_ih if bias_pair else b_ih + b_hh, "rnn_gates")
      if bias_pair:
        self.b_hh = axes.param(b_hh, "rnn_gates")
    else:
      # GRU: r and z add b_ih + b_hh; n adds b_ih alone (b_hh's n part is b_hn, inside r * (.)).
      b_ih, b_hh = uniform((3 * hidden,)), uniform((2 * hidden,))
      self.b = axes.param(b_ih if bias_pair else b_ih + jnp.concatenate([b_hh, jnp.zeros((hidden,))]),
                          "rnn_gates")
      if bias_pair:
        self.b_hh = axes.param(b_hh, "rnn_gates")   # [2H]: the r and z parts of PyTorch's b_hh
      self.b_hn = axes.param(uniform((hidden,)), "rnn_hidden")

  def bias(self) -> jax.Array:
    """The bias the gates add [G*hidden] float32 (under bfloat16 too): `b`, plus `b_hh` where the
    pair is kept (GRU: r and z only)."""
    b = self.b[...]
    if hasattr(self, "b_hh"):
      b_hh = self.b_hh[...]
      b = b + (b_hh if self.kind == "lstm" else jnp.concatenate([b_hh, jnp.zeros((self.hidden,), b.dtype)]))
    return b.astype(jnp.float32)

  def time_major(self, x: jax.Array) -> jax.Array:
    """x [time, batch, in] -> hs [time, batch, hidden]."""
    return self.recurrence(project(x.astype(self.dtype), self.w_ih[...].astype(self.dtype)))  # bfloat16: float32 out

  def recurrence(self, gx: jax.Array) -> jax.Array:
    """gx [time, batch, G*hidden] (the input already projected, x @ W_ih) -> hs [time, batch, hidden].

    Mixed precision (dtype bfloat16): W_hh in bfloat16 for the products; gx,
    the biases, the carries (h, c), the gates and hs in float32.
    """
    kernel = self.cpu_kernel and cpu_recurrent.usable(self.dtype, self.hidden)
    w_hh = axes.gathered(self.w_hh[...].astype(self.dtype))  # sharded parameters: gathered before the loop
    gx, b = axes.batch_rows(gx.astype(jnp.float32), 1), self.bias()
    if self.kind == "lstm":
      return lstm_recurrence(gx, b, w_hh, kernel)
    return gru_recurrence(gx, b, w_hh, self.b_hn[...].astype(jnp.float32), kernel)

  def __call__(self, x: jax.Array) -> jax.Array:
    return jnp.swapaxes(self.time_major(jnp.swapaxes(x, 0, 1)), 0, 1)

  def cell(self, carry, gx: jax.Array):
    """One decoding step: carry ((h, c) or h [batch, H]), gx [batch, G*H] = x @ W_ih -> (carry, h).

    The plain cells with the bias the time loop adds: the same equations, one step.
    """
    gx = gx.astype(jnp.float32) + self.bias()
    w_hh = self.w_hh[...].astype(self.dtype)
    if self.kind == "lstm":
      return lstm_cell(carry, gx, w_hh)
    return gru_cell(carry, gx, w_hh, self.b_hn[...])


def _time_major_layer(layer: RecurrentLayer, x: jax.Array) -> jax.Array:
  return layer.time_major(x)


def _recurrence(layer: RecurrentLayer, gx: jax.Array) -> jax.Array:
  return layer.recurrence(gx)


class RecurrentLM(nnx.Module):
  """Embedding (+ optional learned positions) -> stacked LSTM/GRU -> logits.

  __call__: inputs [batch, time] int32 -> logits [batch, time, vocab] float32.
  """

  def __init__(self, cfg, *, rngs: nnx.Rngs, vocab_size: int = tokens.VOCAB_SIZE):
    dtype = jnp.dtype(cfg.dtype)
    self.vocab_size = vocab_size  # 8 nucleotide tokens, or 3 + 4^k k-mers (data.kmers)
    embed_kw, head_kw = {}, {}
    if cfg.init == "pytorch":
      # nn.Embedding draws N(0, 1), 16x Flax's default std at width 256: gates
      # then start far from the input-blind unigram plateau. nn.Linear draws
      # weight and bias from U(-1/sqrt(in), 1/sqrt(in)).
      embed_kw = initializers.embed("pytorch")
      head_kw = initializers.linear("pytorch", cfg.hidden_dim)
    self.embed = nnx.Embed(vocab_size, cfg.embed_dim, rngs=rngs,
                           embedding_metadata=axes.meta("vocab", "embed"), **embed_kw)
    self.pos = (nnx.Embed(cfg.max_len, cfg.embed_dim, rngs=rngs,
                          embedding_metadata=axes.meta("position", "embed"), **embed_kw)
                if cfg.position_embedding else None)
    dims = [cfg.embed_dim] + [cfg.hidden_dim] * cfg.num_layers
    self.remat = bool(cfg.remat)
    self.layers = nnx.List([RecurrentLayer(cfg.name, dims[i], dims[i + 1], rngs=rngs, dtype=dtype,
                                           init=cfg.init, cpu_kernel=cfg.cpu_kernel,
                                           bias_pair=bool(cfg.get("bias_pair", False)))
                            for i in range(cfg.num_layers)])
    self.head = nnx.Linear(cfg.hidden_dim, vocab_size, rngs=rngs, kernel_metadata=axes.meta(
        "rnn_hidden", "vocab"), bias_metadata=axes.meta("vocab"), **head_kw)
    # 'auto' (per backend), 'layers' or 'wavefront' (see `path`); old configs lack the field.
    self.impl = cfg.get("recurrent_impl", "auto")

  def __call__(self, inputs: jax.Array) -> jax.Array:
    path = self.path()
    if path.startswith("cudnn"):
      return self._cudnn(inputs, reference=path == "cudnn_reference")
    gx = self._first_projection(inputs)
    if path == "wavefront":
      x = self._wavefront(gx)
    else:
      first = self.layers[0]
      # remat: keep only each layer's input; its scan (and the stored gate
      # activations) is re-run in the backward pass.
      remat = nnx.remat if self.remat else (lambda f: f)
      x = remat(_recurrence)(first, gx)
      apply = remat(_time_major_layer)
      for layer in self.layers[1:]:
        x = apply(layer, x)
    return jnp.swapaxes(self.head(x.astype(jnp.float32)), 0, 1)

  def path(self) -> str:
    """Which time loop runs here: 'layers' (layer by layer: the CPU's, in the C++ kernel where it
    builds), 'wavefront' (all layers in one loop: GPU and TPU) or 'cudnn' (cuDNN's LSTM, float32 on
    NVIDIA GPUs; 'cudnn_reference': its packing through jax's pure-JAX reference, for tests).
    model.recurrent_impl picks one explicitly; 'auto' decides by the backend at trace time."""
    if self.impl == "cudnn" and not cudnn_lstm.on_cuda():
      raise UserError(f"config.model.recurrent_impl='cudnn' needs a CUDA GPU; this run's devices are "
                      f"{jax.default_backend()}: use 'auto'")
    if self.impl != "auto":
      return self.impl
    backend = jax.default_backend()
    if backend == "cpu":
      return "layers"
    first = self.layers[0]
    if backend == "gpu" and first.kind == "lstm" and first.dtype == jnp.float32 and cudnn_lstm.on_cuda():
      return "cudnn"
    return "wavefront"

  def _cudnn(self, inputs: jax.Array, reference: bool) -> jax.Array:
    """inputs [B, T] int32 -> logits [B, T, V] through cuDNN's stacked LSTM (batch-first, float32)."""
    x = self.embed(inputs).astype(jnp.float32)                                # [B, T, E]
    if self.pos is not None:
      x = x + self.pos.embedding[...][:inputs.shape[1]][None].astype(jnp.float32)
    weights = cudnn_lstm.pack([l.w_ih[...] for l in self.layers], [l.w_hh[...] for l in self.layers],
                              [l.bias() for l in self.layers])
    y = cudnn_lstm.stack(x, weights, self.layers[0].hidden, len(self.layers), reference=reference)
    return self.head(y)

  def _first_projection(self, inputs: jax.Array) -> jax.Array:
    """inputs [batch, time] int32 -> the first layer's x @ W_ih [time, batch, G*H].

    With a vocabulary of 8, embed(tokens) @ W_ih = (E @ W_ih)[tokens], a lookup
    in an [8, G*H] table (and positions likewise, [T, G*H]). This skips the
    [T*B, E] @ [E, G*H] product forward and both of its gradient products
    backward (the table's gradient is one-hot^T @ dgx, 8 rows).
    """
    t, first = inputs.shape[1], self.layers[0]
    w_ih = first.w_ih[...].astype(first.dtype)
    table = wavefront.dot(self.embed.embedding[...].astype(first.dtype), w_ih)  # [V, G*H] float32
    # Time-major throughout: only the small logits [T, B, V] are transposed back.
    if self.vocab_size <= 256:
      one_hot = jax.nn.one_hot(inputs.T, self.vocab_size, dtype=table.dtype)  # [T, B, V]
      # A plain dot, not `project`: matmul's CPU convolution was only measured faster for large K, not K = 8.
      gx = (one_hot.reshape(-1, self.vocab_size) @ table).reshape(t, inputs.shape[0], -1)
    else:  # large k-mer vocabularies: a gather, not a [T*B, V] one-hot product
      gx = table[inputs.T]
    if self.pos is not None:
      pos = wavefront.dot(self.pos.embedding[...][:t].astype(first.dtype), w_ih)  # [T, G*H]
      gx = gx + pos[:, None]
    return gx

  def _wavefront(self, gx: jax.Array) -> jax.Array:
    """gx [T, B, G*H] (layer 0's input projection) -> the last layer's hs [T, B, H], all layers in one loop."""
    dtype, hidden = self.layers[0].dtype, self.layers[0].hidden
    # Sharded parameters are gathered once here, not inside the loop.
    weights = lambda name, layers: axes.gathered(
        jnp.stack([getattr(l, name)[...].astype(dtype) for l in layers]))
    w_hh = weights("w_hh", self.layers)
    w_ih = (weights("w_ih", self.layers[1:]) if len(self.layers) > 1
            else jnp.zeros((0, hidden, w_hh.shape[-1]), dtype))
    b = axes.gathered(jnp.stack([l.bias() for l in self.layers]))  # biases, carries and gates stay float32
    unroll = unroll_for(jax.default_backend())
    gx = axes.batch_rows(gx, 1)  # each device's rows stay on it through the loop
    if self.layers[0].kind == "lstm":
      fn = functools.partial(wavefront.lstm_wavefront, unroll=unroll)
      args = (gx, b, w_ih, w_hh)
    else:
      fn = functools.partial(wavefront.gru_wavefront, unroll=unroll)
      args = (gx, b, w_ih, w_hh, axes.gathered(jnp.stack([l.b_hn[...] for l in self.layers])))
    if self.remat:  # keep only the inputs; the loop and its residuals re-run in the backward pass
      fn = jax.checkpoint(fn)
    return fn(*args)

  def initial_carry(self, batch: int) -> tuple:
    """The zero state __call__ starts from: per layer (h, c) for LSTM, h for GRU, each [batch, hidden]
    float32 (the carries stay float32 under bfloat16)."""
    zero = lambda layer: jnp.zeros((batch, layer.hidden), jnp.float32)
    return tuple((zero(l), zero(l)) if l.kind == "lstm" else zero(l) for l in self.layers)

  def decode_step(self, carry: tuple, token: jax.Array, position) -> tuple[tuple, jax.Array]:
    """One token per sequence, carrying the state (generation, no recomputation).

    carry from `initial_carry` or a previous step; token [batch] int32 at input
    position `position` (BOS is position 0) -> (carry, logits [batch, vocab]
    float32): the logits __call__ gives at that position, from the same parameters.
    """
    first = self.layers[0]
    w_ih = first.w_ih[...].astype(first.dtype)
    gx = wavefront.dot(self.embed.embedding[...].astype(first.dtype), w_ih)[token]  # [B, G*H]
    if self.pos is not None:
      gx = gx + wavefront.dot(self.pos.embedding[...][position].astype(first.dtype), w_ih)
    new, x = [], None
    for i, layer in enumerate(self.layers):
      if i:
        gx = wavefront.dot(x, layer.w_ih[...].astype(layer.dtype))
      state, x = layer.cell(carry[i], gx)
      new.append(state)
    return tuple(new), self.head(x.astype(jnp.float32))
