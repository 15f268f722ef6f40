"""Variant tables: a VCF (plain, gzip or bgzip; read by pysam) or a TSV/CSV.

Every input becomes one `VariantTable`: the input's columns as strings (so the
output can repeat them), and one `Variant` per row. A VCF record with several
ALT alleles becomes one row per allele; its INFO fields with one value per
allele (Number=A) keep that allele's value, those with one per allele and the
reference (Number=R) keep the reference's and that allele's.

TSV/CSV columns (names case-insensitive): chrom (or chr, chromosome, #chrom),
pos (1-based; or position, start), ref, alt; any other column (labels, scores,
groups) is kept as it is; an alt of several comma-separated alleles gives one row each.
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import os

import numpy as np

from dnagen_jax.errors import UserError

_ALIASES = {"chrom": ("chrom", "#chrom", "chr", "chromosome", "contig"),
            "pos": ("pos", "position", "start"),
            "ref": ("ref", "reference"),
            "alt": ("alt", "alternative", "alternate")}
_VCF_FIXED = ["CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER"]


@dataclasses.dataclass(frozen=True)
class Variant:
  """One allele: `chrom`, 1-based `pos`, `ref` and `alt` as written in the input."""
  chrom: str
  pos: int
  ref: str
  alt: str

  def name(self) -> str:
    return f"{self.chrom}:{self.pos} {self.ref}>{self.alt}"


@dataclasses.dataclass
class VariantTable:
  """columns [C]; rows [n][C] strings; variants [n], row i describes variants[i]."""
  path: str
  columns: list[str]
  rows: list[list[str]]
  variants: list[Variant]

  def column(self, name: str) -> list[str]:
    """The values of column `name` (exact, else case-insensitive match)."""
    return [r[self.index(name)] for r in self.rows]

  def index(self, name: str) -> int:
    if name in self.columns:
      return self.columns.index(name)
    lower = [c.lower() for c in self.columns]
    if name.lower() in lower:
      return lower.index(name.lower())
    raise UserError(f"{self.path}: no column {name!r} (columns: {', '.join(self.columns)})")

  def has(self, name: str) -> bool:
    return name.lower() in (c.lower() for c in self.columns)

  def subset(self, keep: list[int]) -> "VariantTable":
    return VariantTable(self.path, self.columns, [self.rows[i] for i in keep],
                        [self.variants[i] for i in keep])


def is_vcf(path: str) -> bool:
  name = path.lower()
  return name.endswith((".vcf", ".vcf.gz", ".vcf.bgz", ".bcf"))


def read_variants(path: str) -> VariantTable:
  """The variants of `path` (VCF by extension .vcf[.gz|.bgz]/.bcf, else TSV/CSV).

  Raises UserError (one line) for a missing or unreadable file, missing
  columns, a bad position, and a file with no variants.
  """
  if not os.path.isfile(path):
    raise UserError(f"--variants={path}: no such file")
  table = _read_vcf(path) if is_vcf(path) else _read_table(path)
  if not table.variants:
    raise UserError(f"{path}: no variants in this file")
  return table


def _value(v) -> str:
  if v is None:
    return "."
  if isinstance(v, (tuple, list)):
    return ",".join(_value(x) for x in v)
  if isinstance(v, bool):
    return "1" if v else "0"
  if isinstance(v, float):  # VCF floats are float32: their shortest text, as written
    return str(np.float32(v))
  return str(v)


def _read_vcf(path: str) -> VariantTable:
  import pysam  # pylint: disable=g-import-not-at-top
  quiet = pysam.set_verbosity(0)  # htslib would warn that a bgzip VCF has no .tbi: none is needed
  try:
    vcf = pysam.VariantFile(path)
  except (OSError, ValueError) as e:
    raise UserError(f"{path}: not a readable VCF ({e})") from None
  finally:
    pysam.set_verbosity(quiet)
  info_keys = list(vcf.header.info)
  numbers = {k: vcf.header.info[k].number for k in info_keys}
  rows, variants = [], []
  try:
    for rec in vcf:
      alts = rec.alts or ()
      for i, alt in enumerate(alts):
        info = []
        for k in info_keys:
          if k not in rec.info:
            info.append(".")
            continue
          v = rec.info[k]
          if isinstance(v, tuple) and numbers[k] == "A" and len(v) == len(alts):
            v = v[i]
          elif isinstance(v, tuple) and numbers[k] == "R" and len(v) == len(alts) + 1:
            v = (v[0], v[i + 1])
          info.append(_value(v))
        filt = ";".join(rec.filter.keys()) or "."
        rows.append([rec.chrom, str(rec.pos), rec.id or ".", rec.ref, alt, _value(rec.qual), filt]
                    + info)
        variants.append(Variant(rec.chrom, int(rec.pos), rec.ref, alt))
  except (OSError, ValueError) as e:
    raise UserError(f"{path}: damaged VCF after {len(rows)} variants ({e})") from None
  finally:
    vcf.close()
  return VariantTable(path, _VCF_FIXED + info_keys, rows, variants)


def _open_text(path: str):
  with open(path, "rb") as f:
    gz = f.read(2) == b"\x1f\x8b"
  return gzip.open(path, "rt", newline="") if gz else open(path, newline="")


def _read_table(path: str) -> VariantTable:
  with _open_text(path) as f:
    try:
      head = f.readline()
    except (OSError, UnicodeDecodeError) as e:
      raise UserError(f"{path}: not a text table ({e})") from None
    delim = "\t" if "\t" in head else ","
    columns = next(csv.reader([head], delimiter=delim), [])
    lower = [c.strip().lower() for c in columns]
    where = {}
    for key, names in _ALIASES.items():
      hit = next((lower.index(n) for n in names if n in lower), None)
      if hit is None:
        raise UserError(f"{path}: no {key} column (need chrom, pos, ref, alt; columns: "
                        f"{', '.join(columns) or 'none'})")
      where[key] = hit
    rows, variants = [], []
    for line, row in enumerate(csv.reader(f, delimiter=delim), start=2):
      if not row or all(not c.strip() for c in row):
        continue
      if len(row) != len(columns):
        raise UserError(f"{path}:{line}: {len(row)} fields, the header has {len(columns)}")
      pos = row[where["pos"]].strip()
      if not pos.isdigit() or int(pos) < 1:
        raise UserError(f"{path}:{line}: position {pos!r} is not a 1-based integer")
      for alt in row[where["alt"]].split(","):  # several alleles: one row each
        split = list(row)
        split[where["alt"]] = alt.strip()
        variants.append(Variant(row[where["chrom"]].strip(), int(pos), row[where["ref"]].strip(),
                                alt.strip()))
        rows.append(split)
  return VariantTable(path, columns, rows, variants)
