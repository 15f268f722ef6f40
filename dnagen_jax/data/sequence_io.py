"""Reading genes from the study's CSV format and from FASTA files.

Both readers return a list of `Record(record_id, sequence)` with sequences
normalized by `tokens.normalize` (upper-case A, C, G, T, N). Every problem is a
one-line `UserError` naming the file, and the record and position where it
applies.

Formats:
  * CSV (`.csv`, optionally `.gz`): the study's gene table. The sequence column
    is `NucleotideSequence` (values wrapped in `<...>`); the id column is
    `NCBIGeneID`, or the 1-based row number when absent.
  * FASTA (`.fa`, `.fasta`, `.fna`, `.fas`): multi-record, multi-line; the id
    is the first word after `>`.
Any of them may be compressed with gzip, bgzip, xz or bzip2 (recognised by
the file's first bytes; `sources`). `iter_records` streams a file one record
at a time, for files too large to hold as a list.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import lzma
import os
import zlib
from typing import Iterable, Iterator

from dnagen_jax.data import sources
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
  return io.TextIOWrapper(sources.open_binary(path), encoding="utf-8", errors="replace", newline="")


def _guarded(lines, path: str):
  """Iterates `lines` of `path`, turning a decompression failure into a one-line UserError."""
  try:
    yield from lines
  except (EOFError, OSError, zlib.error, lzma.LZMAError) as e:
    raise sources.damaged(path, e) from None


def file_kind(path: str) -> str:
  """Returns 'csv' or 'fasta' from the file name (a trailing .gz/.bgz/.xz/.bz2 is ignored)."""
  name = sources.strip_compression(path).lower()
  if name.endswith(CSV_SUFFIXES):
    return "csv"
  if name.endswith(FASTA_SUFFIXES):
    return "fasta"
  raise UserError(
      f"{path}: unknown file type; expected .csv or one of "
      f"{', '.join(FASTA_SUFFIXES)} (optionally .gz, .bgz, .xz or .bz2)")


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
  reader = csv.DictReader(_guarded(f, path))
  columns = reader.fieldnames or []
  missing = [c for c in required if c not in columns]
  if missing:
    f.close()
    have = ", ".join(columns) if columns else "none (empty file)"
    raise UserError(
        f"{path}: missing column {', '.join(missing)}; the file has columns: {have}")
  return columns, _guarded(reader, path)


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


def fasta_entries(path: str, empty: str = "skip") -> Iterable[tuple[str, str, str]]:
  """(id, whole header line after '>', raw sequence) of each FASTA record, not normalized.

  empty='skip' passes over headers with no sequence (generated samples may be
  empty); 'error' refuses them in one line, as a cut or damaged file.
  """
  records = sources.fasta_raw_records(path, allow_empty=empty == "skip")
  for rid, header, raw in records:
    if raw:
      yield rid, header, raw.decode("latin-1")


def read_fasta(path: str, policy: str = "error") -> list[Record]:
  return _normalized(((rid, seq) for rid, _, seq in fasta_entries(path, empty="error")), path, policy)


def iter_records(path: str, policy: str = "error") -> Iterator[Record]:
  """The records of a CSV or FASTA file one at a time (memory: about one record).

  Same sequences, ids and errors as `read_sequences`, streamed.
  """
  tokens.check_policy(policy)
  if file_kind(path) == "csv":
    yield from read_csv(path, policy)
    return
  found = False
  for rid, toks in sources.fasta_token_records(path, policy):
    found = True
    yield Record(rid, tokens.token_string(toks))
  if not found:
    raise UserError(f"{path}: no sequences found")


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
          if sources.strip_compression(n).lower().endswith(CSV_SUFFIXES + FASTA_SUFFIXES))
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
