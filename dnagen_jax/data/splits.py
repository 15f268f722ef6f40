"""Which split each part of a record goes to: by sequence, record, file, BED intervals or hashed blocks.

Every rule is a function of the record alone (its id, file name, sequence
or the BED file), never of the other records, so adding a file moves nothing
already placed. The result for one record is a list of (start, end, split)
intervals; `windows` then cuts windows inside them, so no window holds
nucleotides of two splits.

  * 'hash': the whole record, by SHA-1 of its sequence (the genes' rule).
  * 'record': the whole record, by SHA-1 of its id (hold out chromosomes).
  * 'file': every record of a file, by SHA-1 of the file's name (hold out
    whole genomes).
  * 'bed': the intervals of `data.split_bed` (chrom, start, end, split;
    0-based, end excluded); parts of records no line covers are left out.
  * 'blocks': blocks of `data.block_size` nucleotides, each by SHA-1 of
    (record id, block number); neighbouring blocks of one split merge.
"""

from __future__ import annotations

import hashlib

import numpy as np

from dnagen_jax.errors import UserError

SPLITS = ("train", "validation", "test")
RULES = ("hash", "record", "file", "bed", "blocks")


def resolve(split_by: str, window: int) -> str:
  """data.split_by with 'auto' resolved: 'hash' for whole records (genes), 'blocks' for windows."""
  if split_by == "auto":
    return "blocks" if window > 0 else "hash"
  if split_by not in RULES:
    raise UserError(f"config.data.split_by={split_by!r} must be one of auto, {', '.join(RULES)}")
  return split_by


def fraction(key: bytes) -> float:
  """A uniform number in [0, 1) from SHA-1 of `key`."""
  return int.from_bytes(hashlib.sha1(key).digest()[:8], "big") / 2.0 ** 64


def by_fraction(h: float, val_fraction: float, test_fraction: float) -> str:
  """The split of hash value h (the genes' thresholds: test first, then validation)."""
  if h < test_fraction:
    return "test"
  if h < test_fraction + val_fraction:
    return "validation"
  return "train"


def block_splits(record_id: str, length: int, block_size: int, val_fraction: float,
                 test_fraction: float) -> list[tuple[int, int, str]]:
  """(start, end, split) of a record's hashed blocks, neighbours of one split merged."""
  out: list[tuple[int, int, str]] = []
  for i, a in enumerate(range(0, length, block_size)):
    split = by_fraction(fraction(f"{record_id}\0{i}".encode()), val_fraction, test_fraction)
    b = min(a + block_size, length)
    if out and out[-1][2] == split:
      out[-1] = (out[-1][0], b, split)
    else:
      out.append((a, b, split))
  return out


def read_bed(path: str) -> dict[str, list[tuple[int, int, str]]]:
  """record id -> sorted (start, end, split) of a BED file whose 4th column names the split."""
  from dnagen_jax.data import sources  # pylint: disable=g-import-not-at-top
  out: dict[str, list] = {}
  text = b"".join(sources.read_blocks(path)).decode("utf-8", "replace")
  for lineno, line in enumerate(text.splitlines(), start=1):
    if not line.strip() or line.startswith(("#", "track", "browser")):
      continue
    cols = line.split("\t") if "\t" in line else line.split()
    if len(cols) < 4:
      raise UserError(f"{path}: line {lineno}: expected chrom, start, end, split (4 columns), got {len(cols)}")
    try:
      start, end = int(cols[1]), int(cols[2])
    except ValueError:
      raise UserError(f"{path}: line {lineno}: start and end must be integers") from None
    split = {"valid": "validation", "val": "validation"}.get(cols[3], cols[3])
    if split not in SPLITS:
      raise UserError(f"{path}: line {lineno}: split {cols[3]!r} must be train, validation or test")
    if not 0 <= start < end:
      raise UserError(f"{path}: line {lineno}: interval {start}-{end} is empty or negative")
    out.setdefault(cols[0], []).append((start, end, split))
  if not out:
    raise UserError(f"{path}: no intervals found")
  for rid, ivs in out.items():
    ivs.sort()
    for (a0, b0, _), (a1, _, _) in zip(ivs, ivs[1:]):
      if a1 < b0:
        raise UserError(f"{path}: record {rid}: intervals {a0}-{b0} and {a1}-.. overlap")
  return out


def bed_splits(bed: dict, record_id: str, length: int, path: str) -> list[tuple[int, int, str]]:
  """The BED intervals of one record, checked against its length."""
  out = []
  for a, b, split in bed.get(record_id, ()):
    if b > length:
      raise UserError(f"{path}: record {record_id}: interval {a}-{b} ends past the record's "
                      f"{length:,} nucleotides")
    out.append((a, b, split))
  return out


def record_splits(rule: str, record_id: str, file_name: str, sequence_key: bytes, length: int,
                  data_config, bed: dict | None = None) -> list[tuple[int, int, str]]:
  """(start, end, split) intervals of one record under `rule`."""
  vf, tf = data_config.val_fraction, data_config.test_fraction
  if rule == "blocks":
    return block_splits(record_id, length, int(data_config.block_size), vf, tf)
  if rule == "bed":
    return bed_splits(bed or {}, record_id, length, data_config.split_bed)
  key = {"hash": sequence_key, "record": record_id.encode(), "file": file_name.encode()}[rule]
  return [(0, length, by_fraction(fraction(key), vf, tf))]


def as_arrays(intervals: list[tuple[int, int, str]]) -> dict[str, np.ndarray]:
  """split -> [k, 2] int64 intervals."""
  return {s: np.asarray([(a, b) for a, b, t in intervals if t == s], np.int64).reshape(-1, 2)
          for s in SPLITS}
