"""Large 2-D matrix products, sent to XLA:CPU's faster kernel, with their VJP.

`matmul(x, w)` is `x @ w` for x [M, K], w [K, N] -> [M, N]. On CPU the
forward product and the input gradient dx = dy @ w^T run as convolutions
with no spatial dimensions (batch M, features K -> N): jaxlib 0.10's XLA:CPU
sends `dot` to YNNPACK and convolutions to Eigen's contraction, and for the
models' large products Eigen is the faster (measured in one process:
[16384, 512] @ [512, 2048] 175 against 154 GFLOP/s, dx 215 against 169;
[16384, 256] @ [256, 1024] 152 against 103). The weight gradient x^T @ dy
stays a dot, where YNNPACK is the faster (199 against 159). The small
per-step products inside the recurrent loops also stay dots: for M = 64 the
order reverses. On GPU and TPU every product is a plain dot.
`tests/test_models.py` checks values and gradients against `x @ w`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax


def _as_conv(x: jax.Array, w: jax.Array, kernel_spec: str) -> jax.Array:
  """x [M, in] with kernel w read as `kernel_spec` ('IO': [in, out]; 'OI': [out, in]) -> [M, out]."""
  return lax.conv_general_dilated(x, w, window_strides=(), padding="VALID",
                                  dimension_numbers=("NC", kernel_spec, "NC"))


def _nn(x: jax.Array, w: jax.Array) -> jax.Array:
  """x [M, K] @ w [K, N] -> [M, N]."""
  return lax.platform_dependent(x, w, cpu=lambda x, w: _as_conv(x, w, "IO"),
                                default=jnp.matmul)


def _nt(dy: jax.Array, w: jax.Array) -> jax.Array:
  """dy [M, N] @ w^T for w [K, N] -> [M, K], without transposing w."""
  return lax.platform_dependent(dy, w, cpu=lambda dy, w: _as_conv(dy, w, "OI"),
                                default=lambda dy, w: dy @ w.T)


@jax.custom_vjp
def matmul(x: jax.Array, w: jax.Array) -> jax.Array:
  """x [M, K] @ w [K, N] -> [M, N] (see the module docstring for how)."""
  return _nn(x, w)


def _matmul_fwd(x, w):
  return _nn(x, w), (x, w)


def _matmul_bwd(res, dy):
  x, w = res
  return _nt(dy, w).astype(x.dtype), (x.T @ dy).astype(w.dtype)


matmul.defvjp(_matmul_fwd, _matmul_bwd)


def dense(layer, x: jax.Array) -> jax.Array:
  """An `nnx.Linear` applied through `matmul`: x [M, in] -> [M, out] in the layer's dtype."""
  dtype = layer.dtype or x.dtype
  y = matmul(x.astype(dtype), layer.kernel[...].astype(dtype))
  return y if layer.bias is None else y + layer.bias[...].astype(dtype)
