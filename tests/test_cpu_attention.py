"""The C++ CPU attention kernel: values and gradients against the plain softmax, sharding, its build."""

import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from dnagen_jax import models
from dnagen_jax.models import cpu_attention, cpu_kernels
from dnagen_jax.models.transformer import causal_attention
from tests.helpers import plain_attention, tiny_config

needs_kernel = pytest.mark.skipif(shutil.which("g++") is None, reason="no C++ compiler")


@needs_kernel
def test_kernel_builds_here():
  """Where there is a compiler the kernel must build: a silent fallback would hide a broken kernel."""
  assert cpu_attention.available()


@needs_kernel
@pytest.mark.parametrize("t,block,d", [(37, 8, 5), (64, 16, 85), (20, 0, 5), (130, 128, 16), (1, 8, 3)])
def test_kernel_matches_plain_softmax(t, block, d):
  """Outputs and gradients = autodiff of the full masked softmax, for head
  widths and lengths that are and are not multiples of the vector width."""
  q, k, v = jax.random.normal(jax.random.key(2), (3, 2, 3, t, d))
  fast = lambda q, k, v: causal_attention(q, k, v, block, cpu_kernel=True)
  assert "dnagen_causal_attention_forward" in jax.jit(fast).lower(q, k, v).as_text()
  np.testing.assert_allclose(fast(q, k, v), plain_attention(q, k, v), rtol=1e-5, atol=1e-6)
  loss = lambda f: lambda q, k, v: jnp.sum(jnp.sin(f(q, k, v)))
  for got, want in zip(jax.grad(loss(fast), argnums=(0, 1, 2))(q, k, v),
                       jax.grad(loss(plain_attention), argnums=(0, 1, 2))(q, k, v)):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@needs_kernel
def test_kernel_is_split_over_devices_without_collectives():
  """Batch-sharded over the 8 test devices, each device runs its own
  sequences: same values as one device, and no gather in the compiled step."""
  q, k, v = jax.random.normal(jax.random.key(3), (3, 16, 2, 40, 7))
  mesh = Mesh(np.array(jax.devices()), ("data",))
  shard = NamedSharding(mesh, P("data"))
  loss = lambda q, k, v: jnp.sum(jnp.sin(causal_attention(q, k, v, 16, cpu_kernel=True)))
  step = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2)), in_shardings=(shard,) * 3)
  hlo = step.lower(q, k, v).compile().as_text()
  assert "dnagen_causal_attention_backward" in hlo
  assert "all-gather" not in hlo and "all-to-all" not in hlo
  (value, grads), (want_value, want_grads) = step(q, k, v), jax.value_and_grad(loss, (0, 1, 2))(q, k, v)
  np.testing.assert_allclose(value, want_value, rtol=1e-5)
  for got, want in zip(grads, want_grads):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@needs_kernel
def test_transformer_with_kernel_matches_xla_form(tfds_dir):
  """The whole model: logits and every parameter gradient agree with the kernel on and off."""
  config = tiny_config(tfds_dir, "transformer")
  x = jnp.asarray(np.random.default_rng(4).integers(1, 8, (2, 40)), jnp.int32)
  results = []
  for kernel in (True, False):
    config.model.cpu_kernel = kernel
    model = models.create_model(config.model, 0)
    results.append((model(x), nnx.to_pure_dict(nnx.grad(lambda m: jnp.sum(m(x) ** 2))(model))))
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5), *results)


def test_build_without_compiler_says_so_in_one_line(tmp_path):
  with pytest.raises(RuntimeError, match=r"^no C\+\+ compiler 'no-such-c\+\+' on PATH"):
    cpu_kernels.build("causal_attention_cpu", tmp_path, compiler="no-such-c++")


def test_failed_build_says_so_in_one_line_and_leaves_nothing(tmp_path):
  with pytest.raises(RuntimeError, match=r"^false failed on causal_attention_cpu\.cc"):
    cpu_kernels.build("causal_attention_cpu", tmp_path, compiler="false")  # exits 1 without output
  assert not list(tmp_path.iterdir())


@needs_kernel
def test_build_is_cached_per_machine(tmp_path):
  first = cpu_kernels.build("recurrent_cpu", tmp_path)
  mtime = first.stat().st_mtime_ns
  assert cpu_kernels.build("recurrent_cpu", tmp_path) == first and first.stat().st_mtime_ns == mtime
  assert [p.name for p in tmp_path.iterdir()] == [first.name]  # no temporary left
