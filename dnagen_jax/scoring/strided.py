"""Long sequences scored whole: strided windows, context that is not scored, memory bounded by a window batch.

A record longer than the window is scored as the usual strided-perplexity
protocol does. With window W and stride S (1 <= S <= W), window k covers
nucleotides [b_k, b_k + W) of the record, b_k = k S. Each window is fed to
the model as any gene is (BOS, then its nucleotides). The first window scores
all of its W nucleotides. Every later window scores only the nucleotides
that no window before it scored, its last S; the first C = W - S of its
nucleotides are context only. The last window is moved back to end at the
record's end (b = L - W), so it is a full window with at least C nucleotides
of context. So:
  * every nucleotide is scored exactly once;
  * each has at least C preceding nucleotides of context (or all of them, in
    the first window), plus BOS;
  * the cost is about L / S windows of W nucleotides: W / S times a single
    pass (2x at the default S = W / 2).
A record no longer than W is one window, the record itself, scored exactly as
before (BOS + record): gene files give the same numbers as scoring the genes
directly (tested).

With k-mer tokens (data.kmer = k > 1), W and S must be multiples of k and
the last window starts at the first multiple of k at or after L - W, so
contexts are whole tokens.

`score_records` streams records, scores the short ones in groups and the long
ones a few windows at a time (at most `CHUNK_NUCLEOTIDES` nucleotides per call
of the scorer), so memory is bounded by that batch, not by the record. It
keeps per-record sums only, never a record's per-nucleotide log-probabilities.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from typing import Callable, Iterable, Sequence

import numpy as np

from dnagen_jax.errors import UserError
from dnagen_jax.scoring.interface import Scorer
from dnagen_jax.scoring.interface import perplexity_from_totals

CHUNK_NUCLEOTIDES = 1 << 20  # window nucleotides per call of the scorer (bounds its batch)
SHORT_GROUP_NUCLEOTIDES = 1 << 24  # short records scored together (gene files: one group, as before)
PROGRESS_SECONDS = 10.0


@dataclasses.dataclass(frozen=True)
class Plan:
  """How records are cut: window W, stride S; context C = W - S."""
  window: int
  stride: int
  kmer: int = 1

  @property
  def context(self) -> int:
    return self.window - self.stride


def resolve_plan(scorer: Scorer, window: int = 0, stride: int = 0) -> Plan:
  """The scorer's default window and stride where 0, checked. One-line UserError when they cannot work.

  Defaults (`Scorer.eval_defaults`): neural models W = data.window (else model.max_len), S = W / 2;
  N-grams of order n W = 2^20, C = (n - 1) k (exact); the infinigram C = 2^16
  (its cap - 1 if capped); a mixture the smallest of its components'.
  """
  window, stride = int(window or 0), int(stride or 0)
  if window < 0 or stride < 0:
    raise UserError(f"--eval_window={window} and --eval_stride={stride} must be positive (0 = default)")
  default_window, context_of, limit = scorer.eval_defaults()
  kmer = int(getattr(scorer, "kmer", 1) or 1)
  window = window or default_window
  if limit and window > limit:
    raise UserError(f"--eval_window={window} is longer than this model takes ({scorer.name}: at most "
                    f"{limit} nucleotides, its model.max_len); use --eval_window <= {limit}")
  if not stride:
    stride = max(kmer, window - context_of(window))
  if stride > window:
    raise UserError(f"--eval_stride={stride} is larger than the window ({window}): nucleotides "
                    f"between windows would never be scored; use 1 <= stride <= window")
  if kmer > 1 and (window % kmer or stride % kmer):
    raise UserError(f"--eval_window={window} and --eval_stride={stride} must be multiples of the "
                    f"model's k-mer size {kmer}")
  return Plan(window, stride, kmer)


def window_spans(length: int, plan: Plan) -> np.ndarray:
  """int64 [n, 3]: (begin, end, first scored) of each window of a record of `length` nucleotides.

  The scored parts [first, end) tile [0, length) in order; first - begin is the context.
  """
  w, s, k = plan.window, plan.stride, plan.kmer
  if length <= w:
    return np.array([[0, length, 0]], np.int64)
  count = 1 + -(-(length - w) // s)                     # windows until one reaches the end
  begin = np.arange(count, dtype=np.int64) * s
  begin[-1] = min(begin[-1], -(-(length - w) // k) * k)  # the last one ends at the record's end
  end = np.minimum(begin + w, length)
  end[-1] = length
  first = np.concatenate([[0], end[:-1]])
  return np.stack([begin, end, first], 1)


@dataclasses.dataclass
class RecordScore:
  """One record's totals: log-likelihood (nats) over its nucleotides, and the windows that scored it."""
  record_id: str
  length: int
  log_likelihood: float = 0.0
  windows: int = 0
  window_nucleotides: int = 0  # nucleotides fed to the model, context included

  def row(self) -> dict:
    d = perplexity_from_totals(self.log_likelihood, self.length)
    return {"record": self.record_id, "nucleotides": self.length, "log_likelihood": self.log_likelihood,
            "bits_per_nucleotide": d["bits_per_nucleotide"], "perplexity": d["perplexity"],
            "windows": self.windows, "window_nucleotides": self.window_nucleotides}


class Progress:
  """A line every PROGRESS_SECONDS on long work: nucleotides done, nt/s, bits/nt so far."""

  def __init__(self, total: int | None, out=sys.stdout, every: float = PROGRESS_SECONDS):
    self.total, self.out, self.every = total, out, every
    self.start = self.last = time.perf_counter()
    self.done, self.ll = 0, 0.0

  def add(self, nucleotides: int, log_likelihood: float, what: str, record: tuple | None = None) -> None:
    """record: (nucleotides of it scored so far, its length), shown for long records."""
    self.done += nucleotides
    self.ll += log_likelihood
    now = time.perf_counter()
    if now - self.last >= self.every:
      self.last = now
      of = f"/{self.total:,}" if self.total else ""
      rate = self.done / max(now - self.start, 1e-9)
      left = (self.total - self.done) if self.total else (record[1] - record[0] if record else 0)
      eta = f", about {left / rate / 60:.1f} min left{'' if self.total else ' in it'}" if left else ""
      where = f" ({record[0]:,}/{record[1]:,} of it)" if record else ""
      print(f"  {what}{where}: {self.done:,}{of} nt scored, {rate:,.0f} nt/s, "
            f"{-self.ll / max(self.done, 1) / math.log(2):.4f} bits/nt so far{eta}",
            file=self.out, flush=True)

  @property
  def seconds(self) -> float:
    return time.perf_counter() - self.start


LogProbsFn = Callable[[Sequence[str]], list]


def score_records(scorer: Scorer, records: Iterable, plan: Plan, total: int | None = None,
                  log_probs: LogProbsFn | None = None, progress: Progress | None = None,
                  carried=None) -> list[RecordScore]:
  """Scores every record (objects with .record_id and .sequence, or (id, sequence) pairs) in order.

  `log_probs` (default scorer.token_log_probs) maps windows to per-nucleotide
  ln p arrays. `carried` (a carry.CarriedScorer) scores the records longer
  than the window instead of strided windows. Returns one RecordScore per
  record, in input order.
  """
  log_probs = log_probs or scorer.token_log_probs
  progress = progress or Progress(total)
  out: list[RecordScore] = []
  short: list[tuple[int, str]] = []

  def flush_short():
    if short:
      lps = log_probs([s for _, s in short])
      for (i, s), lp in zip(short, lps):
        out[i].log_likelihood = float(lp.sum())
        out[i].windows, out[i].window_nucleotides = 1, len(s)
      progress.add(sum(len(s) for _, s in short), sum(float(lp.sum()) for lp in lps), "short records")
      short.clear()

  short_nt = 0
  for rec in records:
    rid, seq = (rec.record_id, rec.sequence) if hasattr(rec, "sequence") else rec
    out.append(RecordScore(str(rid), len(seq)))
    if len(seq) <= plan.window:
      short.append((len(out) - 1, seq))
      short_nt += len(seq)
      if short_nt >= SHORT_GROUP_NUCLEOTIDES:
        flush_short()
        short_nt = 0
      continue
    if carried is not None:
      done = 0
      for n, ll in carried.record_chunks(seq):
        out[-1].log_likelihood += ll
        out[-1].windows += 1
        done += n
        progress.add(n, ll, out[-1].record_id, (done, len(seq)))
      out[-1].window_nucleotides = len(seq) + int(sum(f - b for b, _, f in carried.segment_spans(len(seq))))
    else:
      score_long(seq, out[-1], plan, log_probs, progress)
  flush_short()
  return out


def score_long(seq: str, rec: RecordScore, plan: Plan, log_probs: LogProbsFn, progress: Progress):
  """Adds the strided windows of one long record to `rec`, CHUNK_NUCLEOTIDES of windows per call."""
  spans = window_spans(len(seq), plan)
  per_call = max(1, CHUNK_NUCLEOTIDES // plan.window)
  done = 0
  for c in range(0, len(spans), per_call):
    chunk = spans[c:c + per_call]
    lps = log_probs([seq[b:e] for b, e, _ in chunk])
    ll = sum(float(lp[f - b:].sum()) for (b, _, f), lp in zip(chunk, lps))
    rec.log_likelihood += ll
    rec.windows += len(chunk)
    rec.window_nucleotides += int((chunk[:, 1] - chunk[:, 0]).sum())
    n = int((chunk[:, 1] - chunk[:, 2]).sum())
    done += n
    progress.add(n, ll, rec.record_id, (done, len(seq)))


def strided_log_probs(log_probs: LogProbsFn, seq: str, plan: Plan) -> np.ndarray:
  """float64 [L]: every nucleotide's ln p under the strided protocol, stitched (keeps the whole array)."""
  spans = window_spans(len(seq), plan)
  lps = log_probs([seq[b:e] for b, e, _ in spans])
  return np.concatenate([lp[f - b:] for (b, _, f), lp in zip(spans, lps)])


def totals(scores: list[RecordScore]) -> dict:
  """Corpus perplexity and bits/nt over every record (the sum of per-record log-likelihoods, in order)."""
  ll = np.array([r.log_likelihood for r in scores], np.float64)
  n = np.array([r.length for r in scores], np.int64)
  return perplexity_from_totals(float(ll.sum()), int(n.sum()))


TSV_COLUMNS = ("record", "nucleotides", "log_likelihood", "bits_per_nucleotide", "perplexity",
               "windows", "window_nucleotides")


def write_tsv(path: str, scores: list[RecordScore]) -> None:
  """One line per record (TSV_COLUMNS; log_likelihood in nats)."""
  with open(path, "w") as f:
    f.write("\t".join(TSV_COLUMNS) + "\n")
    for r in scores:
      row = r.row()
      f.write("\t".join(f"{row[c]:.6f}" if isinstance(row[c], float) else str(row[c])
                        for c in TSV_COLUMNS) + "\n")
