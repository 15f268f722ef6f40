"""Logical axis names on the models' parameters, for sharding them (FSDP) on a device mesh.

Every parameter carries Flax NNX sharding metadata (`out_sharding`) naming
its dimensions logically: 'vocab', 'position', 'embed', 'rnn_in',
'rnn_hidden', 'rnn_gates', 'qkv', 'heads', 'mlp'. The models know nothing of
meshes: `runtime.mesh_utils.LOGICAL_RULES` maps these names onto the mesh
axes ('data', 'fsdp', 'tensor'), the way the Flax GSPMD guide and MaxText do,
and `nnx.get_partition_spec` under `nnx.logical_axis_rules` turns them into
each parameter's (and its Adam moments') PartitionSpec.

eager_sharding=False: the names are only read when the compiled steps are
built, so a model can be created (and tested) without any mesh.
"""

from __future__ import annotations

import jax
from flax import nnx
from jax.sharding import PartitionSpec as P

# Mesh axes the parameters may be split over; the batch is split over 'data' and 'fsdp'.
PARAMETER_AXES = ("fsdp", "tensor")
BATCH_AXES = ("data", "fsdp")


def param(value: jax.Array, *names: str | None) -> nnx.Param:
  """nnx.Param(value) whose dimensions are named `names` (one per dimension)."""
  return nnx.Param(value, out_sharding=names, eager_sharding=False)


def meta(*names: str | None) -> dict:
  """The metadata that names a parameter's dimensions (nnx.Linear's kernel_metadata, bias_metadata,
  nnx.Embed's embedding_metadata, nnx.LayerNorm's scale_metadata)."""
  return {"out_sharding": names, "eager_sharding": False}


def gathered(w: jax.Array) -> jax.Array:
  """w whole on every device: one all-gather before a time loop instead of one per step.

  A no-op unless the compiled step runs under a mesh (its abstract mesh) whose
  parameter axes are larger than 1; so unsharded runs compile as before.
  """
  mesh = jax.sharding.get_abstract_mesh()
  if mesh.empty or all(mesh.shape.get(a, 1) == 1 for a in PARAMETER_AXES):
    return w
  return jax.lax.with_sharding_constraint(w, P())


def batch_rows(x: jax.Array, axis: int) -> jax.Array:
  """x split over the batch axes along `axis` (its batch dimension), whole along the others.

  Pins a time loop's inputs ([T, B, ...]: axis 1) to the layout that keeps each
  device's rows local: left to itself, the partitioner may split another
  dimension (time, or the gates after a product with a split weight) and
  then move data between devices at every step. A no-op without a mesh.
  """
  mesh = jax.sharding.get_abstract_mesh()
  if mesh.empty:
    return x
  names = tuple(a for a in BATCH_AXES if mesh.shape.get(a, 1) > 1)
  if not names:
    return x
  spec = [None] * x.ndim
  spec[axis] = names
  return jax.lax.with_sharding_constraint(x, P(*spec))
