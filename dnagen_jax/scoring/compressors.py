r"""Bits per nucleotide of general-purpose compressors, to put beside the models.

  python -m dnagen_jax.scoring.compressors ../shared/data/genomes/ecoli_k12_mg1655.fasta.gz

A model that does not beat `xz -9e` has learned little about the sequence.
What is compressed: the ACGT sequence only. Every record of a file is read
as the models read it (sequence_io; soft-masked lowercase is upper-cased,
IUPAC codes become N), its N are dropped, and the records are joined end to
end with no header, newline or separator, one byte per nucleotide (ASCII).
bits/nt = 8 x compressed bytes / nucleotides. So the figure charges the
compressor for learning that only four letters occur (about 2 bits/nt is
what a model with no context gets), and nothing for line structure or
headers, which the models never see either.

Compressors (Python's standard library, the same algorithms and settings
as the command-line tools):
  xz -9e     lzma.compress(preset=9 | lzma.PRESET_EXTREME)   (.xz container)
  gzip -9    gzip.compress(compresslevel=9, mtime=0)
  bzip2 -9   bz2.compress(compresslevel=9)
Each file gets one row per compressor, and a last row covers all files joined.

With --given=TRAIN (a FASTA of the training split, `split_fasta`), each
figure is the compressor's cost of the file *after* it has read TRAIN, the
way a model is scored after training:
  bits/nt = 8 x (|C(TRAIN + file)| - |C(TRAIN)|) / nucleotides of the file.
xz -9e looks back 64 MiB, so it can copy from all of a bacterial genome's
training split; gzip looks back 32 KiB and bzip2 works in 900 kB blocks,
so TRAIN helps them little.
"""

from __future__ import annotations

import argparse
import bz2
import gzip
import json
import lzma
import os
import sys
import time
from typing import Callable, Iterable

import numpy as np

from dnagen_jax.data import sequence_io
from dnagen_jax.errors import UserError

COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    "xz -9e": lambda b: lzma.compress(b, preset=9 | lzma.PRESET_EXTREME),
    "gzip -9": lambda b: gzip.compress(b, compresslevel=9, mtime=0),
    "bzip2 -9": lambda b: bz2.compress(b, compresslevel=9),
}

_ACGT = np.zeros(256, bool)
_ACGT[[ord(c) for c in "ACGT"]] = True


def acgt_bytes(seqs: Iterable[str]) -> bytes:
  """The normalized sequences joined, N (and anything but ACGT) dropped: one ASCII byte per nucleotide."""
  parts = []
  for s in seqs:
    b = np.frombuffer(s.encode("latin-1"), np.uint8)
    parts.append(b[_ACGT[b]].tobytes())
  return b"".join(parts)


def bits_per_nucleotide(data: bytes, names: Iterable[str] = tuple(COMPRESSORS)) -> dict:
  """{compressor: {bits_per_nucleotide, compressed_bytes, seconds}} for ACGT bytes `data`."""
  if not data:
    raise UserError("no A, C, G or T to compress")
  out = {}
  for name in names:
    if name not in COMPRESSORS:
      raise UserError(f"unknown compressor {name!r}; one of {', '.join(COMPRESSORS)}")
    t0 = time.perf_counter()
    size = len(COMPRESSORS[name](data))
    out[name] = {"bits_per_nucleotide": 8.0 * size / len(data), "compressed_bytes": size,
                 "seconds": time.perf_counter() - t0}
  return out


def given_bits_per_nucleotide(data: bytes, given: bytes, names: Iterable[str] = tuple(COMPRESSORS)) -> dict:
  """bits_per_nucleotide of `data` after `given`: the extra compressed bytes of given + data."""
  if not data:
    raise UserError("no A, C, G or T to compress")
  alone = bits_per_nucleotide(given, names)
  both = bits_per_nucleotide(given + data, names)
  return {n: {"bits_per_nucleotide": 8.0 * (both[n]["compressed_bytes"] - alone[n]["compressed_bytes"])
              / len(data),
              "compressed_bytes": both[n]["compressed_bytes"] - alone[n]["compressed_bytes"],
              "seconds": both[n]["seconds"] + alone[n]["seconds"], "given_nucleotides": len(given)}
          for n in alone}


def compress_files(paths: list[str], policy: str = "n", names=tuple(COMPRESSORS),
                   given: str = "") -> list[dict]:
  """One row per file (and one for all files joined when there are several)."""
  prior = acgt_bytes(r.sequence for r in sequence_io.read_sequences(given, policy)) if given else b""
  measure = (lambda d: given_bits_per_nucleotide(d, prior, names)) if given else (
      lambda d: bits_per_nucleotide(d, names))
  rows, everything = [], []
  for path in paths:
    data = acgt_bytes(r.sequence for r in sequence_io.read_sequences(path, policy))
    everything.append(data)
    rows.append({"file": os.path.abspath(path), "nucleotides": len(data), "compressors": measure(data)})
  if len(paths) > 1:
    data = b"".join(everything)
    rows.append({"file": "all", "nucleotides": len(data), "compressors": measure(data)})
  for row in rows:
    row["given"] = os.path.abspath(given) if given else ""
  return rows


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  ap.add_argument("files", nargs="+", help="CSV/FASTA files, folders or globs (as data.files)")
  ap.add_argument("--compressors", default=",".join(COMPRESSORS),
                  help="comma-separated subset of: " + ", ".join(COMPRESSORS))
  ap.add_argument("--given", default="", help="a FASTA (the training split) read before each file: "
                  "the cost of the file after it")
  ap.add_argument("--out", default="", help="also write the rows as JSON here")
  args = ap.parse_args(argv)
  names = [n.strip() for n in args.compressors.split(",") if n.strip()]
  try:
    paths = sequence_io.expand_paths(",".join(args.files))
    rows = compress_files(paths, "n", names, args.given)
  except UserError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  for row in rows:
    figures = ", ".join(f"{n} {c['bits_per_nucleotide']:.4f}" for n, c in row["compressors"].items())
    after = f" after {os.path.basename(row['given'])}" if row["given"] else ""
    print(f"{os.path.basename(row['file'])}{after}: {row['nucleotides']:,} nt | bits/nt: {figures}")
  if args.out:
    with open(args.out, "w") as f:
      json.dump(rows, f, indent=2)
  return rows


if __name__ == "__main__":
  main()
