"""JAX's persistent compilation cache, on by default for the command line.

Every batch length is one compiled program (seconds each on a CPU); with the
cache, a resumed run, a second seed or the next point of a study loads them
instead of compiling again. The folder is $DNAGEN_JAX_XLA_CACHE (default
~/.cache/dnagen_jax/xla-<key>), the key hashing the jax version and the CPU's
model and feature flags, so that a cache on a shared home directory never
hands a program built for one CPU type to another. DNAGEN_JAX_XLA_CACHE=off
turns it off; a cache directory already configured (as the tests do) is kept.
"""

from __future__ import annotations

import hashlib
import os

import jax

from dnagen_jax.models import cpu_kernels


def enable() -> str | None:
  """Turns the cache on (unless configured or switched off); returns its folder."""
  if jax.config.jax_compilation_cache_dir:
    return jax.config.jax_compilation_cache_dir
  folder = os.environ.get("DNAGEN_JAX_XLA_CACHE", "")
  if folder.lower() in ("off", "0", "false"):
    return None
  if not folder:
    key = hashlib.sha256(f"{jax.__version__}|{cpu_kernels.cpu_features()}".encode()).hexdigest()
    folder = os.path.join("~", ".cache", "dnagen_jax", f"xla-{key[:12]}")
  folder = os.path.expanduser(folder)
  jax.config.update("jax_compilation_cache_dir", folder)
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)  # skip trivial programs
  return folder
