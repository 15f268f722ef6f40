"""Mixed precision (model.dtype=bfloat16) tracks float32 training on the synthetic source.

bfloat16 keeps 8 significant bits (relative rounding 2^-9 = 0.2%) on the
operands of each product only; parameters, carries, softmax and every
accumulation stay float32. The per-step loss then differs from float32's by
rounding noise of the logits, about 0.2-0.5% of the loss, and the two runs'
parameters drift apart only slowly, since both follow the same gradients to
that precision. The test trains both runs STEPS steps from the same
initialisation on the same batches and asks that the mean loss of the last
10 steps agrees within TOLERANCE nats per nucleotide (0.4% of the ~1.35-nat
loss) and every step within twice that, while training itself moves the loss
by far more (asserted). Measured here (2-layer models, 40 steps of 8 x 192):
last-10 gaps of 1.3e-4 (LSTM), 1.4e-4 (GRU), 0.4e-4 (transformer) nats and
per-step gaps up to 1.4e-3, against a drop of 0.45 nats; the bound leaves
room for other CPUs' rounding and is still ~100x below the learning. A float16 or bfloat16
carry over the whole sequence, or a bfloat16 softmax, is what it guards against.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from configs import default
from dnagen_jax import models
from dnagen_jax.data import batching
from dnagen_jax.data import synthetic
from dnagen_jax.runtime import steps

STEPS, TOLERANCE = 40, 0.005


def _losses(name, dtype, batches):
  config = default.get_config()
  m = config.model
  m.name, m.dtype, m.embed_dim, m.hidden_dim, m.num_layers = name, dtype, 16, 32, 2
  m.num_heads, m.head_dim, m.mlp_dim, m.max_len, m.attention_block = 2, 16, 64, 256, 64
  model = models.create_model(m, 0)
  optimizer = nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.Param)
  graphdef, state = nnx.split((model, optimizer))
  step = jax.jit(lambda s, b: steps.train_step(graphdef, s, b))
  losses = []
  for batch in batches:
    state, metrics = step(state, batch)
    losses.append(float(metrics["nll"] / metrics["count"]))
  params = nnx.state(nnx.merge(graphdef, state)[0], nnx.Param)
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(params))  # parameters stay float32
  return np.asarray(losses)


@pytest.mark.parametrize("name", ["lstm", pytest.param("gru", marks=pytest.mark.slow),
                                  pytest.param("transformer", marks=pytest.mark.slow)])
def test_bfloat16_tracks_float32(name):
  source = synthetic.MarkovSource(order=3, alpha=0.5, seed=0)
  genes = source.sample(8 * STEPS, seed=1)
  batches = [batching.make_batch(genes[8 * i:8 * i + 8], 192) for i in range(STEPS)]
  f32, bf16 = _losses(name, "float32", batches), _losses(name, "bfloat16", batches)
  assert f32[:5].mean() - f32[-10:].mean() > 3 * TOLERANCE  # the runs learn
  assert abs(bf16[-10:].mean() - f32[-10:].mean()) < TOLERANCE, (f32[-10:], bf16[-10:])
  assert np.abs(bf16 - f32).max() < 2 * TOLERANCE
