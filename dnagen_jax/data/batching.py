"""Genes to padded token batches: training batches by step, evaluation batches by length.

Batch layout for a gene x_1..x_L (the study's protocol):
  inputs  = [BOS, x_1, ..., x_{L-1}, PAD...]   [batch, length] int32
  targets = [x_1, ..., x_L, PAD...]            [batch, length] int32
  mask    = 1.0 on the L real targets          [batch, length] float32
so the loss and perplexity cover every nucleotide of the gene given BOS.
A training batch for step s is a pure function of (seed, s), and the grain
iterator state is checkpointed, so a resumed run sees exactly the batches it
would have seen. Each distinct length is one compiled program: `fit_buckets`
chooses few lengths that pad little.
"""

from __future__ import annotations

import grain
import numpy as np

from dnagen_jax.data import kmers
from dnagen_jax.data import storage
from dnagen_jax.data import tokens
from dnagen_jax.data import windows

_COMPLEMENT = str.maketrans("ACGTN", "TGCAN")


def reverse_complement(seq: str) -> str:
  """The reverse complement of a sequence over ACGTN."""
  return seq.translate(_COMPLEMENT)[::-1]


def bucket_length(n_tokens: int, buckets) -> int:
  """Smallest bucket >= n_tokens; longer inputs are cut to the last bucket."""
  for b in buckets:
    if n_tokens <= b:
      return int(b)
  return int(buckets[-1])


def fit_buckets(lengths, k: int, multiple: int = 8) -> tuple[int, ...]:
  """The k bucket lengths that pad `lengths` (one per batch) to the fewest tokens.

  Each length is padded to the first bucket >= it; buckets are multiples of
  `multiple` and the last one covers max(lengths). Exact, by dynamic
  programming over the distinct rounded lengths (O(k n^2), n <= a few hundred).
  """
  rounded = -(-np.asarray(lengths, np.int64) // multiple) * multiple
  cand, counts = np.unique(rounded, return_counts=True)
  n, k = len(cand), max(1, min(k, len(cand)))
  covered = np.concatenate([[0], np.cumsum(counts)])          # batches with length <= cand[i-1]
  # cost[j, i]: fewest tokens for the lengths up to cand[i] with j + 1 buckets, the last at cand[i].
  cost = np.full((k, n), np.inf)
  prev = np.zeros((k, n), np.int64)
  cost[0] = cand * covered[1:]
  for j in range(1, k):
    for i in range(j, n):
      # last bucket cand[i] covers cand[p+1..i]; the rest is cost[j-1, p]
      options = cost[j - 1, :i] + cand[i] * (covered[i + 1] - covered[1:i + 1])
      prev[j, i] = int(np.argmin(options))
      cost[j, i] = options[prev[j, i]]
  buckets, i = [], n - 1
  for j in range(k - 1, -1, -1):
    buckets.append(int(cand[i]))
    i = prev[j, i]
  return tuple(sorted(buckets))


def make_batch(seqs: list[str], length: int, batch_size: int | None = None, kmer: int = 1) -> dict:
  """Pads genes into one batch of fixed shape [batch_size, length].

  Genes longer than `length` tokens are cut (the study cut BOS + gene to
  1023 tokens; its genes never reached that). Rows past len(seqs) are padding
  with an all-zero mask. kmer > 1: tokens are k-mers (`kmers.encode`).
  """
  batch_size = batch_size or len(seqs)
  inputs = np.zeros((batch_size, length), np.int32)
  targets = np.zeros((batch_size, length), np.int32)
  for i, s in enumerate(seqs):
    toks = tokens.encode(s[:length]) if kmer == 1 else kmers.encode(s, kmer)[:length]
    targets[i, :len(toks)] = toks
    inputs[i, 0] = tokens.BOS
    inputs[i, 1:len(toks)] = toks[:-1]
  return {"inputs": inputs, "targets": targets,
          "mask": (targets != tokens.PAD).astype(np.float32)}


class TrainBatches:
  """Endless, seeded, length-sorted training batches; step s -> batch s.

  The plan is the one users write by hand for recurrent nets: each epoch,
  every train gene gets the key length + Uniform[0, sort_noise) (seeded by
  epoch), the genes are sorted by that key and cut into batches of
  `batch_size`, and the batch order is shuffled. So a batch holds genes of
  about one length and pads only to its own longest gene, rounded up to the
  first of `length_buckets` that fits (fine buckets: little padding; each
  bucket is one compiled shape). With data.num_buckets = k > 0 the buckets
  are instead the k lengths that pad this split's batches least
  (`fit_buckets`), capped at the last of `length_buckets`. The noise varies which genes meet in a batch
  from epoch to epoch. The last len(train) % batch_size genes of an epoch's
  order sit that epoch out. Windows of a genome are read shifted by their
  draw for the epoch (`genome_store.WindowSource.epoch_tokens`); with
  data.reverse_complement each example is reverse-complemented with
  probability 1/2, drawn per (seed, epoch, example); data.softmask_weight
  sets the mask (the loss weight) of soft-masked bases. The iterator is a grain `DatasetIterator`, whose
  `get_state()` is checkpointed.
  """

  def __init__(self, data_config, batch_size: int, seed: int, rows: tuple[int, int] | None = None):
    """rows (first, stop): build only these rows of each global batch (this process's share on
    several hosts; `runtime.mesh_utils.process_rows`), with the global batch's length and, as
    `nucleotides_total` / `tokens_total`, its counts. None: whole batches, as before."""
    self.rows = rows
    self.src = storage.data_source(data_config, "train")
    self.kmer = int(data_config.get("kmer", 1))
    self.gene_lengths = storage.example_lengths(self.src)
    # Windows (genome_store): each epoch shifts every training window by its own draw.
    self.shifted = hasattr(self.src, "epoch_tokens")
    self.reverse_complement = bool(data_config.get("reverse_complement", False))
    self.softmask_weight = float(data_config.get("softmask_weight", 1.0))
    self.lengths = kmers.num_tokens(self.gene_lengths, self.kmer)  # tokens per gene
    self.batch_size, self.seed = batch_size, seed
    self.buckets = tuple(data_config.length_buckets)
    self.sort_noise = float(data_config.sort_noise)
    self.batches_per_epoch = max(1, len(self.src) // batch_size)
    self._plan = (-1, None)
    if data_config.num_buckets:
      # Shapes fitted to this split: the longest batch of three epochs' plans
      # (noise varies them), capped at the last configured bucket.
      cap = self.buckets[-1]
      maxima = np.concatenate([np.minimum(self.lengths[self._epoch_plan(e)].max(axis=1), cap)
                               for e in range(3)])
      self.buckets = fit_buckets(maxima, data_config.num_buckets)
    n = len(self.src)
    self.nucleotides_per_epoch = int(
        np.minimum(self.lengths, self.buckets[-1]).sum() * self.batches_per_epoch * batch_size / n)

  def _epoch_plan(self, epoch: int) -> np.ndarray:
    """[batches_per_epoch, batch_size] gene indices of one epoch."""
    order = np.asarray(grain.MapDataset.range(len(self.src)).shuffle(seed=self.seed + 7919 * epoch))
    order = order[: self.batches_per_epoch * self.batch_size]
    rng = np.random.default_rng([self.seed, epoch])
    key = self.lengths[order] + rng.uniform(0.0, self.sort_noise, len(order))
    batches = order[np.argsort(key, kind="stable")].reshape(-1, self.batch_size)
    return batches[rng.permutation(len(batches))]

  def _padded_lengths(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
    """Real nucleotides [batches, batch_size] of `epoch`'s plan and each batch's padded length [batches]."""
    real = np.minimum(self.lengths[self._epoch_plan(epoch)], self.buckets[-1])
    return real, np.asarray([bucket_length(int(m), self.buckets) for m in real.max(axis=1)])

  def shapes(self, epoch: int = 0) -> list[tuple[int, int]]:
    """The distinct batch shapes [batch_size, length] of `epoch`, shortest first."""
    return [(self.batch_size, int(t)) for t in np.unique(self._padded_lengths(epoch)[1])]

  def padded_fraction(self, epoch: int = 0) -> float:
    """Share of the tokens of `epoch`'s batches that are padding (0 = none)."""
    real, lengths = self._padded_lengths(epoch)
    return float(1.0 - real.sum() / (lengths * self.batch_size).sum())

  def _batch(self, step: int) -> dict:
    epoch, i = divmod(step, self.batches_per_epoch)
    if self._plan[0] != epoch:  # a new epoch: one permutation for all its batches
      self._plan = (epoch, self._epoch_plan(epoch))
    genes = self._plan[1][i]
    if self.rows is not None:  # the length and counts of the global batch, from the lengths alone
      length = bucket_length(int(self.lengths[genes].max()), self.buckets)
      totals = {"nucleotides_total": np.int64(np.minimum(self.gene_lengths[genes], length * self.kmer).sum()),
                "tokens_total": np.int64(len(genes) * length)}
      genes = genes[self.rows[0]:self.rows[1]]  # read and encode this process's rows only
    lower = None
    if self.shifted:
      toks = [self.src.epoch_tokens(int(j), epoch, self.seed) for j in genes]
      seqs = [tokens.token_string(t) for t in toks]
      lower = [(t & tokens.LOWER) > 0 for t in toks]
    else:
      seqs = [storage.as_str(self.src[int(j)]["sequence"]) for j in genes]
    if self.reverse_complement:  # per window index: the same draws for any share of the rows
      flip = windows.flipped(self.seed, epoch, genes)
      seqs = [reverse_complement(s) if f else s for s, f in zip(seqs, flip)]
      if lower is not None:
        lower = [m[::-1] if f else m for m, f in zip(lower, flip)]
    if self.rows is None:
      length = bucket_length(int(kmers.num_tokens(max(len(s) for s in seqs), self.kmer)), self.buckets)
    batch = make_batch(seqs, length, kmer=self.kmer)
    if self.rows is not None:
      batch.update(totals)
    if self.kmer > 1 or self.softmask_weight != 1.0:  # nucleotides per row (the trainer counts these, not tokens)
      batch["nucleotides"] = np.asarray([min(len(s), length * self.kmer) for s in seqs], np.int64)
    if self.softmask_weight != 1.0:  # soft-masked bases weigh softmask_weight in the loss
      for r, m in enumerate(lower):
        m = m[:length]
        batch["mask"][r, :m.size][m] = self.softmask_weight
    return batch

  def iterator(self) -> grain.DatasetIterator:
    """A checkpointable iterator over steps 0, 1, 2, ... (set_state to resume)."""
    ds = grain.MapDataset.range(self.batches_per_epoch * 10**6).map(self._batch)
    return ds.to_iter_dataset(grain.ReadOptions(num_threads=1, prefetch_buffer_size=4)).__iter__()


def eval_batches(seqs: list[str], batch_size: int, buckets, kmer: int = 1) -> list[tuple[np.ndarray, dict]]:
  """Length-sorted, bucketed batches covering every gene exactly once.

  Returns (indices, batch) pairs: `indices` [n_i] are positions in `seqs`;
  batches are padded to `batch_size` rows so that few shapes get compiled.
  Lengths and buckets count tokens (k-mers when kmer > 1).
  """
  order = np.argsort([len(s) for s in seqs], kind="stable")
  out = []
  for start in range(0, len(order), batch_size):
    idx = order[start:start + batch_size]
    chunk = [seqs[i] for i in idx]
    length = bucket_length(int(kmers.num_tokens(max(len(s) for s in chunk), kmer)), buckets)
    out.append((idx, make_batch(chunk, length, batch_size, kmer)))
  return out
