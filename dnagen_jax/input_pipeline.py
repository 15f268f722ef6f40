"""From the prepared TFDS data set to padded, sharded token batches.

The data set is built once per setting (`prepare`), then read through
`tfds.data_source` (random access over array_record) and grain. A training
batch for step s is a pure function of (seed, s), and the grain iterator state
is checkpointed, so a resumed run sees exactly the batches it would have seen.

Batch layout for a gene x_1..x_L (the study's protocol):
  inputs  = [BOS, x_1, ..., x_{L-1}, PAD...]   [batch, length] int32
  targets = [x_1, ..., x_L, PAD...]            [batch, length] int32
  mask    = 1.0 on the L real targets          [batch, length] float32
so the loss and perplexity cover every nucleotide of the gene given BOS.
"""

from __future__ import annotations

import os

import grain
from absl import logging
import numpy as np
import tensorflow_datasets as tfds

from dnagen_jax import tokens
from dnagen_jax.errors import UserError
from dnagen_jax.sequence_io import Record

tfds.disable_progress_bar()

SPLITS = ("train", "validation", "test")


def data_dir(data_config) -> str:
  return os.path.expanduser(
      data_config.data_dir or os.environ.get("TFDS_DATA_DIR", "~/tensorflow_datasets"))


def dataset_settings(data_config) -> dict:
  """The builder settings named by a `config.data` block."""
  from dnagen_jax import sequence_io  # pylint: disable=g-import-not-at-top
  tokens.check_policy(data_config.unknown_policy)
  if data_config.source not in ("synthetic", "files"):
    raise UserError(f"data.source={data_config.source!r} must be 'synthetic' or 'files'")
  files = ()
  if data_config.source == "files" and data_config.files:
    files = tuple(sequence_io.expand_paths(data_config.files))
  return dict(
      source=data_config.source, files=files,
      min_length=data_config.min_length, max_length=data_config.max_length,
      unknown_policy=data_config.unknown_policy,
      val_fraction=data_config.val_fraction, test_fraction=data_config.test_fraction,
      synthetic_order=data_config.synthetic_order,
      synthetic_alpha=data_config.synthetic_alpha,
      synthetic_seed=data_config.synthetic_seed,
      synthetic_sizes=tuple(data_config.synthetic_sizes))


def prepare(data_config):
  """Builds (once) and returns the TFDS builder for `data_config`."""
  from dnagen_jax.datasets.gene_dataset import gene_dataset_dataset_builder as gdb  # pylint: disable=g-import-not-at-top
  verbosity = logging.get_verbosity()
  logging.set_verbosity(logging.ERROR)  # TFDS warns at every custom config: noise here
  try:
    builder = gdb.make_builder(data_dir(data_config), **dataset_settings(data_config))
    builder.download_and_prepare()
  finally:
    logging.set_verbosity(verbosity)
  for split in SPLITS:
    if builder.info.splits[split].num_examples == 0:
      raise UserError(
          f"data set {builder.builder_config.name}: the {split} split is empty "
          f"(too few genes after the length filter {data_config.min_length}.."
          f"{data_config.max_length}, or split fractions too small)")
  return builder


def data_source(data_config, split: str):
  """Random-access source of {'gene_id', 'sequence', 'length'} examples."""
  return prepare(data_config).as_data_source(split=split)


def load_records(data_config, split: str) -> list[Record]:
  """All genes of a split, in stored order, as `Record`s (sequence over ACGTN)."""
  src = data_source(data_config, split)
  return [Record(_str(ex["gene_id"]), _str(ex["sequence"])) for ex in (src[i] for i in range(len(src)))]


def oracle_perplexity(data_config, split: str) -> float | None:
  """Exact perplexity of the synthetic source on `split`; None for files."""
  if data_config.source != "synthetic":
    return None
  from dnagen_jax.datasets.gene_dataset import gene_dataset_dataset_builder as gdb  # pylint: disable=g-import-not-at-top
  source = gdb.markov_source(gdb.make_config(**dataset_settings(data_config)))
  return source.oracle_perplexity([r.sequence for r in load_records(data_config, split)])


def _str(value) -> str:
  return value.decode() if isinstance(value, bytes) else str(value)


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


def make_batch(seqs: list[str], length: int, batch_size: int | None = None) -> dict:
  """Pads genes into one batch of fixed shape [batch_size, length].

  Genes longer than `length` nucleotides are cut (the study cut BOS + gene to
  1023 tokens; its genes never reached that). Rows past len(seqs) are padding
  with an all-zero mask.
  """
  batch_size = batch_size or len(seqs)
  inputs = np.zeros((batch_size, length), np.int32)
  targets = np.zeros((batch_size, length), np.int32)
  for i, s in enumerate(seqs):
    toks = tokens.encode(s[:length])
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
  order sit that epoch out. The iterator is a grain `DatasetIterator`, whose
  `get_state()` is checkpointed.
  """

  def __init__(self, data_config, batch_size: int, seed: int):
    self.src = data_source(data_config, "train")
    self.lengths = np.asarray([self.src[i]["length"] for i in range(len(self.src))])
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

  def shapes(self, epoch: int = 0) -> list[tuple[int, int]]:
    """The distinct batch shapes [batch_size, length] of `epoch`, shortest first."""
    real = np.minimum(self.lengths[self._epoch_plan(epoch)], self.buckets[-1])
    lengths = sorted({bucket_length(int(m), self.buckets) for m in real.max(axis=1)})
    return [(self.batch_size, length) for length in lengths]

  def padded_fraction(self, epoch: int = 0) -> float:
    """Share of the tokens of `epoch`'s batches that are padding (0 = none)."""
    plan = self._epoch_plan(epoch)
    real = np.minimum(self.lengths[plan], self.buckets[-1])
    shapes = np.asarray([bucket_length(int(m), self.buckets) for m in real.max(axis=1)])
    return float(1.0 - real.sum() / (shapes * self.batch_size).sum())

  def _batch(self, step: int) -> dict:
    epoch, i = divmod(step, self.batches_per_epoch)
    if self._plan[0] != epoch:  # a new epoch: one permutation for all its batches
      self._plan = (epoch, self._epoch_plan(epoch))
    seqs = [_str(self.src[int(j)]["sequence"]) for j in self._plan[1][i]]
    length = bucket_length(max(len(s) for s in seqs), self.buckets)
    return make_batch(seqs, length)

  def iterator(self) -> grain.DatasetIterator:
    """A checkpointable iterator over steps 0, 1, 2, ... (set_state to resume)."""
    ds = grain.MapDataset.range(self.batches_per_epoch * 10**6).map(self._batch)
    return ds.to_iter_dataset(grain.ReadOptions(num_threads=1, prefetch_buffer_size=4)).__iter__()


def eval_batches(seqs: list[str], batch_size: int, buckets) -> list[tuple[np.ndarray, dict]]:
  """Length-sorted, bucketed batches covering every gene exactly once.

  Returns (indices, batch) pairs: `indices` [n_i] are positions in `seqs`;
  batches are padded to `batch_size` rows so that few shapes get compiled.
  """
  order = np.argsort([len(s) for s in seqs], kind="stable")
  out = []
  for start in range(0, len(order), batch_size):
    idx = order[start:start + batch_size]
    chunk = [seqs[i] for i in idx]
    length = bucket_length(max(len(s) for s in chunk), buckets)
    out.append((idx, make_batch(chunk, length, batch_size)))
  return out
