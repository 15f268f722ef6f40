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
order reverses. On GPU and TPU every product is a plain dot. Mixed precision:
bfloat16 operands give float32 results (`preferred_element_type`).
`tests/test_models.py` checks values and gradients against `x @ w`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax


def _wide(x: jax.Array):
  """The result dtype asked of XLA: None (the inputs', float32) or float32 for 16-bit inputs."""
  return None if x.dtype == jnp.float32 else jnp.float32


def _as_conv(x: jax.Array, w: jax.Array, kernel_spec: str, out=None) -> jax.Array:
  """x [M, in] with kernel w read as `kernel_spec` ('IO': [in, out]; 'OI': [out, in]) -> [M, out]."""
  return lax.conv_general_dilated(x, w, window_strides=(), padding="VALID",
                                  dimension_numbers=("NC", kernel_spec, "NC"),
                                  preferred_element_type=out)


def _nn(x: jax.Array, w: jax.Array) -> jax.Array:
  """x [M, K] @ w [K, N] -> [M, N]."""
  if x.dtype == jnp.float32:
    return lax.platform_dependent(x, w, cpu=lambda x, w: _as_conv(x, w, "IO"),
                                  default=jnp.matmul)
  out = _wide(x)
  return lax.platform_dependent(x, w, cpu=lambda x, w: _as_conv(x, w, "IO", out),
                                default=lambda x, w: jnp.matmul(x, w, preferred_element_type=out))


def _nt(dy: jax.Array, w: jax.Array) -> jax.Array:
  """dy [M, N] @ w^T for w [K, N] -> [M, K], without transposing w."""
  if dy.dtype == jnp.float32:
    return lax.platform_dependent(dy, w, cpu=lambda dy, w: _as_conv(dy, w, "OI"),
                                  default=lambda dy, w: dy @ w.T)
  out = _wide(dy)
  return lax.platform_dependent(
      dy, w, cpu=lambda dy, w: _as_conv(dy, w, "OI", out),
      default=lambda dy, w: jnp.matmul(dy, w.T, preferred_element_type=out))


@jax.custom_vjp
def matmul(x: jax.Array, w: jax.Array) -> jax.Array:
  """x [M, K] @ w [K, N] -> [M, N] (see the module docstring for how).

  bfloat16 x and w: bfloat16 products accumulated in float32, float32 result.
  """
  return _nn(x, w)


def _matmul_fwd(x, w):
  return _nn(x, w), (x, w)


def _matmul_bwd(res, dy):
  x, w = res
  if x.dtype == jnp.float32:
    return _nt(dy, w).astype(x.dtype), (x.T @ dy).astype(w.dtype)
  dy = dy.astype(w.dtype)  # bfloat16 products, float32 accumulation
  return (_nt(dy, w).astype(x.dtype),
          jnp.matmul(x.T, dy, preferred_element_type=jnp.float32).astype(w.dtype))


matmul.defvjp(_matmul_fwd, _matmul_bwd)


def dense(layer, x: jax.Array) -> jax.Array:
  """An `nnx.Linear` applied through `matmul`: x [M, in] -> [M, out], products in the layer's
  dtype (bfloat16: float32 result and bias)."""
  dtype = layer.dtype or x.dtype
  y = matmul(x.astype(dtype), layer.kernel[...].astype(dtype))
  return y if layer.bias is None else y + layer.bias[...].astype(y.dtype)
