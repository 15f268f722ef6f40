"""The device mesh: axes ('data', 'fsdp', 'tensor') over every device.

The batch is split over 'data' and 'fsdp' together (every device holds its
own rows). Parameters and their optimizer state are replicated over 'data'
and split over 'fsdp' (fully sharded data parallelism: each device stores
1/fsdp of every large parameter, and XLA gathers a parameter where it is
used); 'tensor' (size 1 for now) is the room for splitting layers' insides.
Which dimension of which parameter is split follows from the models'
logical axis names (`models/axes.py`) and `LOGICAL_RULES`, the way the Flax
GSPMD guide and MaxText do it; a dimension that the axis does not divide
stays whole. With train.fsdp = 1 (the default) everything is replicated.
On several hosts, each process feeds its own rows and
`jax.make_array_from_process_local_data` stitches the global batch.
"""

from __future__ import annotations

import contextlib

import jax
import numpy as np
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from dnagen_jax.errors import UserError

AXES = ("data", "fsdp", "tensor")
BATCH = ("data", "fsdp")  # mesh axes the batch is split over

# Logical parameter dimension -> mesh axis (models/axes.py names the dimensions).
LOGICAL_RULES = (
    ("embed", "fsdp"), ("rnn_in", "fsdp"), ("rnn_hidden", "fsdp"),
    ("qkv", "tensor"), ("heads", "tensor"), ("mlp", "tensor"),
    ("rnn_gates", None), ("vocab", None), ("position", None),
)


def make_mesh(devices=None, fsdp: int = 1) -> Mesh:
  """A ('data', 'fsdp', 'tensor') mesh over `devices` (default: every device of every process).

  fsdp: devices each parameter is split over (must divide the device count);
  the rest of the devices form the 'data' axis.
  """
  devices = np.asarray(jax.devices() if devices is None else devices)
  if fsdp < 1 or devices.size % fsdp:
    raise UserError(f"train.fsdp={fsdp} must divide the {devices.size} devices of this run "
                    f"(e.g. 1, or {devices.size})")
  # Mesh(...) directly: jax.make_mesh's Explicit axes break embedding lookups.
  return Mesh(devices.reshape(devices.size // fsdp, fsdp, 1), AXES)


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharded(mesh: Mesh) -> NamedSharding:
  """Split along the first dimension over the batch axes (those of BATCH the mesh has)."""
  return NamedSharding(mesh, P(tuple(a for a in BATCH if a in mesh.axis_names)))


def _fit(spec: P, shape, mesh: Mesh) -> P:
  """spec with the mesh axes of size 1, and those that do not divide their dimension, left out."""
  out = []
  for dim, names in zip(shape, tuple(spec) + (None,) * (len(shape) - len(spec))):
    names = (names,) if isinstance(names, str) else tuple(names or ())
    names = tuple(n for n in names if mesh.shape.get(n, 1) > 1)
    size = int(np.prod([mesh.shape[n] for n in names])) if names else 1
    out.append(None if not names or dim % size else (names[0] if len(names) == 1 else names))
  while out and out[-1] is None:  # P('fsdp', None) is P('fsdp'); all None is P(), replicated
    out.pop()
  return P(*out)


def state_shardings(state, mesh: Mesh):
  """NamedShardings for an nnx State (model parameters and/or optimizer state): the same tree.

  Each array's PartitionSpec comes from its variable's logical axis names
  under LOGICAL_RULES (Adam's moments carry their parameter's names); arrays
  without names (step counts, scalars) are replicated.
  """
  with nnx.logical_axis_rules(LOGICAL_RULES):
    specs = nnx.get_partition_spec(state)
  is_spec = lambda x: isinstance(x, P)
  return jax.tree.map(lambda spec, x: NamedSharding(mesh, _fit(spec, np.shape(x), mesh)),
                      specs, state, is_leaf=is_spec)


def sharded_parameters(mesh: Mesh) -> bool:
  """Whether parameters are split on `mesh` (an axis other than 'data' larger than 1)."""
  return any(mesh.shape.get(a, 1) > 1 for a in AXES[1:])


def tracing_context(mesh: Mesh):
  """The context the compiled steps are traced in: the mesh's abstract mesh where it matters.

  Models read it (`jax.sharding.get_abstract_mesh()`) to gather sharded
  weights before a time loop and to run cuDNN's LSTM per device under
  shard_map. Unsharded CPU runs trace without it, exactly as before.
  """
  if sharded_parameters(mesh) or jax.default_backend() != "cpu":
    return jax.sharding.use_abstract_mesh(mesh.abstract_mesh)
  return contextlib.nullcontext()


def round_to_devices(batch_size: int, mesh: Mesh) -> int:
  """Smallest multiple of the device count that is >= batch_size."""
  n = mesh.size
  return -(-batch_size // n) * n


def process_rows(batch_size: int) -> tuple[int, int]:
  """(first, stop): the rows of a global batch that this process feeds (its devices' rows)."""
  n, i = jax.process_count(), jax.process_index()
  rows = batch_size // n
  return i * rows, (i + 1) * rows


def put_local_batch(batch: dict, mesh: Mesh, batch_size: int) -> dict:
  """This process's rows [batch_size / processes, ...] -> global arrays [batch_size, ...] split
  over 'data' and 'fsdp' (`jax.make_array_from_process_local_data`; no data exchange)."""
  sharding = batch_sharded(mesh)
  return {k: jax.make_array_from_process_local_data(
      sharding, np.asarray(v), (batch_size,) + np.shape(v)[1:]) for k, v in batch.items()}


def put_batch(batch: dict, mesh: Mesh) -> dict:
  """Global host batch [B, ...] -> global arrays split over 'data' and 'fsdp'.

  Every process holds the same global batch here; each hands JAX only its own
  rows. (Training builds only its own rows in the first place: `put_local_batch`.)
  """
  first, stop = process_rows(len(next(iter(batch.values()))))
  size = len(next(iter(batch.values())))
  return put_local_batch({k: np.asarray(v)[first:stop] for k, v in batch.items()}, mesh, size)
