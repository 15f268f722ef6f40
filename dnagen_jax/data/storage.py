"""The prepared data set of a `config.data`: prepared once per setting, read by random access.

Two stores behind one interface:
  * genes (data.window = 0 and the other window fields at their defaults):
    the TFDS `gene_dataset` (array_record files under
    data_dir/gene_dataset/<setting>/), exactly as before;
  * windows (`windowed`): `genome_store`, records cut into windows
    (data_dir/genome_windows/<setting>/).
Either way `data_source(data_config, split)` is a random-access source of
{'gene_id', 'sequence', 'length'} examples (one window each) and
`example_lengths` their lengths; `load_records` builds a whole split as a
list, for the small consumers; `sequence_chunks` streams a split in pieces.
`batching` turns examples into token batches.
"""

from __future__ import annotations

import fcntl
import os

from absl import logging
import numpy as np
import tensorflow_datasets as tfds

from dnagen_jax.data import subsets
from dnagen_jax.data import tokens
from dnagen_jax.data.gene_dataset.gene_dataset_dataset_builder import SPLITS  # re-exported: one definition
from dnagen_jax.errors import UserError
from dnagen_jax.data.sequence_io import Record

tfds.disable_progress_bar()




def data_dir(data_config) -> str:
  return os.path.expanduser(
      data_config.data_dir or os.environ.get("TFDS_DATA_DIR", "~/tensorflow_datasets"))


def windowed(data_config) -> bool:
  """True when `data_config` cuts records into windows (`genome_store`), not the genes' TFDS set."""
  return (int(data_config.get("window", 0) or 0) > 0
          or data_config.get("split_by", "auto") not in ("auto", "hash")
          or int(data_config.get("n_run_cut", 0) or 0) > 0
          or float(data_config.get("max_n_fraction", 1.0)) < 1.0)


def dataset_settings(data_config) -> dict:
  """The settings that name the prepared data set of a `config.data` block."""
  if windowed(data_config):
    from dnagen_jax.data import genome_store  # pylint: disable=g-import-not-at-top
    return genome_store.settings(data_config)
  return gene_settings(data_config)


def dataset_name(data_config) -> str:
  """The prepared data set's name (unique to its settings)."""
  if windowed(data_config):
    from dnagen_jax.data import genome_store  # pylint: disable=g-import-not-at-top
    return genome_store.name(genome_store.settings(data_config))
  from dnagen_jax.data.gene_dataset import gene_dataset_dataset_builder as gdb  # pylint: disable=g-import-not-at-top
  return gdb.make_config(**gene_settings(data_config)).name


def gene_settings(data_config) -> dict:
  """The TFDS builder settings named by a `config.data` block (genes)."""
  from dnagen_jax.data import sequence_io  # pylint: disable=g-import-not-at-top
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
  """Builds (once) and returns the TFDS builder (genes) or the `genome_store.Store` (windows)."""
  if windowed(data_config):
    return _store(data_config)
  from dnagen_jax.data.gene_dataset import gene_dataset_dataset_builder as gdb  # pylint: disable=g-import-not-at-top
  verbosity = logging.get_verbosity()
  logging.set_verbosity(logging.ERROR)  # TFDS warns at every custom config: noise here
  try:
    root, settings = data_dir(data_config), gene_settings(data_config)
    name = gdb.make_config(**settings).name
    os.makedirs(root, exist_ok=True)
    # Jobs that start together (array tasks, a study's points) prepare one at a
    # time: the first builds, the others find it built (TFDS alone races on the rename).
    with open(os.path.join(root, f".prepare-{name}.lock"), "w") as lock:
      fcntl.flock(lock, fcntl.LOCK_EX)
      builder = gdb.make_builder(root, **settings)
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


_STORES: dict = {}  # prepared folder -> genome_store.Store, opened once per process


def _store(data_config):
  from dnagen_jax.data import genome_store  # pylint: disable=g-import-not-at-top
  folder = genome_store.prepare(data_config, data_dir(data_config))
  if folder not in _STORES:
    _STORES[folder] = genome_store.Store(folder)
  return _STORES[folder]


def data_source(data_config, split: str):
  """Random-access source of {'gene_id', 'sequence', 'length'} examples (len(src), src[i]).

  Windows: a `genome_store.WindowSource` (one window each; validation cut to
  its fixed sample of data.val_windows). The train split is cut to its nested
  subset when data.train_nucleotides > 0 (`subsets`): the one place it is
  applied, so every reader sees the same genes or blocks.
  """
  if windowed(data_config):
    return _window_source(data_config, split)
  src = prepare(data_config).as_data_source(split=split)
  target = int(data_config.get("train_nucleotides", 0) or 0)
  if split != "train" or target <= 0:
    return src
  key = (data_dir(data_config), repr(sorted(dataset_settings(data_config).items())), target)
  if key not in _SUBSETS:
    examples = [src[i] for i in range(len(src))]
    _SUBSETS[key] = subsets.prefix_indices([as_str(e["gene_id"]) for e in examples],
                                           [as_str(e["sequence"]) for e in examples], target)
  return subsets.SubsetSource(src, _SUBSETS[key])


_SUBSETS: dict = {}  # (data set, D) -> subset indices, computed once per process


def _window_source(data_config, split: str):
  from dnagen_jax.data import genome_store  # pylint: disable=g-import-not-at-top
  store = _store(data_config)
  src = genome_store.WindowSource(store, split)
  sample = int(data_config.get("val_windows", 0) or 0)
  if split == "validation" and 0 < sample < len(src):  # a fixed sample: the same in every run
    return src.subset(np.sort(np.random.default_rng(0).choice(len(src), sample, replace=False)))
  target = int(data_config.get("train_nucleotides", 0) or 0)
  if split != "train" or target <= 0:
    return src
  key = (store.folder, target)
  if key not in _SUBSETS:
    _SUBSETS[key] = subsets.block_prefix_indices(
        src.block_keys(int(data_config.block_size)), src.lengths, target)
  return src.subset(_SUBSETS[key])


def example_lengths(src) -> np.ndarray:
  """Nucleotides of every example of a source [n] int64 (windows: without reading any)."""
  if hasattr(src, "lengths"):
    return np.asarray(src.lengths, np.int64)
  return np.asarray([src[i]["length"] for i in range(len(src))], np.int64)


def sequence_chunks(data_config, split: str, nucleotides: int = 1 << 24):
  """A split's sequences in stored order, as lists of about `nucleotides` nucleotides each.

  For scoring a large split without holding it whole: a split smaller than
  `nucleotides` (every gene set) is one list, the same as `load_records`'s.
  """
  src = data_source(data_config, split)
  chunk, total = [], 0
  for i in range(len(src)):
    seq = as_str(src[i]["sequence"])
    chunk.append(seq)
    total += len(seq)
    if total >= nucleotides:
      yield chunk
      chunk, total = [], 0
  if chunk:
    yield chunk


def load_records(data_config, split: str) -> list[Record]:
  """All genes of a split, in stored order, as `Record`s (sequence over ACGTN)."""
  src = data_source(data_config, split)
  return [Record(as_str(ex["gene_id"]), as_str(ex["sequence"])) for ex in (src[i] for i in range(len(src)))]


def oracle_perplexity(data_config, split: str) -> float | None:
  """Exact perplexity of the synthetic source on `split`; None for files."""
  source = oracle_source(data_config)
  if source is None:
    return None
  return source.oracle_perplexity([r.sequence for r in load_records(data_config, split)])


def oracle_source(data_config):
  """The synthetic data's true source (`synthetic.MarkovSource`); None for files."""
  if data_config.source != "synthetic":
    return None
  from dnagen_jax.data.gene_dataset import gene_dataset_dataset_builder as gdb  # pylint: disable=g-import-not-at-top
  return gdb.markov_source(gdb.make_config(**dataset_settings(data_config)))


def as_str(value) -> str:
  """A TFDS string feature (bytes) as str."""
  return value.decode() if isinstance(value, bytes) else str(value)
