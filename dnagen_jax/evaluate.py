"""Perplexity, bits per nucleotide and per-sequence scores of neural models.

`NeuralScorer` is the neural implementation of `scoring.Scorer`: genes are
sorted by length, padded into a few bucket shapes (so padding stays small and
few programs compile), and scored by one jitted, data-parallel eval step.
`evaluate_file` is `--mode=eval`: the perplexity of a trained workdir's best
model on any CSV or FASTA file.
"""

from __future__ import annotations

import json
import os
from typing import Sequence

import jax
import ml_collections
import numpy as np
from flax import nnx

from dnagen_jax import input_pipeline
from dnagen_jax import mesh_utils
from dnagen_jax import scoring
from dnagen_jax import sequence_io
from dnagen_jax import train_step as steps
from dnagen_jax.errors import UserError


def scoring_buckets(model_config, data_config, longest: int) -> tuple[int, ...]:
  """Bucket lengths (tokens) wide enough for `longest` nucleotides.

  Models with learned positions stop at model.max_len (longer genes are cut
  there, as the study did); recurrent models without positions take any length.
  """
  buckets = list(data_config.length_buckets)
  limited = model_config.name == "transformer" or model_config.position_embedding
  if limited:
    return tuple(b for b in buckets if b < model_config.max_len) + (model_config.max_len,)
  while buckets[-1] < longest:
    buckets.append(buckets[-1] * 2)
  return tuple(buckets)


class NeuralScorer(scoring.Scorer):
  """Scores genes with a neural model's parameters on every local device."""

  def __init__(self, config, graphdef, params, mesh):
    """`params` may be replaced later (training validates with one scorer throughout)."""
    self.config, self.graphdef, self.mesh = config, graphdef, mesh
    self.name = config.model.name
    self.params = params
    self._jitted = steps.jit_eval_step(graphdef, mesh)
    self._eval = None  # ByShape, made at the first call (it needs the params' shapes)

  @classmethod
  def load(cls, workdir: str) -> "NeuralScorer":
    """The best checkpoint of `workdir` (or its latest, if no validation ran)."""
    from dnagen_jax import checkpoints  # pylint: disable=g-import-not-at-top
    from dnagen_jax import models  # pylint: disable=g-import-not-at-top
    config = ml_collections.ConfigDict(scoring.read_workdir_config(workdir))
    mesh = mesh_utils.make_mesh()
    model = models.create_model(config.model, config.train.seed)
    optimizer = nnx.Optimizer(model, steps.make_optimizer(config.train, 1), wrt=nnx.Param)
    ckpts = checkpoints.Checkpoints(workdir, keep=config.train.keep_checkpoints)
    best = ckpts.latest_step(best=True) is not None
    if ckpts.latest_step(best=best) is None:
      raise UserError(f"{workdir}: no checkpoint yet; train with --mode=train first")
    abstract = checkpoints.abstract_like(checkpoints.state_tree(model, optimizer),
                                         mesh_utils.replicated(mesh))
    tree, _ = ckpts.restore(abstract, best=best)
    ckpts.close()
    checkpoints.load_state_tree(model, optimizer, tree)
    graphdef, params = nnx.split(model)
    return cls(config, graphdef, params, mesh)

  def _batches(self, seqs: Sequence[str]) -> list[tuple[np.ndarray, dict]]:
    buckets = scoring_buckets(self.config.model, self.config.data, max(len(s) for s in seqs))
    batch_size = mesh_utils.round_to_devices(self.config.train.eval_batch_size, self.mesh)
    if self.config.data.num_buckets:  # shapes fitted to these genes' length-sorted batches
      lengths = np.minimum(np.sort([len(s) for s in seqs]), buckets[-1])
      buckets = input_pipeline.fit_buckets(lengths[batch_size - 1::batch_size].tolist()
                                           + [lengths[-1]], self.config.data.num_buckets)
    return input_pipeline.eval_batches(list(seqs), batch_size, buckets)

  def precompile(self, seqs: Sequence[str], threads: int) -> None:
    """Compiles the eval step for every batch shape that scoring `seqs` will use."""
    if self._eval is None:
      self._eval = steps.ByShape(self._jitted, self.params, self.mesh)
    self._eval.precompile([b["inputs"].shape for _, b in self._batches(seqs)], threads)

  def token_log_probs(self, seqs: Sequence[str]) -> list[np.ndarray]:
    if not seqs:
      return []
    if self._eval is None:
      self._eval = steps.ByShape(self._jitted, self.params, self.mesh)
    out: list[np.ndarray] = [None] * len(seqs)  # type: ignore[list-item]
    for idx, batch in self._batches(seqs):
      lp = np.asarray(self._eval(self.params, mesh_utils.put_batch(batch, self.mesh)), np.float64)
      for row, i in enumerate(idx):
        out[i] = lp[row, :int(batch["mask"][row].sum())]
    return out


def evaluate_file(workdir: str, path: str) -> dict:
  """--mode=eval: perplexity and bits/nt of the workdir's model on one file."""
  scorer = scoring.load_scorer(workdir)
  config = scoring.read_workdir_config(workdir)
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
