"""The C++ CPU kernel of the LSTM and GRU time loops: values and gradients against the plain cells, sharding."""

import shutil

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from dnagen_jax.models import cpu_recurrent, recurrent

needs_kernel = pytest.mark.skipif(shutil.which("g++") is None, reason="no C++ compiler")
GATES = {"lstm": 4, "gru": 3}


def _inputs(kind, t, b, h, seed=0):
  """gx [t, b, G*h], b [G*h], w_hh [h, G*h] (and b_hn [h] for the GRU)."""
  g = GATES[kind]
  k = jax.random.split(jax.random.key(seed), 4)
  args = (jax.random.normal(k[0], (t, b, g * h)), jax.random.normal(k[1], (g * h,)) * 0.3,
          jax.random.normal(k[2], (h, g * h)) / h ** 0.5)
  return args + ((jax.random.normal(k[3], (h,)) * 0.3,) if kind == "gru" else ())


def _plain(kind):
  """Autodiff of the one-step reference cell, scanned."""
  def run(gx, b, w_hh, *b_hn):
    h0 = jnp.zeros(gx.shape[1:2] + w_hh.shape[:1])
    if kind == "lstm":
      return jax.lax.scan(lambda c, g: recurrent.lstm_cell(c, g, w_hh), (h0, h0), gx + b)[1]
    return jax.lax.scan(lambda h, g: recurrent.gru_cell(h, g, w_hh, b_hn[0]), h0, gx + b)[1]
  return run


def _kernel(kind):
  recurrence = {"lstm": recurrent.lstm_recurrence, "gru": recurrent.gru_recurrence}[kind]
  return lambda *args: recurrence(*args, True)


@needs_kernel
def test_kernel_builds_here():
  """Where there is a compiler the kernel must build: a silent fallback would hide a broken kernel."""
  assert cpu_recurrent.available() and cpu_recurrent.usable(jnp.float32, 256)
  assert not cpu_recurrent.usable(jnp.float32, 20) and not cpu_recurrent.usable(jnp.bfloat16, 256)


@needs_kernel
@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("t,b,h", [(1, 1, 16), (23, 7, 32), (9, 13, 48), (40, 64, 16)])
def test_kernel_matches_plain_cell(kind, t, b, h):
  """hs and the gradients of every input = autodiff of the plain cell, for batches that split
  unevenly over threads and widths whose backward product has a narrower last block."""
  args, fast, plain = _inputs(kind, t, b, h), _kernel(kind), _plain(kind)
  assert f"dnagen_{kind}_forward" in jax.jit(fast).lower(*args).as_text()
  np.testing.assert_allclose(fast(*args), plain(*args), rtol=1e-5, atol=1e-5)
  dy = jax.random.normal(jax.random.key(9), (t, b, h))
  loss = lambda f: lambda *a: jnp.sum(f(*a) * dy)
  argnums = tuple(range(len(args)))
  for got, want in zip(jax.grad(loss(fast), argnums)(*args), jax.grad(loss(plain), argnums)(*args)):
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@needs_kernel
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_kernel_is_split_over_devices(kind):
  """Batch-sharded over the 8 test devices (axis 1 of [T, B, .]), each device runs both
  kernels on its own 2 rows, and the values and gradients are those of one device."""
  args = _inputs(kind, 12, 16, 32, seed=1)
  mesh = Mesh(np.array(jax.devices()), ("data",))
  shardings = (NamedSharding(mesh, P(None, "data")),) + (NamedSharding(mesh, P()),) * (len(args) - 1)
  fast = _kernel(kind)
  loss = lambda *a: jnp.sum(jnp.sin(fast(*a)))
  argnums = tuple(range(len(args)))
  step = jax.jit(jax.value_and_grad(loss, argnums), in_shardings=shardings)
  calls = [l.split(" = ")[1] for l in step.lower(*args).compile().as_text().splitlines()
           if f'custom_call_target="dnagen_{kind}_' in l]
  assert len(calls) == 2 and all(c.lstrip("(").startswith("f32[12,2,") for c in calls)
  (value, grads), (want_value, want_grads) = step(*args), jax.value_and_grad(loss, argnums)(*args)
  np.testing.assert_allclose(value, want_value, rtol=1e-5)
  for got, want in zip(grads, want_grads):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@needs_kernel
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_lm_with_kernel_matches_xla_form(kind):
  """The whole stacked model: logits and every parameter gradient agree with the kernel on and off."""
  inputs = jax.random.randint(jax.random.key(0), (5, 30), 0, 8)
  results = []
  for kernel in (True, False):
    cfg = ml_collections.ConfigDict(dict(
        name=kind, embed_dim=8, hidden_dim=32, num_layers=2, position_embedding=False,
        max_len=64, remat=False, dtype="float32", init="pytorch", cpu_kernel=kernel))
    model = recurrent.RecurrentLM(cfg, rngs=nnx.Rngs(0))
    text = jax.jit(lambda x: model(x)).lower(inputs).as_text()
    assert (f"dnagen_{kind}_forward" in text) == kernel
    grads = nnx.grad(lambda m: jnp.sum(jax.nn.log_softmax(m(inputs))[..., 3]))(model)
    results.append((model(inputs), nnx.to_pure_dict(grads)))
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5), *results)
