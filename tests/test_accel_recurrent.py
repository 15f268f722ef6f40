"""The accelerator paths of the LSTM/GRU, checked on the CPU against the layer-by-layer path.

The wavefront (all layers in one loop, `models/wavefront.py`) must give the
same logits and gradients as the layer-by-layer scans it replaces off the CPU.
"""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx

from dnagen_jax.models import recurrent
from tests import helpers

T, B, H = 9, 3, 6


def _config(kind, impl, layers=3, remat=False, dtype="float32", bias_pair=False):
  return ml_collections.ConfigDict(dict(
      name=kind, embed_dim=5, hidden_dim=H, num_layers=layers, position_embedding=True,
      max_len=16, remat=remat, dtype=dtype, init="pytorch", cpu_kernel=False,
      recurrent_impl=impl, bias_pair=bias_pair))


def _logits_and_grads(kind, impl, **kw):
  model = recurrent.RecurrentLM(_config(kind, impl, **kw), rngs=nnx.Rngs(0))
  # Non-zero GRU b_hn so that every gradient path is exercised.
  for layer in model.layers:
    if kind == "gru":
      layer.b_hn[...] = jax.random.normal(jax.random.PRNGKey(2), layer.b_hn.shape) * 0.3
  return helpers.logits_and_grads(model, B, T)


@pytest.mark.parametrize("kind,layers", [
    ("lstm", 3), pytest.param("gru", 3, marks=pytest.mark.slow),
    pytest.param("lstm", 1, marks=pytest.mark.slow)])
def test_wavefront_equals_layer_by_layer(kind, layers):
  logits, grads = _logits_and_grads(kind, "layers", layers=layers)
  w_logits, w_grads = _logits_and_grads(kind, "wavefront", layers=layers)
  np.testing.assert_allclose(w_logits, logits, rtol=1e-5, atol=1e-6)
  flat, w_flat = nnx.to_flat_state(grads), nnx.to_flat_state(w_grads)
  assert [p for p, _ in flat] == [p for p, _ in w_flat]
  for (path, g), (_, wg) in zip(flat, w_flat):
    np.testing.assert_allclose(wg[...], g[...], rtol=1e-5, atol=1e-6, err_msg=str(path))


@pytest.mark.slow
def test_wavefront_with_paired_biases_equals_layer_by_layer():
  logits, grads = _logits_and_grads("gru", "layers", layers=2, bias_pair=True)
  w_logits, w_grads = _logits_and_grads("gru", "wavefront", layers=2, bias_pair=True)
  np.testing.assert_allclose(w_logits, logits, rtol=1e-5, atol=1e-6)
  for a, b in zip(jax.tree.leaves(w_grads), jax.tree.leaves(grads), strict=True):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_wavefront_with_remat_gives_the_same_gradients():
  _, grads = _logits_and_grads("gru", "wavefront", layers=2)
  _, r_grads = _logits_and_grads("gru", "wavefront", layers=2, remat=True)
  for a, b in zip(jax.tree.leaves(grads), jax.tree.leaves(r_grads)):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_auto_is_layer_by_layer_on_the_cpu_and_wavefront_elsewhere(monkeypatch):
  model = recurrent.RecurrentLM(_config("lstm", "auto"), rngs=nnx.Rngs(0))
  assert model.path() == "layers"
  monkeypatch.setattr(jax, "default_backend", lambda: "tpu")
  assert model.path() == "wavefront"
  assert recurrent.unroll_for("cpu") == recurrent.UNROLL == 1


def test_packed_weights_through_lstm_ref_equal_our_layers():
  """cuDNN's weight layout, filled by `cudnn_lstm.pack`, read by jax's reference LSTM = two RecurrentLayers."""
  from jax.experimental import rnn  # pylint: disable=g-import-not-at-top
  from dnagen_jax.models import cudnn_lstm  # pylint: disable=g-import-not-at-top
  layers = [recurrent.RecurrentLayer("lstm", 4, H, rngs=nnx.Rngs(0)),
            recurrent.RecurrentLayer("lstm", H, H, rngs=nnx.Rngs(1))]
  x = jax.random.normal(jax.random.PRNGKey(3), (B, T, 4))
  weights = cudnn_lstm.pack([l.w_ih[...] for l in layers], [l.w_hh[...] for l in layers],
                            [l.b[...] for l in layers])
  assert weights.shape == (rnn.get_num_params_in_lstm(4, H, 2, False),)
  h0 = jnp.zeros((2, B, H))
  w_ih, w_hh, b_ih, b_hh = rnn.unpack_lstm_weights(weights, 4, H, 2, False)
  y, h_n, _ = rnn.lstm_ref(x, h0, h0, w_ih, w_hh, b_ih, b_hh, jnp.full((B,), T, jnp.int32),
                           4, H, 2, 0.0, False)
  ours = layers[1](layers[0](x))
  np.testing.assert_allclose(y, ours, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(h_n[1], ours[:, -1], rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_cudnn_path_through_the_reference_equals_layer_by_layer():
  """The model's cuDNN path (embedding, packing, head) with lstm_ref in cuDNN's place: same logits and gradients."""
  logits, grads = _logits_and_grads("lstm", "layers", layers=2)
  c_logits, c_grads = _logits_and_grads("lstm", "cudnn_reference", layers=2)
  np.testing.assert_allclose(c_logits, logits, rtol=1e-5, atol=1e-6)
  for a, b in zip(jax.tree.leaves(c_grads), jax.tree.leaves(grads)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
