"""The causal attention's CPU kernel: built on first use, registered with XLA, called through the FFI.

`kernels/causal_attention_cpu.cc` is compiled once per machine type with the
system C++ compiler ($CXX, else g++) and `-march=native`, into
$DNAGEN_JAX_KERNEL_CACHE (default ~/.cache/dnagen_jax/kernels). The file name
holds a hash of the source, the flags, the jaxlib version and the CPU's
feature flags, so a cache on a shared home directory serves every node type
of a cluster without handing one node's AVX-512 code to another. When no
compiler is found or the build fails, `available()` logs one line and
returns False, and the transformer uses its XLA form instead.

The kernel treats every (sequence, head) pair as independent, so its calls
carry a partitioning rule: under a batch-sharded jit each device runs its
own share, without collectives.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import pathlib
import platform
import shutil
import subprocess
import tempfile

import jax
import jax.numpy as jnp
import jaxlib
import numpy as np
from absl import logging
from jax.experimental.custom_partitioning import custom_partitioning
from jax.sharding import NamedSharding, PartitionSpec as P

SOURCE = pathlib.Path(__file__).with_name("kernels") / "causal_attention_cpu.cc"
FLAGS = ("-O3", "-march=native", "-ffp-contract=fast", "-std=c++17", "-shared", "-fPIC")
_FORWARD = "dnagen_causal_attention_forward"
_BACKWARD = "dnagen_causal_attention_backward"


def cpu_features() -> str:
  """The CPU's model and feature flags (what -march=native compiles for)."""
  try:
    lines = pathlib.Path("/proc/cpuinfo").read_text().splitlines()
    return "|".join(next(l for l in lines if l.startswith(k)) for k in ("model name", "flags"))
  except (OSError, StopIteration):
    return platform.processor() or platform.machine()


def build(cache_dir: str | os.PathLike | None = None, compiler: str | None = None) -> pathlib.Path:
  """Compiles the kernel unless this machine type's build is cached; returns the .so path.

  Raises RuntimeError (one line) when there is no compiler or it fails.
  """
  compiler = compiler or os.environ.get("CXX", "g++")
  if shutil.which(compiler) is None:
    raise RuntimeError(f"no C++ compiler {compiler!r} on PATH (set $CXX)")
  cache = pathlib.Path(cache_dir or os.environ.get("DNAGEN_JAX_KERNEL_CACHE")
                       or pathlib.Path.home() / ".cache" / "dnagen_jax" / "kernels")
  key = hashlib.sha256("\n".join([SOURCE.read_text(), " ".join(FLAGS), compiler,
                                  jaxlib.__version__, cpu_features()]).encode()).hexdigest()[:16]
  target = cache / f"causal_attention_cpu-{key}.so"
  if target.exists():
    return target
  cache.mkdir(parents=True, exist_ok=True)
  # Built under a temporary name and renamed: processes that build at once never load half a file.
  with tempfile.TemporaryDirectory(dir=cache) as tmp:
    out = pathlib.Path(tmp) / target.name
    cmd = [compiler, *FLAGS, f"-I{jax.ffi.include_dir()}", str(SOURCE), "-o", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
      errors = [l for l in done.stderr.splitlines() if "error" in l] or done.stderr.splitlines()
      raise RuntimeError(f"{compiler} failed on {SOURCE.name}: {(errors or ['no output'])[0]}")
    os.replace(out, target)
  return target


@functools.cache
def available() -> bool:
  """Builds (or finds) and registers the kernel once per process; False if it cannot."""
  try:
    lib = ctypes.cdll.LoadLibrary(str(build()))
  except (OSError, RuntimeError) as e:
    logging.warning("CPU attention kernel unavailable, using XLA's attention instead: %s", e)
    return False
  for name, symbol in ((_FORWARD, lib.DnagenCausalAttentionForward),
                       (_BACKWARD, lib.DnagenCausalAttentionBackward)):
    jax.ffi.register_ffi_target(name, jax.ffi.pycapsule(symbol), platform="cpu")
  return True


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
