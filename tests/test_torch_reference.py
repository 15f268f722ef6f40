"""Our LSTM/GRU and the loop benchmark against PyTorch's stored outputs: runs in CI without torch.

tests/data/torch_reference.npz was written once by tests/data/make_torch_reference.py
with torch 2.13 CPU (see its docstring for every array). Where torch is installed,
the file is also checked against what PyTorch gives now, so a stale file fails.
"""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from dnagen_jax.models import recurrent

PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "torch_reference.npz")


def _reference(prefix: str) -> dict:
  with np.load(PATH) as f:
    return {k[len(prefix) + 1:]: f[k] for k in f.files if k.startswith(prefix + "/")}


def _stack(kind: str, ref: dict) -> nnx.List:
  """Two RecurrentLayers holding the file's weights (the seeds do not matter: all are overwritten)."""
  n_in, hidden = ref["x"].shape[-1], ref["dy"].shape[-1]
  layers = [recurrent.RecurrentLayer(kind, n_in, hidden, rngs=nnx.Rngs(0)),
            recurrent.RecurrentLayer(kind, hidden, hidden, rngs=nnx.Rngs(1))]
  for i, layer in enumerate(layers):
    layer.w_ih[...] = jnp.asarray(ref[f"w_ih_l{i}"])
    layer.b[...] = jnp.asarray(ref[f"b_l{i}"])
    layer.w_hh[...] = jnp.asarray(ref[f"w_hh_l{i}"])
    if kind == "gru":
      layer.b_hn[...] = jnp.asarray(ref[f"b_hn_l{i}"])
  return nnx.List(layers)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_recurrent_matches_stored_torch_outputs_and_gradients(kind):
  """Two stacked layers with PyTorch's weights: nn.LSTM / nn.GRU's y, dL/dx, dL/dW_hh, dL/dW_ih."""
  ref = _reference(kind)
  stack = _stack(kind, ref)
  dy = jnp.asarray(ref["dy"])

  @nnx.jit
  def forward_and_grads(stack, x):
    loss = lambda s, x: (s[1](s[0](x)) * dy).sum()
    return stack[1](stack[0](x)), nnx.grad(loss, argnums=(0, 1))(stack, x)

  y, (g_stack, g_x) = forward_and_grads(stack, jnp.asarray(ref["x"]))
  np.testing.assert_allclose(y, ref["y"], rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(g_x, ref["g_x"], rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(g_stack[0].w_hh[...], ref["g_w_hh_l0"], rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(g_stack[0].w_ih[...], ref["g_w_ih_l0"], rtol=1e-4, atol=1e-5)
  # The reference is not trivial: a model with other weights is far from it.
  other = recurrent.RecurrentLayer(kind, ref["x"].shape[-1], ref["dy"].shape[-1], rngs=nnx.Rngs(7))
  assert np.abs(np.asarray(stack[1](other(jnp.asarray(ref["x"])))) - ref["y"]).max() > 1e-2


def test_stored_file_is_what_torch_gives_now():
  """Where torch is installed: the recurrent arrays, recomputed, equal the file's (a stale file fails)."""
  pytest.importorskip("torch")
  import importlib.util  # pylint: disable=g-import-not-at-top
  spec = importlib.util.spec_from_file_location(
      "make_torch_reference", os.path.join(os.path.dirname(PATH), "make_torch_reference.py"))
  maker = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(maker)
  for kind in ("lstm", "gru"):
    ref = _reference(kind)
    now = maker.recurrent_reference(kind)
    assert set(now) == set(ref)
    for k, v in now.items():
      np.testing.assert_allclose(v, ref[k], rtol=1e-5, atol=1e-6, err_msg=f"{kind}/{k}")


def stored_loop_curve() -> tuple[np.ndarray, np.ndarray]:
  """(steps [2], perplexity [2]): PyTorch's validation curve of test_bench's tiny loop benchmark."""
  ref = _reference("loop")
  return ref["steps"], ref["perplexity"]


def test_file_is_small_and_names_its_torch():
  assert os.path.getsize(PATH) < 20_000
  with np.load(PATH) as f:
    assert str(f["torch_version"]).startswith("2.13")
  assert jax.tree.leaves(stored_loop_curve())
