"""Building and registering the C++ CPU kernels (`kernels/*.cc`) with XLA's FFI.

Each kernel source is compiled once per machine type with the system C++
compiler ($CXX, else g++) and `-march=native`, into
$DNAGEN_JAX_KERNEL_CACHE (default ~/.cache/dnagen_jax/kernels). The file name
holds a hash of the source, the shared header, the flags, the jaxlib version
and the CPU's feature flags, so a cache on a shared home directory serves
every node type of a cluster without handing one node's AVX-512 code to
another. When no compiler is found or the build fails, `register` logs one
line and returns False, and the model uses its XLA form instead.
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
import jaxlib
from absl import logging

KERNELS = pathlib.Path(__file__).with_name("kernels")
HEADER = KERNELS / "simd.h"  # vector type, exp, the thread loop: included by every kernel
FLAGS = ("-O3", "-march=native", "-ffp-contract=fast", "-std=c++17", "-shared", "-fPIC")


def cpu_features() -> str:
  """The CPU's model and feature flags (what -march=native compiles for)."""
  try:
    lines = pathlib.Path("/proc/cpuinfo").read_text().splitlines()
    return "|".join(next(l for l in lines if l.startswith(k)) for k in ("model name", "flags"))
  except (OSError, StopIteration):
    return platform.processor() or platform.machine()


def build(name: str, cache_dir: str | os.PathLike | None = None,
          compiler: str | None = None) -> pathlib.Path:
  """Compiles kernels/<name>.cc unless this machine type's build is cached; returns the .so path.

  Raises RuntimeError (one line) when there is no compiler or it fails.
  """
  source = KERNELS / f"{name}.cc"
  compiler = compiler or os.environ.get("CXX", "g++")
  if shutil.which(compiler) is None:
    raise RuntimeError(f"no C++ compiler {compiler!r} on PATH (set $CXX)")
  cache = pathlib.Path(cache_dir or os.environ.get("DNAGEN_JAX_KERNEL_CACHE")
                       or pathlib.Path.home() / ".cache" / "dnagen_jax" / "kernels")
  key = hashlib.sha256("\n".join([source.read_text(), HEADER.read_text(), " ".join(FLAGS), compiler,
                                  jaxlib.__version__, cpu_features()]).encode()).hexdigest()[:16]
  target = cache / f"{name}-{key}.so"
  if target.exists():
    return target
  cache.mkdir(parents=True, exist_ok=True)
  # Built under a temporary name and renamed: processes that build at once never load half a file.
  with tempfile.TemporaryDirectory(dir=cache) as tmp:
    out = pathlib.Path(tmp) / target.name
    cmd = [compiler, *FLAGS, f"-I{jax.ffi.include_dir()}", str(source), "-o", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
      errors = [l for l in done.stderr.splitlines() if "error" in l] or done.stderr.splitlines()
      raise RuntimeError(f"{compiler} failed on {source.name}: {(errors or ['no output'])[0]}")
    os.replace(out, target)
  return target


@functools.cache
def register(name: str, targets: tuple[tuple[str, str], ...]) -> bool:
  """Builds (or finds) kernels/<name>.cc and registers each (FFI target, C symbol) once per
  process; False, after one logged line, if it cannot."""
  try:
    lib = ctypes.cdll.LoadLibrary(str(build(name)))
  except (OSError, RuntimeError) as e:
    logging.warning("CPU kernel %s unavailable, using the XLA form instead: %s", name, e)
    return False
  for target, symbol in targets:
    jax.ffi.register_ffi_target(target, jax.ffi.pycapsule(getattr(lib, symbol)), platform="cpu")
  return True
