"""Neural language models behind one constructor: `create_model(config.model, seed)`."""

from __future__ import annotations

import jax
from flax import nnx

from dnagen_jax.data import tokens
from dnagen_jax.errors import UserError
from dnagen_jax.models.recurrent import RecurrentLM
from dnagen_jax.models.transformer import TransformerLM

NEURAL = {"lstm": RecurrentLM, "gru": RecurrentLM, "transformer": TransformerLM}


def create_model(model_config, seed: int, vocab_size: int = tokens.VOCAB_SIZE) -> nnx.Module:
  """Builds the model named by `model_config.name` with jitted initialisation.

  vocab_size: data.kmers.vocab_size(config.data.kmer) (8 for nucleotides)."""
  if model_config.name not in NEURAL:
    raise UserError(f"model.name={model_config.name!r} is not one of {', '.join(NEURAL)}, ngram")
  cls = NEURAL[model_config.name]
  # Eager init of a large model takes ~20 s on CPU; jitted it takes a fraction.
  return nnx.jit(lambda: cls(model_config, rngs=nnx.Rngs(seed), vocab_size=vocab_size))()


def param_count(model: nnx.Module) -> int:
  return sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param)))
