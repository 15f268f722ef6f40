"""model.transformer_init: 'pytorch' draws as the PyTorch twin's nn.Embedding / nn.Linear do; 'flax' keeps Flax's."""

import ml_collections
import numpy as np
from flax import nnx

from dnagen_jax.models import transformer


def _model(init):
  cfg = ml_collections.ConfigDict(dict(
      name="transformer", embed_dim=64, num_heads=2, head_dim=0, mlp_dim=96, num_layers=2,
      max_len=32, attention_block=0, cpu_kernel=False, remat=False, dtype="float32",
      transformer_init=init))
  return transformer.TransformerLM(cfg, rngs=nnx.Rngs(0))


def _linears(model):
  yield model.head, 64
  for block in model.blocks:
    yield from ((block.attn.qkv, 64), (block.attn.out, 64), (block.fc1, 64), (block.fc2, 96))


def test_pytorch_initialisation_of_the_transformer():
  model = _model("pytorch")
  for table in (model.embed.embedding[...], model.pos.embedding[...]):
    assert abs(float(np.std(table)) - 1.0) < 0.1                     # nn.Embedding: N(0, 1)
  for layer, fan_in in _linears(model):
    bound = fan_in ** -0.5                                            # nn.Linear: U(-bound, bound)
    for w in (np.asarray(layer.kernel[...]), np.asarray(layer.bias[...])):
      assert np.abs(w).max() <= bound
    kernel = np.asarray(layer.kernel[...])
    assert abs(kernel.std() / (bound / 3 ** 0.5) - 1) < 0.15, layer   # a uniform's spread, not a normal's


def test_flax_initialisation_of_the_transformer_is_kept():
  model = _model("flax")
  assert abs(float(np.std(model.embed.embedding[...])) * 64 ** 0.5 - 1) < 0.3  # N(0, 1/width)
  for layer, fan_in in _linears(model):
    assert not np.asarray(layer.bias[...]).any()                              # zero biases
    assert abs(np.asarray(layer.kernel[...]).std() * fan_in ** 0.5 - 1) < 0.2  # LeCun normal
