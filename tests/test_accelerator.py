"""On a GPU or TPU: one train step per family, float32 and bfloat16, against the CPU; the fast paths taken.

Runs with `python -m pytest -m accelerator tests/test_accelerator.py` on a
machine with a GPU or TPU (conftest.py then leaves JAX's platform choice
alone; the 8 simulated CPU devices are still there for the reference) and
is skipped elsewhere. `launch/gpu_bench.sh tests` runs it. Tolerances: the
accelerator computes float32 products in TF32 by default (10-bit mantissa,
relative rounding ~5e-4) and bfloat16 products with 8 bits (~4e-3); one
step's loss (a mean over 8 x 128 nucleotides) and gradient norm agree with
the CPU's strict float32 within a few times that.
"""

import re

import jax
import numpy as np
import optax
import pytest
from flax import nnx

from configs import default
from dnagen_jax import models
from dnagen_jax.bench import step_speed
from dnagen_jax.runtime import mesh_utils
from dnagen_jax.runtime import steps

pytestmark = [pytest.mark.accelerator,
              pytest.mark.skipif(jax.default_backend() == "cpu", reason="needs a GPU or TPU")]

TOLERANCE = {"float32": 5e-3, "bfloat16": 3e-2}


def _config(name, dtype, on_cpu):
  config = default.get_config()
  m = config.model
  m.name, m.dtype, m.embed_dim, m.hidden_dim, m.num_layers = name, dtype, 64, 128, 2
  m.num_heads, m.head_dim, m.mlp_dim, m.max_len, m.attention_block = 3, 40, 256, 128, 64
  if on_cpu:  # the CPU's own paths, in float32: the reference
    m.dtype, m.recurrent_impl, m.attention_impl = "float32", "layers", "blocks"
  return config


def _one_step(name, dtype, devices):
  """(loss, gradient norm, the compiled step's HLO) of one train step on `devices`."""
  on_cpu = devices[0].platform == "cpu"
  config = _config(name, dtype, on_cpu)
  with jax.default_device(devices[0]):
    mesh = mesh_utils.make_mesh(devices)
    model = models.create_model(config.model, 0)
    optimizer = nnx.Optimizer(model, optax.adam(1e-3), wrt=nnx.Param)
    graphdef, state = nnx.split((model, optimizer))
    state = jax.device_put(state, mesh_utils.state_shardings(state, mesh))
    batch = mesh_utils.put_batch(step_speed.random_batch(8, 128, seed=2), mesh)
    compiled = steps.jit_train_step(graphdef, mesh, mesh_utils.state_shardings(state, mesh)).lower(
        state, batch).compile()
    _, metrics = compiled(state, batch)
    return (float(metrics["nll"] / metrics["count"]), float(metrics["grad_norm"]),
            compiled.as_text() or "")


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("name", ["lstm", "gru", "transformer"])
def test_one_train_step_matches_the_cpu(name, dtype):
  loss, norm, _ = _one_step(name, dtype, jax.devices()[:1])
  cpu_loss, cpu_norm, _ = _one_step(name, dtype, jax.devices("cpu")[:1])
  np.testing.assert_allclose(loss, cpu_loss, rtol=TOLERANCE[dtype])
  np.testing.assert_allclose(norm, cpu_norm, rtol=10 * TOLERANCE[dtype])


def _custom_calls(hlo: str) -> set[str]:
  return set(re.findall(r'custom_call_target="([^"]+)"', hlo))


@pytest.mark.skipif(jax.default_backend() != "gpu", reason="cuDNN: NVIDIA GPUs")
def test_cudnn_lstm_and_fused_attention_are_the_paths_taken():
  calls = _custom_calls(_one_step("lstm", "float32", jax.devices()[:1])[2])
  assert any("cudnn" in c.lower() and "rnn" in c.lower() for c in calls), calls
  calls = _custom_calls(_one_step("transformer", "bfloat16", jax.devices()[:1])[2])
  assert any("cudnn" in c.lower() and "fmha" in c.lower() for c in calls), calls
