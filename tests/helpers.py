"""Tiny configs and shared test data: seconds, not minutes."""

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np

from configs import default

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The study's column names; every row in these tests is made up.
HEADER = ",".join(["NCBIGeneID", "Symbol", "Description", "GeneType", "GeneGroupIdentifier",
                   "GeneGroupMethod", "NucleotideSequence"]) + "\n"


def tiny_config(tfds_dir: str, name: str = "lstm"):
  """A few small synthetic genes and a tiny model: each run takes seconds."""
  config = default.get_config()
  config.data.data_dir = tfds_dir
  config.data.max_length = 120
  config.data.synthetic_sizes = (64, 16, 16)
  config.data.length_buckets = (128,)
  config.model.name = name
  config.model.embed_dim = 8
  config.model.hidden_dim = 16
  config.model.num_heads = 2
  config.model.mlp_dim = 16
  config.model.max_len = 128
  config.train.batch_size = 8
  config.train.max_steps = 6
  config.train.eval_every = 3
  config.train.log_every = 2
  config.train.checkpoint_every = 2
  config.train.eval_batch_size = 8
  return config


def plain_attention(q, k, v):
  """Autodiff reference for the causal attention: the full masked softmax, no custom VJP.

  q, k, v [b, h, t, d] (q not yet scaled) -> [b, h, t, d].
  """
  t = q.shape[2]
  s = jnp.einsum("bhqd,bhkd->bhqk", q, k) / np.sqrt(q.shape[-1])
  s = jnp.where(np.tril(np.ones((t, t), bool)), s, -jnp.inf)
  return jnp.einsum("bhqk,bhkd->bhqd", jax.nn.softmax(s, axis=-1), v)


def run_main(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
  """Runs `python -m dnagen_jax.main ARGS` in a subprocess (1 CPU device)."""
  env = dict(os.environ, XLA_FLAGS="", PYTHONPATH=ROOT)
  return subprocess.run([sys.executable, "-m", "dnagen_jax.main", *args], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=timeout)


def overrides(config) -> list[str]:
  """--config.a.b=value flags that turn configs/default.py into `config`."""
  out = []
  base = default.get_config()
  for block in ("data", "model", "train"):
    for key, value in config[block].items():
      if base[block][key] != value:
        if isinstance(value, tuple):
          value = "(" + ",".join(map(str, value)) + ",)"
        out.append(f"--config.{block}.{key}={value}")
  return out


def logits_and_grads(model, batch: int, length: int, vocab: int = 8):
  """A model's logits [batch, length, vocab] and the gradients of a random weighting of its
  log-softmax, under jit: the common check of two implementations of one model."""
  from flax import nnx  # pylint: disable=g-import-not-at-top
  inputs = jax.random.randint(jax.random.PRNGKey(1), (batch, length), 3, vocab)
  weights = jax.random.normal(jax.random.PRNGKey(3), (batch, length, vocab))

  def loss(m):
    logits = m(inputs)
    return (jax.nn.log_softmax(logits) * weights).sum(), logits
  grads, logits = nnx.jit(nnx.grad(loss, has_aux=True))(model)
  return logits, grads
