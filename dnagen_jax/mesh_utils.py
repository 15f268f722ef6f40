"""The device mesh: one 'data' axis over every device (data parallelism).

Parameters are replicated; batches are split along their first dimension.
On several hosts, each process feeds its own rows and
`jax.make_array_from_process_local_data` stitches the global batch.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P


def make_mesh() -> Mesh:
  # Mesh(...) directly: jax.make_mesh's Explicit axes break embedding lookups.
  return Mesh(np.asarray(jax.devices()), ("data",))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharded(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P("data"))


def round_to_devices(batch_size: int, mesh: Mesh) -> int:
  """Smallest multiple of the device count that is >= batch_size."""
  n = mesh.size
  return -(-batch_size // n) * n


def put_batch(batch: dict, mesh: Mesh) -> dict:
  """Host numpy batch -> global arrays split over 'data'."""
  sharding = batch_sharded(mesh)
  return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v)) for k, v in batch.items()}
