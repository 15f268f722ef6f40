"""The accelerator attention (`jax.nn.dot_product_attention`), checked on the CPU with implementation='xla'."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx

from dnagen_jax.models import transformer
from tests import helpers

B, T = 2, 24


def _config(impl, cpu_kernel=False, dtype="float32"):
  # Heads 5 wide (padded to 8 for the fused form), like the study's 85 -> 88.
  return ml_collections.ConfigDict(dict(
      name="transformer", embed_dim=12, num_heads=3, head_dim=5, mlp_dim=16, num_layers=2,
      max_len=32, attention_block=8, cpu_kernel=cpu_kernel, remat=False, dtype=dtype,
      attention_impl=impl))


def _logits_and_grads(impl, **kw):
  model = transformer.TransformerLM(_config(impl, **kw), rngs=nnx.Rngs(0))
  return helpers.logits_and_grads(model, B, T)


def test_dot_product_attention_equals_the_block_attention():
  logits, grads = _logits_and_grads("blocks")
  x_logits, x_grads = _logits_and_grads("xla")
  np.testing.assert_allclose(x_logits, logits, rtol=1e-5, atol=1e-5)
  flat, x_flat = nnx.to_flat_state(grads), nnx.to_flat_state(x_grads)
  for (path, g), (_, xg) in zip(flat, x_flat, strict=True):
    np.testing.assert_allclose(xg[...], g[...], rtol=1e-4, atol=1e-5, err_msg=str(path))


def test_padded_heads_keep_the_true_scale():
  """fused_attention on 5-wide heads (padded to 8) = a plain causal softmax at scale 1/sqrt(5)."""
  q, k, v = (jax.random.normal(jax.random.PRNGKey(i), (B, T, 3, 5)) for i in range(3))
  got = transformer.fused_attention(q, k, v, "xla")
  scores = jnp.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(5)
  scores = jnp.where(np.tril(np.ones((T, T), bool)), scores, -jnp.inf)
  want = jnp.einsum("bhqk,bkhd->bqhd", jax.nn.softmax(scores, axis=-1), v)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_auto_is_blocks_on_the_cpu_and_fused_elsewhere(monkeypatch):
  assert transformer.attention_path("auto") == "blocks"
  monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
  assert transformer.attention_path("auto") == "fused"
  assert transformer.attention_path("xla") == "xla"


def test_cudnn_asked_for_on_the_cpu_is_one_line():
  from dnagen_jax.errors import UserError  # pylint: disable=g-import-not-at-top
  with pytest.raises(UserError, match="attention_impl='cudnn' needs a GPU"):
    transformer.attention_path("cudnn")
