"""Perplexity, bits per nucleotide and per-sequence scores of neural models.

`NeuralScorer` is the neural implementation of `scoring.Scorer`: genes are
sorted by length, padded into a few bucket shapes (so padding stays small and
few programs compile), and scored by one jitted, data-parallel eval step.
"""

from __future__ import annotations

from typing import Sequence

import jax
import ml_collections
import numpy as np
from flax import nnx

from dnagen_jax import config_check
from dnagen_jax import models
from dnagen_jax.data import batching
from dnagen_jax.data import kmers
from dnagen_jax import scoring
from dnagen_jax.errors import UserError
from dnagen_jax.runtime import checkpoints
from dnagen_jax.runtime import mesh_utils
from dnagen_jax.runtime import steps


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
    """`params` may be replaced later by others of the same shapes (training validates with one scorer)."""
    self.config, self.graphdef, self.mesh = config, graphdef, mesh
    self.name = config.model.name
    self.kmer = int(config.data.get("kmer", 1))  # k-mer tokens: per-token ln p land on their last nucleotide
    self.params = params
    shardings = mesh_utils.state_shardings(params, mesh)  # as training holds them (train.fsdp)
    self._eval = steps.ByShape(steps.jit_eval_step(graphdef, mesh, shardings), params, mesh, shardings)

  @classmethod
  def load(cls, workdir: str) -> "NeuralScorer":
    """The best checkpoint of `workdir` (or its latest, if no validation ran)."""
    config = ml_collections.ConfigDict(config_check.read_workdir_config(workdir))
    mesh = mesh_utils.make_mesh(fsdp=config.train.get("fsdp", 1))
    model = models.create_model(config.model, config.train.seed,
                                kmers.vocab_size(config.data.get("kmer", 1)))
    optimizer = nnx.Optimizer(model, steps.make_optimizer(config.train, 1), wrt=nnx.Param)
    ckpts = checkpoints.Checkpoints(workdir, keep=config.train.keep_checkpoints)
    best = ckpts.latest_step(best=True) is not None
    if ckpts.latest_step(best=best) is None:
      raise UserError(f"{workdir}: no checkpoint yet; train with --mode=train first")
    ckpts.restore_into(model, optimizer, lambda s: mesh_utils.state_shardings(s, mesh), best=best)
    ckpts.close()
    graphdef, params = nnx.split(model)
    return cls(config, graphdef, params, mesh)

  def _batches(self, seqs: Sequence[str]) -> list[tuple[np.ndarray, dict]]:
    ntok = kmers.num_tokens([len(s) for s in seqs], self.kmer)  # tokens per gene
    buckets = scoring_buckets(self.config.model, self.config.data, int(ntok.max()))
    batch_size = mesh_utils.round_to_devices(self.config.train.eval_batch_size, self.mesh)
    if self.config.data.num_buckets:  # shapes fitted to these genes' length-sorted batches
      lengths = np.minimum(np.sort(ntok), buckets[-1])
      buckets = batching.fit_buckets(lengths[batch_size - 1::batch_size].tolist()
                                           + [lengths[-1]], self.config.data.num_buckets)
    return batching.eval_batches(list(seqs), batch_size, buckets, self.kmer)

  def precompile(self, seqs: Sequence[str], threads: int) -> None:
    """Compiles the eval step for every batch shape that scoring `seqs` will use."""
    self._eval.precompile([b["inputs"].shape for _, b in self._batches(seqs)], threads)

  def token_log_probs(self, seqs: Sequence[str]) -> list[np.ndarray]:
    if not seqs:
      return []
    out: list[np.ndarray] = [None] * len(seqs)  # type: ignore[list-item]
    for idx, batch in self._batches(seqs):
      lp = np.asarray(self._eval(self.params, mesh_utils.put_batch(batch, self.mesh)), np.float64)
      for row, i in enumerate(idx):
        row_lp = lp[row, :int(batch["mask"][row].sum())]
        out[i] = row_lp if self.kmer == 1 else kmers.spread(row_lp, len(seqs[i]), self.kmer)
    return out
