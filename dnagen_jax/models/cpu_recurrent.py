"""The LSTM's and GRU's time loops in a CPU kernel (`kernels/recurrent_cpu.cc`), called through the FFI.

Built on first use and registered by `cpu_kernels`; where it cannot be built
(or H is not a multiple of 16), `usable()` is False and `recurrent.py` runs
its XLA scans instead. Both compute the same functions and save the same
residuals for `recurrent.py`'s custom VJPs.

Batch rows are independent in the recurrence, so the calls carry a
partitioning rule: under a batch-sharded jit each device runs its own rows,
without collectives.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.experimental.custom_partitioning import custom_partitioning
from jax.sharding import NamedSharding, PartitionSpec as P

from dnagen_jax.models import cpu_kernels

LANES = 16  # H must be a multiple of the widest vector (AVX-512: 16 floats)
_TARGETS = (("dnagen_lstm_forward", "DnagenLstmForward"), ("dnagen_lstm_backward", "DnagenLstmBackward"),
            ("dnagen_gru_forward", "DnagenGruForward"), ("dnagen_gru_backward", "DnagenGruBackward"))


def available() -> bool:
  """Builds (or finds) and registers the kernel once per process; False if it cannot."""
  return cpu_kernels.register("recurrent_cpu", _TARGETS)


def usable(dtype, hidden: int) -> bool:
  """Whether a recurrent layer of `hidden` units in `dtype` runs in the kernel here."""
  return (jax.default_backend() == "cpu" and dtype == jnp.float32 and hidden % LANES == 0
          and available())


def _call(target: str, rule: str, results):
  """The FFI call `target`, with a rule for the SPMD partitioner: axis 1 (batch) of its
  [T, B, .] operands and results may be split over devices, each running the kernel on its
  rows; the weights stay whole. results(*args) gives the result shapes."""

  def call(*args):
    available()  # registers the FFI targets before the first trace
    return jax.ffi.ffi_call(target, results(*args), vmap_method="sequential")(*args)

  fn = custom_partitioning(call)

  def partition(mesh, arg_shapes, result_shape):
    spec = tuple(arg_shapes[0].sharding.spec)
    rows = NamedSharding(mesh, P(None, spec[1] if len(spec) > 1 else None, None))
    whole = NamedSharding(mesh, P())
    args = tuple(rows if len(a.shape) == 3 else whole for a in arg_shapes)
    return mesh, call, jax.tree.map(lambda _: rows, result_shape), args

  # Every factor but the batch stays whole; listed in the order they first appear, as required.
  whole_factors = tuple(sorted(set(rule) - set("b ,->"), key=rule.index))
  fn.def_partition(partition=partition, sharding_rule=rule, need_replication_factors=whole_factors)
  return fn


def _f32(*shape):
  return jax.ShapeDtypeStruct(shape, jnp.float32)


_lstm_forward = _call("dnagen_lstm_forward", "t b g, g, h g -> t b h, t b h, t b g",
                      lambda gx, b, w: (_f32(*gx.shape[:2], w.shape[0]),) * 2 + (_f32(*gx.shape),))
_lstm_backward = _call("dnagen_lstm_backward", "t b h, t b g, h g, t b h -> t b g",
                       lambda cs, acts, w, dhs: _f32(*acts.shape))
_gru_forward = _call("dnagen_gru_forward", "t b g, g, h g, h -> t b h, t b f",
                     lambda gx, b, w, b_hn: (_f32(*gx.shape[:2], w.shape[0]),
                                             _f32(*gx.shape[:2], 4 * w.shape[0])))
_gru_backward = _call("dnagen_gru_backward", "t b h, t b f, h g, t b h -> t b g, t b g",
                      lambda hs, res, w, dhs: (_f32(*hs.shape[:2], w.shape[1]),) * 2)


def lstm_forward(gx, b, w_hh) -> tuple[jax.Array, jax.Array, jax.Array]:
  """gx [T, B, 4H] (= x @ W_ih), b [4H], w_hh [H, 4H] -> hs, cs [T, B, H] and the gate
  activations [T, B, 4H] (sigmoid i, sigmoid f, tanh g, sigmoid o), from the zero state."""
  return _lstm_forward(gx, b, w_hh)


def lstm_backward(cs, acts, w_hh, dhs) -> jax.Array:
  """d loss / d gates [T, B, 4H] given d loss / d hs [T, B, H] and `lstm_forward`'s cs and acts."""
  return _lstm_backward(cs, acts, w_hh, dhs)


def gru_forward(gx, b, w_hh, b_hn) -> tuple[jax.Array, jax.Array]:
  """gx [T, B, 3H], b [3H], w_hh [H, 3H], b_hn [H] -> hs [T, B, H] and the residuals
  [T, B, 4H]: r, z, n and h @ W_hn + b_hn, from the zero state."""
  return _gru_forward(gx, b, w_hh, b_hn)


def gru_backward(hs, res, w_hh, dhs) -> tuple[jax.Array, jax.Array]:
  """(d loss / d gx, d loss / d (h @ W_hh)), each [T, B, 3H], given d loss / d hs [T, B, H]."""
  return _gru_backward(hs, res, w_hh, dhs)
