"""Seeded mutation sets drawn from a split (`--mode=mutate`).

The study's process: for each of `num_pairs` pairs, a gene is drawn uniformly
(with replacement) from the split, then k ~ Uniform{1..max_edits} edits are
applied one after another, each uniformly one of insertion of a random base,
deletion, and substitution by a different base (plus adjacent swaps of two
different bases with `swaps=True`). One `numpy.random.default_rng(seed)` drives
everything, so the same data, split and seed give a byte-identical CSV.
"""

from __future__ import annotations

import os

import numpy as np

from dnagen_jax.data.storage import SPLITS
from dnagen_jax.errors import UserError
from dnagen_jax.mutations import edits as edits_lib
from dnagen_jax.mutations import mutation_csv
from dnagen_jax.mutations.mutation_csv import MutationPair



def file_name(max_edits: int, seed: int, split: str = "test", swaps: bool = False) -> str:
  """'mutations_max5_seed0.csv'; a non-test split or swaps are named too."""
  name = f"mutations_max{max_edits}_seed{seed}"
  if split != "test":
    name += f"_{split}"
  if swaps:
    name += "_swaps"
  return name + ".csv"


def make_pairs(genes: list[tuple[str, str]], num_pairs: int, max_edits: int,
               seed: int, swaps: bool = False) -> list[MutationPair]:
  """Draws `num_pairs` (gene, mutated copy) pairs from `genes` [(id, sequence)]."""
  rng = np.random.default_rng(seed)
  pairs = []
  for _ in range(num_pairs):
    gid, real = genes[int(rng.integers(len(genes)))]
    k = int(rng.integers(1, max_edits + 1))
    mutated, edits = edits_lib.mutate(real, k, rng, swaps)
    pairs.append(MutationPair(gid, real, mutated, tuple(edits)))
  return pairs


def check_settings(max_edits: int, num_pairs: int, split: str) -> None:
  if max_edits < 1:
    raise UserError(f"--max_edits={max_edits}: must be at least 1")
  if num_pairs < 1:
    raise UserError(f"--num_pairs={num_pairs}: must be at least 1")
  if split not in SPLITS:
    raise UserError(f"--split={split!r} must be one of {', '.join(SPLITS)}")


def generate_set(data_config, path: str, max_edits: int, num_pairs: int, seed: int,
                 split: str = "test", swaps: bool = False) -> str:
  """Writes one set for the data set of `data_config` to `path`; returns `path`."""
  from dnagen_jax.data import storage  # pylint: disable=g-import-not-at-top
  check_settings(max_edits, num_pairs, split)
  records = storage.load_records(data_config, split)
  genes = [(r.record_id, r.sequence) for r in records if "N" not in r.sequence]
  if not genes:
    raise UserError(f"the {split} split has no gene made only of A, C, G, T to mutate")
  pairs = make_pairs(genes, num_pairs, max_edits, seed, swaps)
  settings = dict(max_edits=max_edits, num_pairs=num_pairs, seed=seed, split=split,
                  swaps=swaps, dataset=dataset_name(data_config), genes_in_split=len(genes))
  mutation_csv.write(path, pairs, settings)
  return path


def dataset_name(data_config) -> str:
  """Name of the prepared data set (unique to its settings): sets are shared per data set."""
  from dnagen_jax.data import storage  # pylint: disable=g-import-not-at-top
  return storage.dataset_name(data_config)


def run(config, workdir: str, max_edits: int, num_pairs: int, seed: int,
        split: str = "test", swaps: bool = False) -> str:
  """`--mode=mutate`: writes workdir/mutations_max{MAX}_seed{SEED}.csv (+ .edits.json)."""
  check_settings(max_edits, num_pairs, split)
  path = os.path.join(workdir, file_name(max_edits, seed, split, swaps))
  generate_set(config.data, path, max_edits, num_pairs, seed, split, swaps)
  print(f"wrote {num_pairs} pairs (MAX={max_edits}, seed={seed}, {split} split) to {path}")
  print(f"edit positions: {mutation_csv.edits_path(path)}")
  return path
