"""`gene_dataset`: genes as a TFDS data set, written to array_record (no TensorFlow).

Two kinds of builder config:
  * synthetic (the embedded default): genes drawn from a seeded random Markov
    chain (`dnagen_jax.data.synthetic.MarkovSource`), so the exact oracle perplexity
    of every split is known;
  * files: the user's CSV (study format) and FASTA files. Duplicate sequences
    are kept once (first seen), genes outside [min_length, max_length] are
    dropped, and each gene's split is decided by a hash of its sequence alone,
    so adding a file never moves another file's genes between splits.

Each example: {'gene_id': str, 'sequence': str over ACGTN, 'length': int32}.
Config names carry a hash of their settings, so two different file sets or
filters never share (or overwrite) a prepared data set.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os

import numpy as np
import tensorflow_datasets as tfds

from dnagen_jax.data import sequence_io
from dnagen_jax.data import synthetic

SPLITS = ("train", "validation", "test")


@dataclasses.dataclass
class GeneDatasetConfig(tfds.core.BuilderConfig):
  """Settings of one prepared data set (see module docstring)."""
  source: str = "synthetic"          # 'synthetic' or 'files'
  files: tuple = ()                  # files config: input paths, in order
  min_length: int = 1                # drop shorter genes (nucleotides)
  max_length: int = 1000             # drop longer genes (the study: 1000)
  unknown_policy: str = "error"      # see dnagen_jax.data.tokens
  val_fraction: float = 0.1          # files config: share of genes in validation
  test_fraction: float = 0.1         # files config: share of genes in test
  synthetic_order: int = 3           # synthetic: Markov order k
  synthetic_alpha: float = 1.0       # synthetic: Dirichlet concentration
  synthetic_seed: int = 0            # synthetic: chain and sampling seed
  synthetic_sizes: tuple = (3000, 300, 300)  # synthetic: genes per split


def split_of(sequence: str, val_fraction: float, test_fraction: float) -> str:
  """Deterministic split of one gene, from a hash of its sequence alone."""
  h = int.from_bytes(hashlib.sha1(sequence.encode()).digest()[:8], "big") / 2.0 ** 64
  if h < test_fraction:
    return "test"
  if h < test_fraction + val_fraction:
    return "validation"
  return "train"


def markov_source(cfg: GeneDatasetConfig) -> synthetic.MarkovSource:
  # Gene-like lengths (200..max_length, median 550); tiny test configs shrink both.
  min_length = max(cfg.min_length, min(200, cfg.max_length // 2))
  return synthetic.MarkovSource(
      order=cfg.synthetic_order, alpha=cfg.synthetic_alpha, seed=cfg.synthetic_seed,
      min_length=min_length, max_length=cfg.max_length,
      mean_length=min(550.0, (min_length + cfg.max_length) / 2))


def make_config(**settings) -> GeneDatasetConfig:
  """Builds a config whose name is unique to its settings."""
  settings["files"] = tuple(os.path.abspath(f) for f in settings.get("files", ()))
  settings["synthetic_sizes"] = tuple(settings.get("synthetic_sizes", (3000, 300, 300)))
  cfg = GeneDatasetConfig(name="tmp", **settings)
  key = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(GeneDatasetConfig)
         if f.name not in tfds.core.BuilderConfig.__dataclass_fields__}
  if cfg.source == "files":
    # Changed file contents must give a new data set: key on size and mtime too.
    key["stat"] = [(os.path.getsize(f), int(os.path.getmtime(f))) for f in cfg.files]
  digest = hashlib.sha1(json.dumps(key, sort_keys=True, default=list).encode()).hexdigest()[:10]
  return dataclasses.replace(cfg, name=f"{cfg.source}-{digest}",
                             description=json.dumps(key, default=list))


class Builder(tfds.core.GeneratorBasedBuilder):
  """DatasetBuilder for gene_dataset."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  BUILDER_CONFIGS = [make_config(source="synthetic")]
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  For the files config, place the study's CSV files (or FASTA files) in
  `<data_dir>/downloads/manual/` (by default ~/tensorflow_datasets/downloads/manual/),
  or name them with --config.data.files.
  """

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            "gene_id": tfds.features.Text(),
            "sequence": tfds.features.Text(),
            "length": np.int32,
        }),
        supervised_keys=None,
    )

  def _split_generators(self, dl_manager):
    cfg = self.builder_config
    if cfg.source == "synthetic":
      src = markov_source(cfg)
      per_split = {s: [(f"syn-{s}-{i}", seq) for i, seq in enumerate(src.sample(n, seed=j))]
                   for j, (s, n) in enumerate(zip(SPLITS, cfg.synthetic_sizes))}
    else:
      files = list(cfg.files) or sequence_io.expand_paths(str(dl_manager.manual_dir))
      per_split = {s: [] for s in SPLITS}
      seen = set()
      for path in files:
        for rec in sequence_io.read_sequences(path, cfg.unknown_policy):
          if rec.sequence in seen or not cfg.min_length <= len(rec.sequence) <= cfg.max_length:
            continue
          seen.add(rec.sequence)
          split = split_of(rec.sequence, cfg.val_fraction, cfg.test_fraction)
          per_split[split].append((rec.record_id, rec.sequence))
    return {s: self._generate_examples(per_split[s]) for s in SPLITS}

  def _generate_examples(self, genes):
    for i, (gene_id, seq) in enumerate(genes):
      yield i, {"gene_id": gene_id, "sequence": seq, "length": len(seq)}


def make_builder(data_dir: str, **settings) -> Builder:
  """Returns the builder for `settings`, stored under `data_dir`."""
  cfg = make_config(**settings)
  # TFDS refuses a config object that shadows a registered one: use its name.
  config = cfg.name if cfg.name in Builder.builder_configs else cfg
  return Builder(config=config, data_dir=data_dir, file_format="array_record")
