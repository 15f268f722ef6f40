"""The device mesh: one 'data' axis over every device (data parallelism).

Parameters are replicated; batches are split along their first dimension.
On several hosts, each process feeds its own rows and
`jax.make_array_from_process_local_data` stitches the global batch.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P


def make_mesh(devices=None) -> Mesh:
  """A 'data' mesh over `devices` (default: every device of every process)."""
  # Mesh(...) directly: jax.make_mesh's Explicit axes break embedding lookups.
  return Mesh(np.asarray(jax.devices() if devices is None else devices), ("data",))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharded(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P("data"))


def round_to_devices(batch_size: int, mesh: Mesh) -> int:
  """Smallest multiple of the device count that is >= batch_size."""
  n = mesh.size
  return -(-batch_size // n) * n


def put_batch(batch: dict, mesh: Mesh) -> dict:
  """Global host batch [B, ...] -> global arrays split over 'data'.

  Every process computes the same global batch (it is a function of the step);
  each hands JAX only its own rows, so several hosts need no data exchange.
  """
  sharding = batch_sharded(mesh)
  n, i = jax.process_count(), jax.process_index()

  def local(v):
    v = np.asarray(v)
    rows = v.shape[0] // n
    return v[i * rows:(i + 1) * rows]

  return {k: jax.make_array_from_process_local_data(sharding, local(v), v.shape)
          for k, v in batch.items()}
