"""A reference genome read by random access (pysam's FASTA reader, htslib's faidx).

Plain FASTA and bgzip-compressed FASTA are read in place; their index (.fai,
and .gzi for bgzip) is used where it lies beside the file, else built once in
`cache_dir` (never beside the user's file, which may be read-only). A FASTA
compressed with plain gzip cannot be read at random: it is decompressed once
into `cache_dir` (named after the file, its size and its time) and read from
there on every later run. `bgzip -i ref.fa` makes such a copy unnecessary.

Chromosome names: `chr17` in the variants finds `17` in the reference and the
other way round (and chrM / MT).
"""

from __future__ import annotations

import gzip
import os
import shutil

from dnagen_jax.errors import UserError


def is_bgzf(path: str) -> bool:
  """True for a BGZF file (gzip with the 'BC' extra field), False for plain gzip or text."""
  with open(path, "rb") as f:
    head = f.read(18)
  return len(head) >= 14 and head[:2] == b"\x1f\x8b" and head[3] & 4 and head[12:14] == b"BC"


def is_gzip(path: str) -> bool:
  with open(path, "rb") as f:
    return f.read(2) == b"\x1f\x8b"


def _decompressed_copy(path: str, cache_dir: str) -> str:
  st = os.stat(path)
  base = os.path.basename(path)
  base = base[:-3] if base.endswith(".gz") else base
  target = os.path.join(cache_dir, f"{base}.{st.st_size}-{int(st.st_mtime)}.fa")
  if not os.path.exists(target):
    os.makedirs(cache_dir, exist_ok=True)
    print(f"reference: {path} is plain gzip (not bgzip), which cannot be read at random; "
          f"decompressing it once to {target}", flush=True)
    tmp = target + f".tmp{os.getpid()}"
    try:
      with gzip.open(path, "rb") as src, open(tmp, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 24)
    except (OSError, EOFError) as e:
      os.remove(tmp)
      raise UserError(f"--reference={path}: damaged gzip file ({e})") from None
    os.replace(tmp, target)  # atomic: a killed run leaves no half copy under the final name
  return target


class Reference:
  """Random access to the sequences of a FASTA file; `fetch` returns upper case."""

  def __init__(self, path: str, cache_dir: str):
    import pysam  # pylint: disable=g-import-not-at-top
    if not os.path.isfile(path):
      raise UserError(f"--reference={path}: no such file")
    self.path = path
    fasta = path
    if is_gzip(path) and not is_bgzf(path):
      fasta = _decompressed_copy(path, cache_dir)
    fai, gzi = fasta + ".fai", (fasta + ".gzi" if is_bgzf(fasta) else None)
    if not os.path.exists(fai) or (gzi and not os.path.exists(gzi)):
      os.makedirs(cache_dir, exist_ok=True)
      stem = os.path.join(cache_dir, os.path.basename(fasta))
      fai, gzi = stem + ".fai", (stem + ".gzi" if gzi else None)
      if not os.path.exists(fai):
        args = [fasta, "--fai-idx", fai] + (["--gzi-idx", gzi] if gzi else [])
        try:
          pysam.faidx(*args)
        except pysam.utils.SamtoolsError as e:
          raise UserError(f"--reference={path}: cannot index this FASTA "
                          f"({str(e).strip().splitlines()[-1]})") from None
    try:
      self._fasta = pysam.FastaFile(fasta, filepath_index=fai, filepath_index_compressed=gzi)
    except (OSError, ValueError) as e:
      raise UserError(f"--reference={path}: cannot read this FASTA ({e})") from None
    self.lengths = dict(zip(self._fasta.references, self._fasta.lengths))

  def resolve(self, chrom: str) -> str | None:
    """The reference's name for `chrom` (chr17 <-> 17, chrM <-> MT), or None."""
    candidates = [chrom]
    bare = chrom[3:] if chrom.lower().startswith("chr") else chrom
    candidates += [bare, "chr" + bare]
    if bare.upper() in ("M", "MT"):
      candidates += ["MT", "chrM", "M", "chrMT"]
    return next((c for c in candidates if c in self.lengths), None)

  def fetch(self, name: str, start: int, end: int) -> str:
    """Upper-case sequence of `name` over 0-based [start, end)."""
    return self._fasta.fetch(name, start, end).upper()

  def close(self):
    self._fasta.close()
