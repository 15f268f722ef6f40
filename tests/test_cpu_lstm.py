"""The C++ CPU kernel of the LSTM time loop: values and gradients against the plain cell, sharding."""

import shutil

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from dnagen_jax.models import cpu_lstm, recurrent

needs_kernel = pytest.mark.skipif(shutil.which("g++") is None, reason="no C++ compiler")


def _inputs(t, b, h, seed=0):
  k = jax.random.split(jax.random.key(seed), 3)
  return (jax.random.normal(k[0], (t, b, 4 * h)), jax.random.normal(k[1], (4 * h,)) * 0.3,
          jax.random.normal(k[2], (h, 4 * h)) / h ** 0.5)


def _plain(gx, b, w_hh):
  """Autodiff of the one-step reference cell, scanned."""
  h0 = jnp.zeros(gx.shape[1:2] + w_hh.shape[:1])
  return jax.lax.scan(lambda c, g: recurrent.lstm_cell(c, g, w_hh), (h0, h0), gx + b)[1]


def _kernel(gx, b, w_hh):
  return recurrent.lstm_recurrence(gx, b, w_hh, True)


@needs_kernel
def test_kernel_builds_here():
  """Where there is a compiler the kernel must build: a silent fallback would hide a broken kernel."""
  assert cpu_lstm.available() and cpu_lstm.usable(jnp.float32, 256)
  assert not cpu_lstm.usable(jnp.float32, 20) and not cpu_lstm.usable(jnp.bfloat16, 256)


@needs_kernel
@pytest.mark.parametrize("t,b,h", [(1, 1, 16), (23, 7, 32), (9, 13, 48), (40, 64, 16)])
def test_kernel_matches_plain_cell(t, b, h):
  """hs and the gradients of gx, b and W_hh = autodiff of the plain cell, for batches that
  split unevenly over threads and widths whose backward product has a narrower last block."""
  args = _inputs(t, b, h)
  assert "dnagen_lstm_forward" in jax.jit(_kernel).lower(*args).as_text()
  np.testing.assert_allclose(_kernel(*args), _plain(*args), rtol=1e-5, atol=1e-5)
  dy = jax.random.normal(jax.random.key(9), (t, b, h))
  loss = lambda f: lambda *a: jnp.sum(f(*a) * dy)
  for got, want in zip(jax.grad(loss(_kernel), argnums=(0, 1, 2))(*args),
                       jax.grad(loss(_plain), argnums=(0, 1, 2))(*args)):
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@needs_kernel
def test_kernel_is_split_over_devices():
  """Batch-sharded over the 8 test devices (axis 1 of [T, B, .]), each device runs both
  kernels on its own 2 rows, and the values and gradients are those of one device."""
  args = _inputs(12, 16, 32, seed=1)
  mesh = Mesh(np.array(jax.devices()), ("data",))
  rows = NamedSharding(mesh, P(None, "data"))
  whole = NamedSharding(mesh, P())
  loss = lambda gx, b, w: jnp.sum(jnp.sin(_kernel(gx, b, w)))
  step = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2)), in_shardings=(rows, whole, whole))
  hlo = step.lower(*args).compile().as_text()
  calls = [l for l in hlo.splitlines() if 'custom_call_target="dnagen_lstm_' in l]
  assert len(calls) == 2 and all(l.split(" = ")[1].startswith(("f32[12,2,128]", "(f32[12,2,32]"))
                                 for l in calls)
  (value, grads), (want_value, want_grads) = step(*args), jax.value_and_grad(loss, (0, 1, 2))(*args)
  np.testing.assert_allclose(value, want_value, rtol=1e-5)
  for got, want in zip(grads, want_grads):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@needs_kernel
def test_lm_with_kernel_matches_xla_form():
  """The whole stacked LSTM: logits and every parameter gradient agree with the kernel on and off."""
  inputs = jax.random.randint(jax.random.key(0), (5, 30), 0, 8)
  results = []
  for kernel in (True, False):
    cfg = ml_collections.ConfigDict(dict(
        name="lstm", embed_dim=8, hidden_dim=32, num_layers=2, position_embedding=False,
        max_len=64, remat=False, dtype="float32", init="pytorch", cpu_kernel=kernel))
    model = recurrent.RecurrentLM(cfg, rngs=nnx.Rngs(0))
    text = jax.jit(lambda x: model(x)).lower(inputs).as_text()
    assert ("dnagen_lstm_forward" in text) == kernel
    grads = nnx.grad(lambda m: jnp.sum(jax.nn.log_softmax(m(inputs))[..., 3]))(model)
    results.append((model(inputs), nnx.to_pure_dict(grads)))
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5), *results)
