"""Sharded parameters (train.fsdp) on 8 simulated CPU devices: the same step as data parallelism and one device."""

import jax
import numpy as np
import optax
import pytest
from flax import nnx

from configs import default
from dnagen_jax import models
from dnagen_jax.bench import step_speed
from dnagen_jax.errors import UserError
from dnagen_jax.runtime import mesh_utils
from dnagen_jax.runtime import steps


def _config(name, fsdp):
  config = default.get_config()
  m = config.model
  if name == "cudnn_reference":  # the cuDNN path's packing and shard_map, lstm_ref in cuDNN's place
    name, m.recurrent_impl = "lstm", "cudnn_reference"
  m.name, m.embed_dim, m.hidden_dim, m.num_layers = name, 16, 32, 2
  m.num_heads, m.head_dim, m.mlp_dim, m.max_len, m.attention_block = 2, 8, 32, 64, 0
  config.train.fsdp = fsdp
  return config


def _steps(name, fsdp, devices=None, count=2):
  """Losses of `count` train steps and the final parameters, as host arrays."""
  config = _config(name, fsdp)
  mesh = mesh_utils.make_mesh(devices, fsdp=fsdp)
  model = models.create_model(config.model, 0)
  # Adam with a large eps: the transformer's key bias has a gradient of exactly zero in exact
  # arithmetic (softmax ignores it), and Adam would blow its rounding noise up to full steps.
  optimizer = nnx.Optimizer(model, optax.adam(1e-2, eps=1e-3), wrt=nnx.Param)
  graphdef, state = nnx.split((model, optimizer))
  shardings = mesh_utils.state_shardings(state, mesh)
  state = jax.device_put(state, shardings)
  step = steps.jit_train_step(graphdef, mesh, shardings)
  batch = mesh_utils.put_batch(step_speed.random_batch(8, 32, seed=1), mesh)
  losses = []
  for _ in range(count):
    state, metrics = step(state, batch)
    losses.append(float(metrics["nll"] / metrics["count"]))
  return losses, [np.asarray(x) for x in jax.tree.leaves(state)], state


@pytest.mark.parametrize("name", ["lstm", pytest.param("transformer", marks=pytest.mark.slow),
                                  pytest.param("cudnn_reference", marks=pytest.mark.slow)])
def test_fsdp_data_parallel_and_one_device_give_the_same_steps(name):
  one, one_params, _ = _steps(name, 1, jax.devices()[:1])
  data, data_params, _ = _steps(name, 1)
  fsdp, fsdp_params, fsdp_state = _steps(name, 8)
  assert len(jax.devices()) == 8
  # The parameters really are split: the large ones hold 1/8 of their rows per device.
  split = [x for x in jax.tree.leaves(fsdp_state) if x.sharding.shard_shape(x.shape) != x.shape]
  assert split and all(len(x.sharding.device_set) == 8 for x in split)
  np.testing.assert_allclose(data, one, rtol=1e-5)
  np.testing.assert_allclose(fsdp, one, rtol=1e-5)
  for a, b, c in zip(one_params, data_params, fsdp_params, strict=True):
    np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(c, a, rtol=1e-4, atol=1e-6)


def test_fsdp_that_does_not_divide_the_devices_is_one_line():
  with pytest.raises(UserError, match=r"train.fsdp=3 must divide the 8 devices"):
    mesh_utils.make_mesh(fsdp=3)


def test_logical_names_map_onto_the_fsdp_axis():
  mesh = mesh_utils.make_mesh(fsdp=8)
  model = models.create_model(_config("lstm", 8).model, 0)
  shardings = mesh_utils.state_shardings(nnx.state(model), mesh)
  spec = lambda s: tuple(s.spec)
  assert spec(shardings["layers"][0]["w_hh"].get_value()) == ("fsdp",)     # [H, 4H]: rows split
  assert spec(shardings["embed"]["embedding"].get_value()) == (None, "fsdp")    # [vocab 8, E]
  assert spec(shardings["layers"][0]["b"].get_value()) == ()                     # gates: whole
  assert all(spec(s) == () for s in jax.tree.leaves(mesh_utils.state_shardings(
      nnx.state(model), mesh_utils.make_mesh())))                         # fsdp=1: replicated
