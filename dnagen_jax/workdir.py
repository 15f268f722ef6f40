"""What a trained workdir offers, whichever model family trained it.

`load_scorer` gives its model (best checkpoint) as a `scoring.Scorer`;
`evaluate_file` is --mode=eval, the perplexity of that model on any CSV or
FASTA file. This module sits above both implementations (`scoring.neural`,
`ngram.scorer`), which import only the interface, so the arrows point one way.
"""

from __future__ import annotations

import json
import os

from dnagen_jax import config_check
from dnagen_jax.data import sequence_io
from dnagen_jax.scoring import Scorer


def load_scorer(workdir: str) -> Scorer:
  """The trained model of `workdir` (its best checkpoint), as a Scorer."""
  cfg = config_check.read_workdir_config(workdir)
  if cfg["model"]["name"] == "ngram":
    from dnagen_jax.ngram import scorer as ngram_scorer  # pylint: disable=g-import-not-at-top
    return ngram_scorer.load(workdir)
  if cfg["model"]["name"] == "infinigram":
    from dnagen_jax.ngram import scorer as ngram_scorer  # pylint: disable=g-import-not-at-top
    return ngram_scorer.load_infinigram(workdir)
  if cfg["model"]["name"] == "mixture":
    from dnagen_jax.mixture import train as mixture_train  # pylint: disable=g-import-not-at-top
    return mixture_train.load(workdir, load_scorer)
  from dnagen_jax.scoring import neural  # pylint: disable=g-import-not-at-top
  return neural.NeuralScorer.load(workdir)


def evaluate_file(workdir: str, path: str) -> dict:
  """--mode=eval: perplexity and bits/nt of the workdir's model on one file."""
  scorer = load_scorer(workdir)
  config = config_check.read_workdir_config(workdir)
  records = sequence_io.read_sequences(path, config["data"]["unknown_policy"])
  result = scorer.perplexity([r.sequence for r in records])
  result.update(file=os.path.abspath(path), genes=len(records), model=scorer.name)
  name = os.path.basename(path).split(".")[0]
  out = os.path.join(workdir, f"eval_{name}.json")
  with open(out, "w") as f:
    json.dump(result, f, indent=2)
  print(f"{path}: {len(records)} genes, {result['nucleotides']} nt | perplexity "
        f"{result['perplexity']:.4f} | {result['bits_per_nucleotide']:.4f} bits/nt -> {out}")
  return result
