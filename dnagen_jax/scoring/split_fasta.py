r"""A trained workdir's data split as FASTA, for `--mode=eval` and the compressors on the same nucleotides.

  python -m dnagen_jax.scoring.split_fasta --workdir=/tmp/ecoli_ngram --split=test --out=/tmp/ecoli_test.fa

Windowed data sets (data.window > 0) hold a split as windows that tile
each of its segments (the intervals of one split between long runs of N);
here adjacent windows of one record are joined back into their segment, one
FASTA record `record_id:start-end` each, so that `--mode=eval` scores every
test nucleotide with the context before it inside its segment (strided
windows, docs/genomes.md) rather than from BOS at each stored window. Gene
data sets are written one gene per record. Nothing crosses a split
boundary: a segment holds nucleotides of one split only.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Iterator

import ml_collections

from dnagen_jax import config_check
from dnagen_jax.data import storage
from dnagen_jax.errors import UserError

LINE = 80  # FASTA line width


def segments(data_config, split: str) -> Iterator[tuple[str, str]]:
  """(id, sequence) of each contiguous stretch of `split`, in stored order."""
  src = storage.data_source(data_config, split)
  if not hasattr(src, "record"):  # genes: one record each
    for i in range(len(src)):
      ex = src[i]
      yield storage.as_str(ex["gene_id"]), storage.as_str(ex["sequence"])
    return
  ids = src.store.record_ids
  parts, rec, start, end = [], None, 0, 0
  for i in range(len(src)):
    r, s, n = int(src.record[i]), int(src.start[i]), int(src.length[i])
    if parts and (r != rec or s != end):
      yield f"{ids[rec]}:{start}-{end}", "".join(parts)
      parts = []
    if not parts:
      rec, start = r, s
    parts.append(storage.as_str(src[i]["sequence"]))
    end = s + n
  if parts:
    yield f"{ids[rec]}:{start}-{end}", "".join(parts)


def write(workdir: str, split: str, out: str) -> tuple[int, int]:
  """Writes the split of `workdir`'s data set to `out`; returns (records, nucleotides)."""
  if split not in ("train", "validation", "test"):
    raise UserError(f"--split={split!r} must be train, validation or test")
  config = ml_collections.ConfigDict(config_check.read_workdir_config(workdir))
  count = total = 0
  tmp = out + ".tmp"
  try:
    with open(tmp, "w") as f:
      for rid, seq in segments(config.data, split):
        f.write(f">{rid}\n")
        for i in range(0, len(seq), LINE):
          f.write(seq[i:i + LINE] + "\n")
        count, total = count + 1, total + len(seq)
    if not count:
      raise UserError(f"{workdir}: the {split} split is empty")
    os.replace(tmp, out)  # nothing half-written under the final name
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)
  return count, total


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  ap.add_argument("--workdir", required=True, help="a trained workdir (its config.json names the data)")
  ap.add_argument("--split", default="test", help="train, validation or test")
  ap.add_argument("--out", required=True, help="FASTA to write")
  args = ap.parse_args(argv)
  try:
    count, total = write(args.workdir, args.split, args.out)
  except UserError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  print(f"{args.out}: {count} records, {total:,} nt of the {args.split} split")


if __name__ == "__main__":
  main()
