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
  _note_cpu_kernel_dtype(model_config)
  # Eager init of a large model takes ~20 s on CPU; jitted it takes a fraction.
  return nnx.jit(lambda: cls(model_config, rngs=nnx.Rngs(seed), vocab_size=vocab_size))()


def param_count(model: nnx.Module) -> int:
  return sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param)))


_NOTED = set()


def _note_cpu_kernel_dtype(model_config) -> None:
  """The documented fallback, said once per process: the C++ CPU kernels are float32 only."""
  dtype = str(model_config.get("dtype", "float32"))
  if (dtype != "float32" and model_config.get("cpu_kernel", False) and jax.default_backend() == "cpu"
      and dtype not in _NOTED):
    _NOTED.add(dtype)
    print(f"note: config.model.cpu_kernel: the C++ CPU kernels are float32 only; this {dtype} "
          f"model runs XLA's forms on the CPU", flush=True)
