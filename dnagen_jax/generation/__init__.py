"""Generation: sampling from every model family (`Sampler`), FASTA out, and a report on the samples.

`load_sampler(workdir)` gives a trained workdir's model (its best checkpoint,
restored as `workdir.load_scorer` restores it) as a `Sampler`.
"""

from __future__ import annotations

from dnagen_jax.generation.sampler import Controls, Sampler, Samples


def from_scorer(scorer, batch_size: int | None = None) -> Sampler:
  """The sampler of a loaded scorer (NeuralScorer or NGramScorer): the same parameters or tables."""
  from dnagen_jax.ngram.infinigram import InfiniGram  # pylint: disable=g-import-not-at-top
  from dnagen_jax.ngram.scorer import NGramScorer  # pylint: disable=g-import-not-at-top
  kw = {} if batch_size is None else {"batch_size": batch_size}
  if isinstance(scorer, NGramScorer):
    from dnagen_jax.generation import ngram  # pylint: disable=g-import-not-at-top
    if isinstance(scorer.model, InfiniGram):
      return ngram.InfiniGramSampler(scorer.model, **kw)
    return ngram.NGramSampler(scorer.model, **kw)
  from dnagen_jax.generation.neural import NeuralSampler  # pylint: disable=g-import-not-at-top
  return NeuralSampler(scorer, **kw)


def load_sampler(workdir: str, batch_size: int | None = None) -> Sampler:
  """The trained model of `workdir` as a Sampler (UserError when there is none or it cannot sample)."""
  from dnagen_jax import config_check, workdir as workdir_lib  # pylint: disable=g-import-not-at-top
  from dnagen_jax.errors import UserError  # pylint: disable=g-import-not-at-top
  cfg = config_check.read_workdir_config(workdir)
  if cfg["model"]["name"] == "mixture":
    raise UserError(f"{workdir}: a mixture does not generate; sample from one of its components "
                    f"({cfg['model'].get('mixture_workdirs', '')})")
  if cfg["data"].get("kmer", 1) != 1:
    raise UserError(f"{workdir}: its model reads {cfg['data']['kmer']}-mer tokens; generation "
                    "samples nucleotide models only (data.kmer=1)")
  return from_scorer(workdir_lib.load_scorer(workdir), batch_size)


__all__ = ["Controls", "Sampler", "Samples", "from_scorer", "load_sampler"]
