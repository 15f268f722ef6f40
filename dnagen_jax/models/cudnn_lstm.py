"""The stacked LSTM through cuDNN (`jax.experimental.rnn`), on NVIDIA GPUs.

cuDNN runs all layers and time steps of an LSTM in its own fused kernels,
forward and backward. `jax.experimental.rnn.lstm` wraps it with three limits:
LSTM only (no GRU), float32 only, batch-first input. Its weights are one flat
vector in cuDNN's layout: per layer W_ih [4H, in] then W_hh [4H, H] (rows in
PyTorch's gate order i, f, g, o, the order `recurrent.py` uses), then per
layer b_ih [4H] and b_hh [4H]. `pack` builds that vector from the same
parameters as the other paths (W stored [in, 4H] here, so transposed; the
one bias of `RecurrentLayer` as b_ih, zeros as b_hh), inside the jitted step,
so gradients flow back to those parameters.

The cuDNN call has no rule for XLA's SPMD partitioner; under a batch-sharded
jit it would gather the whole batch onto every device. `stack` therefore runs
it under `shard_map`: each device runs cuDNN on its own rows ('data' and
'fsdp' mesh axes), the weights whole (gathered once, outside the loop).
`reference=True` runs the same packing and sharding through `lstm_ref`, the
pure-JAX reference that ships with `jax.experimental.rnn`: how the path is
tested on the CPU.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.experimental import rnn
from jax.sharding import PartitionSpec as P

from dnagen_jax.models import axes as model_axes



def on_cuda() -> bool:
  """Whether the default devices are CUDA GPUs (cuDNN), not ROCm or another backend."""
  device = jax.devices()[0]
  version = str(getattr(device.client, "platform_version", "")).lower()
  return device.platform == "gpu" and "rocm" not in version


def pack(w_ih: list, w_hh: list, b: list) -> jax.Array:
  """Per layer w_ih [in, 4H], w_hh [H, 4H], b [4H] -> cuDNN's flat weight vector [n] (float32)."""
  weights = [w.T.reshape(-1) for pair in zip(w_ih, w_hh) for w in pair]
  biases = [v for bias in b for v in (bias, jnp.zeros_like(bias))]
  return jnp.concatenate(weights + biases).astype(jnp.float32)


def _run(x, weights, hidden: int, layers: int, reference: bool):
  """x [B, T, in] float32 -> y [B, T, H] from the zero state, every sequence T long."""
  batch, t, in_dim = x.shape
  h0 = jnp.zeros((layers, batch, hidden), jnp.float32)
  lengths = jnp.full((batch,), t, jnp.int32)
  if reference:
    w_ih, w_hh, b_ih, b_hh = rnn.unpack_lstm_weights(weights, in_dim, hidden, layers, False)
    y, _, _ = rnn.lstm_ref(x, h0, h0, w_ih, w_hh, b_ih, b_hh, lengths, in_dim, hidden, layers,
                           0.0, False)
  else:
    y, _, _ = rnn.lstm(x, h0, h0, weights, lengths, in_dim, hidden, layers, 0.0, False)
  return y


def stack(x: jax.Array, weights: jax.Array, hidden: int, layers: int,
          reference: bool = False) -> jax.Array:
  """The stacked LSTM: x [B, T, in] float32, `pack`ed weights -> y [B, T, H] float32.

  Under a mesh (the abstract mesh the compiled steps set), each device runs
  its own rows; otherwise one call over the whole batch.
  """
  run = lambda x, w: _run(x, w, hidden, layers, reference)
  mesh = jax.sharding.get_abstract_mesh()
  axes = tuple(a for a in model_axes.BATCH_AXES if not mesh.empty and a in mesh.axis_names)
  if not axes:
    return run(x, weights)
  rows = P(axes)
  return jax.shard_map(run, in_specs=(rows, P()), out_specs=rows, check_vma=False)(x, weights)
