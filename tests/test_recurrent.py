"""The fast LSTM/GRU (custom VJP) against plain reference cells and PyTorch."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx

from dnagen_jax.models import recurrent

T, B, IN, H = 11, 3, 4, 5


def _layer(kind, seed=0):
  layer = recurrent.RecurrentLayer(kind, IN, H, rngs=nnx.Rngs(seed))
  # Non-zero biases so that every gradient path is exercised.
  layer.b[...] = jax.random.normal(jax.random.PRNGKey(1), layer.b.shape) * 0.3
  if kind == "gru":
    layer.b_hn[...] = jax.random.normal(jax.random.PRNGKey(2), layer.b_hn.shape) * 0.3
  return layer


def _lm_config(kind, remat=False):
  cfg = ml_collections.ConfigDict(dict(
      name=kind, embed_dim=6, hidden_dim=H, num_layers=2, position_embedding=True,
      max_len=16, remat=remat, dtype="float32", init="pytorch", cpu_kernel=True))
  return cfg


def test_remat_gives_the_same_gradients(kind="lstm"):
  """nnx.remat re-runs the custom-VJP forward in the backward pass: same gradients."""
  inputs = jax.random.randint(jax.random.PRNGKey(0), (B, T), 3, 8)

  def grads(remat):
    model = recurrent.RecurrentLM(_lm_config(kind, remat), rngs=nnx.Rngs(0))
    loss = lambda m: jax.nn.log_softmax(m(inputs)).sum()
    return nnx.jit(nnx.grad(loss))(model)

  for a, b in zip(jax.tree.leaves(grads(False)), jax.tree.leaves(grads(True))):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_matches_torch_with_copied_weights(kind):
  """Two stacked layers (input projection, biases, GRU b_hn) against nn.LSTM / nn.GRU."""
  torch = pytest.importorskip("torch")
  from dnagen_jax.bench import torch_twins  # pylint: disable=g-import-not-at-top
  layers = [_layer(kind, seed=0), recurrent.RecurrentLayer(kind, H, H, rngs=nnx.Rngs(5))]
  layers[1].b[...] = layers[1].b[...] + 0.1  # biases of both layers reach PyTorch's b_ih / b_hh
  rnn = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind](IN, H, 2, batch_first=True)
  torch_twins.copy_recurrent_weights(rnn, layers)
  x = np.asarray(jax.random.normal(jax.random.PRNGKey(3), (B, T, IN)))
  dy = np.asarray(jax.random.normal(jax.random.PRNGKey(4), (B, T, H)))

  stack = nnx.List(layers)

  @nnx.jit
  def forward_and_grads(stack, x):
    loss = lambda s, x: (s[1](s[0](x)) * dy).sum()
    return stack[1](stack[0](x)), nnx.grad(loss, argnums=(0, 1))(stack, x)

  y, (g_stack, g_x) = forward_and_grads(stack, jnp.asarray(x))
  g_w, g_wih = g_stack[0].w_hh[...], g_stack[0].w_ih[...]

  xt = torch.tensor(x, requires_grad=True)
  yt = rnn(xt)[0]
  (yt * torch.tensor(dy)).sum().backward()
  np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(g_x, xt.grad.numpy(), rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(g_w, rnn.weight_hh_l0.grad.numpy().T, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(g_wih, rnn.weight_ih_l0.grad.numpy().T, rtol=1e-4, atol=1e-5)


def test_lm_shapes_and_time_major_layer():
  model = recurrent.RecurrentLM(_lm_config("lstm"), rngs=nnx.Rngs(0))
  inputs = jnp.zeros((B, T), jnp.int32)
  assert model(inputs).shape == (B, T, 8)
  x = jax.random.normal(jax.random.PRNGKey(0), (T, B, 6))
  layer = model.layers[0]
  np.testing.assert_allclose(layer.time_major(x), jnp.swapaxes(layer(jnp.swapaxes(x, 0, 1)), 0, 1),
                             rtol=1e-6)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_layer_matches_reference_cell(kind):
  """project + lstm_recurrence / gru_recurrence, as RecurrentLayer composes them: outputs and the
  gradients of x, W_ih, b, W_hh (and b_hn) equal autodiff of the plain cell."""
  layer = _layer(kind)
  x = jax.random.normal(jax.random.PRNGKey(3), (T, B, IN))
  dy = jax.random.normal(jax.random.PRNGKey(4), (T, B, H))
  params = [layer.w_ih[...], layer.b[...], layer.w_hh[...]] + (
      [layer.b_hn[...]] if kind == "gru" else [])

  def reference(x, w_ih, b, w_hh, *b_hn):
    gx = x @ w_ih + b
    h0 = jnp.zeros((B, H))
    if kind == "lstm":
      return jax.lax.scan(lambda c, g: recurrent.lstm_cell(c, g, w_hh), (h0, h0), gx)[1]
    return jax.lax.scan(lambda h, g: recurrent.gru_cell(h, g, w_hh, b_hn[0]), h0, gx)[1]

  recurrence = {"lstm": recurrent.lstm_recurrence, "gru": recurrent.gru_recurrence}[kind]
  fast = lambda x, w_ih, *rest: recurrence(recurrent.project(x, w_ih), *rest)
  y_ref, vjp_ref = jax.vjp(reference, x, *params)
  y, vjp = jax.vjp(fast, x, *params)
  np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-6)
  for a, b in zip(vjp(dy), vjp_ref(dy)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_token_table_first_layer_matches_embedding_path(kind):
  """RecurrentLM's first layer looks up (E @ W_ih)[tokens] (+ positions @ W_ih):
  the same logits and parameter gradients as embedding, then projecting."""
  model = recurrent.RecurrentLM(_lm_config(kind), rngs=nnx.Rngs(0))
  inputs = jax.random.randint(jax.random.PRNGKey(0), (B, T), 0, 8)

  def plain(m):
    x = m.embed(inputs.T) + m.pos(jnp.arange(T))[:, None]
    for layer in m.layers:
      x = layer.time_major(x)
    return jnp.swapaxes(m.head(x), 0, 1)

  loss = lambda f: lambda m: (jnp.sin(f(m)) * jnp.arange(8)).sum()
  np.testing.assert_allclose(model(inputs), plain(model), rtol=1e-5, atol=1e-6)
  fast_grads = nnx.grad(loss(lambda m: m(inputs)))(model)
  plain_grads = nnx.grad(loss(plain))(model)
  for a, b in zip(jax.tree.leaves(fast_grads), jax.tree.leaves(plain_grads)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_pytorch_initialisation(kind):
  """init='pytorch' draws as nn.Embedding / nn.LSTM / nn.GRU / nn.Linear do; 'flax' keeps zero biases."""
  hidden = 64
  cfg = ml_collections.ConfigDict(dict(
      name=kind, embed_dim=256, hidden_dim=hidden, num_layers=1, position_embedding=False,
      max_len=16, remat=False, dtype="float32", init="pytorch", cpu_kernel=True))
  model = recurrent.RecurrentLM(cfg, rngs=nnx.Rngs(0))
  s = 1 / hidden ** 0.5
  assert abs(float(np.std(model.embed.embedding[...])) - 1.0) < 0.1       # N(0, 1)
  b = np.asarray(model.layers[0].b[...])
  if kind == "lstm":   # b_ih + b_hh: two U(-s, s), variance 2 s^2 / 3
    assert np.abs(b).max() <= 2 * s and abs(b.std() - s * (2 / 3) ** 0.5) < 0.1 * s
  else:                # r, z: two uniforms; n: b_ih alone; b_hn = b_hh's n part
    assert np.abs(b[2 * hidden:]).max() <= s and np.abs(np.asarray(model.layers[0].b_hn[...])).max() <= s
  head = np.asarray(model.head.kernel[...])
  assert np.abs(head).max() <= s and np.abs(np.asarray(model.head.bias[...])).max() > 0
  cfg.init = "flax"
  flax_model = recurrent.RecurrentLM(cfg, rngs=nnx.Rngs(0))
  assert not np.asarray(flax_model.layers[0].b[...]).any()
  assert float(np.std(flax_model.embed.embedding[...])) < 0.2
