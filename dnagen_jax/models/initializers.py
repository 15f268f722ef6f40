"""Initialisers by name: Flax's defaults or PyTorch's (the twins in bench/torch_twins.py).

'flax': nnx.Linear's LeCun normal kernels (variance 1/fan_in) and zero biases;
nnx.Embed's normal of variance 1/width. 'pytorch': nn.Linear's weights and
biases from U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (variance 1/(3 fan_in)) and
nn.Embedding's N(0, 1): at width 256 the embeddings start 16x larger, which
in a pre-LN transformer makes them, not the blocks, the residual stream's
bulk at the start.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx


def pytorch_uniform(fan_in: int):
  """An initialiser (key, shape, dtype) -> U(-1/sqrt(fan_in), 1/sqrt(fan_in)) [shape]."""
  bound = 1.0 / fan_in ** 0.5
  return lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, -bound, bound)


def linear(init: str, fan_in: int) -> dict:
  """nnx.Linear keyword arguments for `init` ('flax': none, Flax's defaults)."""
  if init == "pytorch":
    return {"kernel_init": pytorch_uniform(fan_in), "bias_init": pytorch_uniform(fan_in)}
  return {}


def embed(init: str) -> dict:
  """nnx.Embed keyword arguments for `init` ('flax': none)."""
  return {"embedding_init": nnx.initializers.normal(1.0)} if init == "pytorch" else {}
