"""Reading genes from the study's CSV format and from FASTA files.

Both readers return a list of `Record(record_id, sequence)` with sequences
normalized by `tokens.normalize` (upper-case A, C, G, T, N). Every problem is a
one-line `UserError` naming the file, and the record and position where it
applies.

Formats:
  * CSV (`.csv`, optionally `.gz`): the study's gene table. The sequence column
    is `NucleotideSequence` (values wrapped in `<...>`); the id column is
    `NCBIGeneID`, or the 1-based row number when absent.
  * FASTA (`.fa`, `.fasta`, `.fna`, `.fas`, optionally `.gz`): multi-record,
    multi-line; the id is the first word after `>`.
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import io
import os
from typing import Iterable

from dnagen_jax.data import tokens
from dnagen_jax.errors import UserError

FASTA_SUFFIXES = (".fa", ".fasta", ".fna", ".fas")
CSV_SUFFIXES = (".csv",)
SEQUENCE_COLUMN = "NucleotideSequence"
ID_COLUMN = "NCBIGeneID"

csv.field_size_limit(1 << 30)  # genes can be long; the default is 128 KiB.


@dataclasses.dataclass(frozen=True)
class Record:
  record_id: str
  sequence: str


def _open_text(path: str):
  if not os.path.exists(path):
    raise UserError(f"{path}: no such file")
  if os.path.isdir(path):
    raise UserError(f"{path}: is a directory, expected a CSV or FASTA file")
  if path.endswith(".gz"):
    return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="replace")
  return open(path, encoding="utf-8", errors="replace", newline="")


def file_kind(path: str) -> str:
  """Returns 'csv' or 'fasta' from the file name (a trailing .gz is ignored)."""
  name = path[:-3] if path.endswith(".gz") else path
  name = name.lower()
  if name.endswith(CSV_SUFFIXES):
    return "csv"
  if name.endswith(FASTA_SUFFIXES):
    return "fasta"
  raise UserError(
      f"{path}: unknown file type; expected .csv or one of "
      f"{', '.join(FASTA_SUFFIXES)} (optionally .gz)")


def strip_brackets(value: str) -> str:
  """Removes the study's `<...>` wrapping and surrounding whitespace."""
  value = value.strip()
  if value.startswith("<") and value.endswith(">"):
    value = value[1:-1]
  return value


def read_csv_table(path: str, required: Iterable[str]) -> tuple[list[str], Iterable[dict]]:
  """Opens a CSV and checks that it has the `required` columns.

  Returns (columns, rows iterator). Raises a `UserError` that lists the columns
  the file does have when one is missing.
  """
  f = _open_text(path)
  reader = csv.DictReader(f)
  columns = reader.fieldnames or []
  missing = [c for c in required if c not in columns]
  if missing:
    f.close()
    have = ", ".join(columns) if columns else "none (empty file)"
    raise UserError(
        f"{path}: missing column {', '.join(missing)}; the file has columns: {have}")
  return columns, reader


def _normalized(records: Iterable[tuple[str, str]], path: str, policy: str) -> list[Record]:
  out = []
  for rid, seq in records:
    norm = tokens.normalize(seq, policy, where=f"{path}: record {rid}")
    if norm:
      out.append(Record(rid, norm))
  return out


def read_csv(path: str, policy: str = "error") -> list[Record]:
  columns, rows = read_csv_table(path, [SEQUENCE_COLUMN])
  has_id = ID_COLUMN in columns

  def raw():
    for i, row in enumerate(rows, start=1):
      seq = strip_brackets(row[SEQUENCE_COLUMN] or "")
      if seq:
        yield (row[ID_COLUMN] if has_id else f"row{i}"), seq

  return _normalized(raw(), path, policy)


def fasta_entries(path: str) -> Iterable[tuple[str, str, str]]:
  """(id, whole header line after '>', raw sequence) of each non-empty FASTA record, not normalized."""
  rid, header, parts = None, "", []
  with _open_text(path) as f:
    for lineno, line in enumerate(f, start=1):
      line = line.strip()
      if not line or line.startswith(";"):
        continue
      if line.startswith(">"):
        if rid is not None and parts:
          yield rid, header, "".join(parts)
        rid, header, parts = (line[1:].split() or [f"line{lineno}"])[0], line[1:].strip(), []
      elif rid is None:
        raise UserError(f"{path}: line {lineno}: sequence data before the first '>' header")
      else:
        parts.append(line)
  if rid is not None and parts:
    yield rid, header, "".join(parts)


def read_fasta(path: str, policy: str = "error") -> list[Record]:
  return _normalized(((rid, seq) for rid, _, seq in fasta_entries(path)), path, policy)


def read_sequences(path: str, policy: str = "error") -> list[Record]:
  """Reads a CSV or FASTA file. Raises `UserError` if it holds no sequence."""
  tokens.check_policy(policy)
  kind = file_kind(path)
  if not os.path.exists(path):
    raise UserError(f"{path}: no such file")
  records = read_csv(path, policy) if kind == "csv" else read_fasta(path, policy)
  if not records:
    raise UserError(f"{path}: no sequences found")
  return records


def expand_paths(spec: str) -> list[str]:
  """Expands a comma-separated list of files, directories and globs."""
  import glob
  paths = []
  for item in [s.strip() for s in spec.split(",") if s.strip()]:
    item = os.path.expanduser(item)
    if os.path.isdir(item):
      found = sorted(
          os.path.join(item, n) for n in os.listdir(item)
          if n.lower().removesuffix(".gz").endswith(CSV_SUFFIXES + FASTA_SUFFIXES))
      if not found:
        raise UserError(f"{item}: directory holds no .csv or FASTA files")
      paths.extend(found)
    elif any(ch in item for ch in "*?["):
      found = sorted(glob.glob(item))
      if not found:
        raise UserError(f"{item}: no file matches this pattern")
      paths.extend(found)
    else:
      if not os.path.exists(item):
        raise UserError(f"{item}: no such file")
      paths.append(item)
  if not paths:
    raise UserError("data.files is empty: name at least one CSV or FASTA file")
  return paths
