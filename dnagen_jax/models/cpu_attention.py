"""The causal attention's CPU kernel (`kernels/causal_attention_cpu.cc`), called through the FFI.

Built on first use and registered by `cpu_kernels`; when it cannot be built,
`available()` is False and the transformer uses its XLA form instead.

The kernel treats every (sequence, head) pair as independent, so its calls
carry a partitioning rule: under a batch-sharded jit each device runs its
own share, without collectives.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental.custom_partitioning import custom_partitioning
from jax.sharding import NamedSharding, PartitionSpec as P

from dnagen_jax.models import cpu_kernels

_FORWARD = "dnagen_causal_attention_forward"
_BACKWARD = "dnagen_causal_attention_backward"


def available() -> bool:
  """Builds (or finds) and registers the kernel once per process; False if it cannot."""
  return cpu_kernels.register("causal_attention_cpu", ((_FORWARD, "DnagenCausalAttentionForward"),
                                                       (_BACKWARD, "DnagenCausalAttentionBackward")))


def usable(dtype) -> bool:
  """Whether attention in `dtype` runs in the kernel here: CPU, float32, and it builds."""
  return jax.default_backend() == "cpu" and dtype == jnp.float32 and available()


def _batch_partitioned(fn, rule: str):
  """fn with a rule for the SPMD partitioner: the leading (batch, head) dims may be split
  over devices, each running fn on its share; time and head_dim stay whole."""
  fn = custom_partitioning(fn)

  def partition(mesh, arg_shapes, result_shape):
    spec = tuple(arg_shapes[0].sharding.spec)[:2]  # q's split of (batch, head)
    keep = lambda x: NamedSharding(mesh, P(*spec, *[None] * (len(x.shape) - 2)))
    return mesh, fn, jax.tree.map(keep, result_shape), jax.tree.map(keep, arg_shapes)

  fn.def_partition(partition=partition, sharding_rule=rule, need_replication_factors=("t", "d"))
  return fn


@functools.cache
def _calls(block: int):
  """(forward, backward) FFI calls with `block` bound, each split over devices by (batch, head)."""
  def fwd(q, k, v):
    out = (jax.ShapeDtypeStruct(q.shape, jnp.float32), jax.ShapeDtypeStruct(q.shape[:-1], jnp.float32))
    return jax.ffi.ffi_call(_FORWARD, out, vmap_method="broadcast_all")(q, k, v, block=np.int64(block))

  def bwd(q, k, v, o, lse, do):
    grad = jax.ShapeDtypeStruct(q.shape, jnp.float32)
    return jax.ffi.ffi_call(_BACKWARD, (grad,) * 3, vmap_method="broadcast_all")(
        q, k, v, o, lse, do, block=np.int64(block))

  x = "b h t d"
  return (_batch_partitioned(fwd, f"{x}, {x}, {x} -> {x}, b h t"),
          _batch_partitioned(bwd, f"{x}, {x}, {x}, {x}, b h t, {x} -> {x}, {x}, {x}"))


def forward(q: jax.Array, k: jax.Array, v: jax.Array, block: int) -> tuple[jax.Array, jax.Array]:
  """Pre-scaled q, k, v [b, h, t, d] float32 -> (o [b, h, t, d], logsumexp [b, h, t])."""
  return _calls(block)[0](q, k, v)


def backward(q, k, v, o, lse, do, block: int) -> tuple[jax.Array, jax.Array, jax.Array]:
  """(dq, dk, dv), each [b, h, t, d], of `forward`'s o given its cotangent do."""
  return _calls(block)[1](q, k, v, o, lse, do)
