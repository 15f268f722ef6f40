"""The LSTM time loop's CPU kernel (`kernels/lstm_cpu.cc`), called through the FFI.

Built on first use and registered by `cpu_kernels`; where it cannot be built
(or H is not a multiple of 16), `usable()` is False and `recurrent.py` runs
its XLA scan instead. The two compute the same function: `recurrent.py`'s
custom VJP saves the same residuals (hs, cs, gate activations) either way.

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

_FORWARD = "dnagen_lstm_forward"
_BACKWARD = "dnagen_lstm_backward"
LANES = 16  # H must be a multiple of the widest vector (AVX-512: 16 floats)


def available() -> bool:
  """Builds (or finds) and registers the kernel once per process; False if it cannot."""
  return cpu_kernels.register("lstm_cpu", ((_FORWARD, "DnagenLstmForward"),
                                           (_BACKWARD, "DnagenLstmBackward")))


def usable(dtype, hidden: int) -> bool:
  """Whether an LSTM layer of `hidden` units in `dtype` runs in the kernel here."""
  return (jax.default_backend() == "cpu" and dtype == jnp.float32 and hidden % LANES == 0
          and available())


def _rows_partitioned(fn, rule: str):
  """fn with a rule for the SPMD partitioner: axis 1 (batch) of its [T, B, .] operands and
  results may be split over devices, each running fn on its rows; weights stay whole."""
  fn = custom_partitioning(fn)

  def partition(mesh, arg_shapes, result_shape):
    spec = tuple(arg_shapes[0].sharding.spec)
    rows = NamedSharding(mesh, P(None, spec[1] if len(spec) > 1 else None, None))
    whole = NamedSharding(mesh, P())
    args = tuple(rows if len(a.shape) == 3 else whole for a in arg_shapes)
    return mesh, fn, jax.tree.map(lambda _: rows, result_shape), args

  # Factors in the order they first appear in the rule, as the partitioner requires.
  whole_factors = tuple(sorted("thg", key=rule.index))
  fn.def_partition(partition=partition, sharding_rule=rule, need_replication_factors=whole_factors)
  return fn


def _forward_call(gx, b, w_hh):
  t, batch, _ = gx.shape
  state = jax.ShapeDtypeStruct((t, batch, w_hh.shape[0]), jnp.float32)
  out = (state, state, jax.ShapeDtypeStruct(gx.shape, jnp.float32))
  return jax.ffi.ffi_call(_FORWARD, out, vmap_method="sequential")(gx, b, w_hh)


def _backward_call(cs, acts, w_hh, dhs):
  return jax.ffi.ffi_call(_BACKWARD, jax.ShapeDtypeStruct(acts.shape, jnp.float32),
                          vmap_method="sequential")(cs, acts, w_hh, dhs)


_forward = _rows_partitioned(_forward_call, "t b g, g, h g -> t b h, t b h, t b g")
_backward = _rows_partitioned(_backward_call, "t b h, t b g, h g, t b h -> t b g")


def forward(gx: jax.Array, b: jax.Array, w_hh: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
  """gx [T, B, 4H] (= x @ W_ih), b [4H], w_hh [H, 4H] -> hs, cs [T, B, H] and the gate
  activations [T, B, 4H] (sigmoid i, sigmoid f, tanh g, sigmoid o), from the zero state."""
  available()  # registers the FFI targets before the first trace
  return _forward(gx, b, w_hh)


def backward(cs, acts, w_hh, dhs) -> jax.Array:
  """d loss / d gates [T, B, 4H] given d loss / d hs [T, B, H] and `forward`'s cs and activations."""
  available()
  return _backward(cs, acts, w_hh, dhs)
