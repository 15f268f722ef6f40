"""The TFDS gene data set: prepared once per setting, read as records.

The data set is built once per `config.data` setting (`prepare`, array_record
files under data_dir/gene_dataset/<setting>/), then read through
`tfds.data_source` (random access over array_record). `batching` turns the
records into token batches.
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


def dataset_settings(data_config) -> dict:
  """The builder settings named by a `config.data` block."""
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
  """Builds (once) and returns the TFDS builder for `data_config`."""
  from dnagen_jax.data.gene_dataset import gene_dataset_dataset_builder as gdb  # pylint: disable=g-import-not-at-top
  verbosity = logging.get_verbosity()
  logging.set_verbosity(logging.ERROR)  # TFDS warns at every custom config: noise here
  try:
    root, settings = data_dir(data_config), dataset_settings(data_config)
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


def data_source(data_config, split: str):
  """Random-access source of {'gene_id', 'sequence', 'length'} examples.

  The train split is cut to its nested subset when data.train_nucleotides > 0
  (`subsets`): the one place it is applied, so every reader sees the same genes.
  """
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
