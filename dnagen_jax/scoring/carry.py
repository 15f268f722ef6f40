"""LSTM/GRU scoring that carries the recurrent state across windows (--eval_carry_state).

A recurrent model without position embeddings can read a record of any
length in one pass; only memory stops it. Here a record is read in
consecutive windows of W nucleotides, and each window starts from the state
the previous one ended in. Nothing is context only: window k scores its W
nucleotides, the first conditioned on BOS and all the record before it. So
the log-probabilities are the whole-record pass's, to float rounding
(tested), in memory bounded by [batch, W].

The time loop is the models' `decode_step` (the generation path: the same
equations and parameters as `__call__`) scanned over a window. A batch row
is one segment of a record: a record of L nucleotides is cut into up to
`segments` contiguous segments (at least `min_segment` nucleotides each) that
run side by side, so one long genome still fills the batch. Every segment but
the first starts `warmup` nucleotides early (scored as context only) instead
of from BOS at the record's start, so with more than one segment the result
is no longer exactly the whole pass; with `segments=1` it is.
"""

from __future__ import annotations

import functools
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from dnagen_jax.data import tokens
from dnagen_jax.errors import UserError
from dnagen_jax.runtime import mesh_utils


def check_carry(scorer) -> None:
  """UserError unless `scorer` is a NeuralScorer of an LSTM/GRU without position embeddings."""
  cfg = getattr(scorer, "config", None)
  if cfg is None or cfg.model.name not in ("lstm", "gru"):
    raise UserError(f"--eval_carry_state needs an LSTM or GRU workdir (this one is {scorer.name}); "
                    f"other models score long records in strided windows")
  if cfg.model.position_embedding:
    raise UserError("--eval_carry_state: this model has position embeddings (model.max_len "
                    f"{cfg.model.max_len}), so it cannot read past max_len; use strided windows")
  if int(cfg.data.get("kmer", 1)) > 1:
    raise UserError("--eval_carry_state reads one nucleotide per step (data.kmer=1 models only)")


class CarriedScorer:
  """Per-nucleotide ln p of whole records by an LSTM/GRU, the state carried from window to window."""

  def __init__(self, scorer, window: int, segments: int = 1, warmup: int = 0,
               min_segment: int = 1 << 16):
    check_carry(scorer)
    self.scorer, self.window = scorer, int(window)
    self.segments, self.warmup, self.min_segment = int(segments), int(warmup), int(min_segment)
    self.mesh = scorer.mesh

  @functools.cached_property
  def _chunk(self):
    """jit: (params, carry, inputs [B, W], targets [B, W]) -> (carry, ln p [B, W] float32)."""
    graphdef = self.scorer.graphdef
    rep, shard = mesh_utils.replicated(self.mesh), mesh_utils.batch_sharded(self.mesh)

    def run(params, carry, inputs, targets):
      model = nnx.merge(graphdef, params)

      def step(c, token):
        c, logits = model.decode_step(c, token, 0)  # no position embedding: the position is unused
        return c, logits
      carry, logits = jax.lax.scan(step, carry, inputs.T)           # logits [W, B, V]
      logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
      lp = jnp.take_along_axis(logp, targets.T[..., None], axis=-1)[..., 0]
      return carry, lp.T

    return jax.jit(run, in_shardings=(rep, shard, shard, shard), out_shardings=(shard, rep))

  def _initial_carry(self, rows: int):
    model = nnx.merge(self.scorer.graphdef, self.scorer.params)
    return jax.device_put(model.initial_carry(rows), mesh_utils.batch_sharded(self.mesh))

  def segment_spans(self, length: int) -> np.ndarray:
    """int64 [n, 3] (begin, end, first scored) of the segments of a record (first - begin = warm-up)."""
    n = max(1, min(self.segments, length // max(1, self.min_segment)))
    bounds = (np.arange(n + 1, dtype=np.int64) * length) // n
    first, end = bounds[:-1], bounds[1:]
    begin = np.maximum(first - self.warmup, 0)
    begin[0] = 0
    return np.stack([begin, end, first], 1)

  def _steps(self, seq: str):
    """Yields (step k, ln p [rows, W] float64, scored mask [rows, W]) over one record's windows.

    Row r reads segment r; step k feeds its nucleotides [kW, (k+1)W) (BOS
    before the first), encoded step by step so memory stays [rows, W].
    """
    spans = self.segment_spans(len(seq))
    rows = mesh_utils.round_to_devices(len(spans), self.mesh)
    steps = -(-int((spans[:, 1] - spans[:, 0]).max()) // self.window)
    shard = mesh_utils.batch_sharded(self.mesh)
    carry = self._initial_carry(rows)
    w = self.window
    for k in range(steps):
      inputs = np.zeros((rows, w), np.int32)
      targets = np.zeros((rows, w), np.int32)
      scored = np.zeros((rows, w), bool)
      for r, (b, e, f) in enumerate(spans):
        lo, hi = b + k * w, min(b + (k + 1) * w, e)
        if lo >= hi:
          continue
        t = tokens.encode(seq[lo:hi])
        targets[r, :hi - lo] = t
        inputs[r, 1:hi - lo] = t[:-1]
        inputs[r, 0] = tokens.BOS if k == 0 else tokens.encode(seq[lo - 1])[0]
        scored[r, max(f - lo, 0):hi - lo] = True
      carry, lp = self._chunk(self.scorer.params, carry, jax.device_put(inputs, shard),
                              jax.device_put(targets, shard))
      yield k, np.asarray(lp, np.float64), scored

  def record_chunks(self, seq: str):
    """Yields (nucleotides scored, ln-likelihood) window by window over one record."""
    for _, lp, scored in self._steps(seq):
      yield int(scored.sum()), float(lp[scored].sum())

  def token_log_probs(self, seqs: Sequence[str]) -> list[np.ndarray]:
    """Per-nucleotide ln p of each whole record (tests and short inputs; keeps the arrays)."""
    out = []
    for seq in seqs:
      spans = self.segment_spans(len(seq))
      parts = [lp for _, lp, _ in self._steps(seq)]
      lp = np.concatenate(parts, 1)
      out.append(np.concatenate([lp[r, f - b:e - b] for r, (b, e, f) in enumerate(spans)]))
    return out
