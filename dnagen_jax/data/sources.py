"""Sequence files of any size and compression, read as a stream of FASTA records.

The compression is recognised from the file's first bytes, not its name:
gzip (bgzip is gzip in blocks, read the same way), xz, bzip2, or plain text.
A damaged or truncated compressed file, a binary file, a header without
sequence or sequence before the first header is a one-line `UserError`
naming the file (and the record where known).

`fasta_token_records(path, policy)` streams a FASTA file one record at a
time as token arrays (memory: about three bytes per nucleotide of the
longest record, never the whole file); `sequence_io.iter_records` wraps it
as `Record`s of strings.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import zlib
from typing import Iterable, Iterator

import numpy as np

from dnagen_jax.data import tokens
from dnagen_jax.errors import UserError

COMPRESSION_SUFFIXES = (".gz", ".bgz", ".xz", ".bz2")
_MAGIC = ((b"\x1f\x8b", "gzip", gzip.open), (b"\xfd7zXZ\x00", "xz", lzma.open),
          (b"BZh", "bzip2", bz2.open))
_WHITESPACE = b" \t\r\n\v\f"
BLOCK = 1 << 24  # bytes read (decompressed) at a time
_BYTE_TABLES = {p: lut.tobytes() for p, lut in tokens.BYTE_TOKENS.items()}  # for bytes.translate


def strip_compression(name: str) -> str:
  """`name` without a trailing .gz/.bgz/.xz/.bz2 (any case)."""
  for suffix in COMPRESSION_SUFFIXES:
    if name.lower().endswith(suffix):
      return name[: -len(suffix)]
  return name


def compression(path: str) -> str:
  """'gzip', 'xz', 'bzip2' or 'plain', from the file's first bytes."""
  if not os.path.exists(path):
    raise UserError(f"{path}: no such file")
  if os.path.isdir(path):
    raise UserError(f"{path}: is a directory, expected a CSV or FASTA file")
  with open(path, "rb") as f:
    head = f.read(6)
  for magic, name, _ in _MAGIC:
    if head.startswith(magic):
      return name
  return "plain"


def open_binary(path: str):
  """The file's decompressed bytes as a binary file object."""
  kind = compression(path)
  for _, name, opener in _MAGIC:
    if name == kind:
      return opener(path, "rb")
  return open(path, "rb")


def damaged(path: str, error: Exception) -> UserError:
  """The one-line error for a decompression failure of `path`."""
  kind = compression(path)
  what = ("truncated" if isinstance(error, EOFError) else "damaged")
  detail = str(error).splitlines()[0] if str(error) else type(error).__name__
  return UserError(f"{path}: {what} {kind} file ({detail}); copy it again")


def read_blocks(path: str, size: int = BLOCK) -> Iterator[bytes]:
  """The decompressed bytes of `path` in blocks of `size`; refuses binary (non-text) content."""
  f = open_binary(path)
  try:
    first = True
    while True:
      try:
        block = f.read(size)
      except (EOFError, OSError, zlib.error, lzma.LZMAError) as e:
        raise damaged(path, e) from None
      if not block:
        return
      if first and b"\0" in block[:1 << 16]:
        raise UserError(f"{path}: binary content, not a FASTA or CSV text file")
      first = False
      yield block
  finally:
    f.close()


def _line_starts(data: bytes, skip_first: bool) -> list[int]:
  """Sorted offsets of the header ('>') and comment (';') lines of `data` (bytes.find: C speed)."""
  out = [] if skip_first or data[:1] not in (b">", b";") else [0]
  for mark in (b"\n>", b"\n;"):
    p = data.find(mark)
    while p >= 0:
      out.append(p + 1)
      p = data.find(mark, p + 2)
  return sorted(out)


def fasta_raw_records(path: str, allow_empty: bool = False, block: int = BLOCK,
                      blocks: Iterable[bytes] | None = None) -> Iterator[tuple[str, str, bytes]]:
  """(id, header after '>', sequence bytes without whitespace) of each FASTA record, streamed.

  Comment lines (';') are skipped. Raises `UserError` for sequence before the
  first header and, unless `allow_empty`, for a header with no sequence.
  `blocks`: the file's bytes already being read (e.g. in a thread); default
  `read_blocks(path, block)`.
  """
  rid = header = None
  parts: list[bytes] = []
  pending = b""           # an incomplete header/comment line carried to the next block
  continuing = False      # the block starts in the middle of a sequence line

  def finish():
    seq = b"".join(parts)
    if not seq and not allow_empty:
      raise UserError(f"{path}: record {rid}: header with no sequence (an empty or cut record)")
    return rid, header, seq

  def add(piece: bytes):
    if piece:
      piece = piece.translate(None, _WHITESPACE)
      if piece:
        if rid is None:
          raise UserError(f"{path}: sequence data before the first '>' header")
        parts.append(piece)

  for block in (read_blocks(path, block) if blocks is None else blocks):
    data = pending + block
    was_continuing = continuing and not pending
    pending = b""
    end = data.rfind(b"\n") + 1
    tail = data[end:]
    data = data[:end]
    pos = 0
    for p in _line_starts(data, skip_first=was_continuing):
      add(data[pos:p])
      nl = data.index(b"\n", p)
      line = data[p:nl].decode("utf-8", "replace").strip()
      pos = nl + 1
      if line.startswith(";"):
        continue
      if rid is not None:
        yield finish()
      header = line[1:].strip()
      rid, parts = (header.split() or ["record"])[0], []
    add(data[pos:])
    continuing = False
    if tail:
      at_line_start = end > 0 or not was_continuing
      if at_line_start and tail[:1] in (b">", b";"):
        pending = tail        # a header line not yet complete
      else:
        add(tail)             # part of a (possibly very long) sequence line
        continuing = True
  if pending:
    line = pending.decode("utf-8", "replace").strip()
    if line.startswith(">"):
      if rid is not None:
        yield finish()
      rid, header, parts = (line[1:].split() or ["record"])[0], line[1:].strip(), []
  if rid is not None:
    yield finish()


def encode_record(raw: bytes, policy: str, where: str) -> np.ndarray | None:
  """Sequence bytes -> uint8 tokens [L] with `tokens.LOWER` set on soft-masked bases.

  The policy is `tokens.normalize`'s: returns None for 'skip' when a base is
  not ACGTU; raises `UserError` naming `where` and the 1-based position.
  """
  mapped = raw.translate(_BYTE_TABLES[policy])  # bytes.translate: about 4x numpy's fancy indexing
  if bytes([tokens.BAD]) in mapped:
    if policy == "skip":
      return None
    pos = mapped.index(bytes([tokens.BAD]))
    raise UserError(
        f"{where}: invalid character {chr(raw[pos])!r} at position {pos + 1} (set "
        f"data.unknown_policy='n' to read IUPAC codes as N, or 'skip' to drop such records)")
  return np.frombuffer(mapped, np.uint8)


def fasta_token_records(path: str, policy: str = "error") -> Iterator[tuple[str, np.ndarray]]:
  """(id, uint8 tokens [L] with the LOWER bit on soft-masked bases) of each FASTA record, streamed."""
  tokens.check_policy(policy)
  for rid, _, raw in fasta_raw_records(path):
    toks = encode_record(raw, policy, f"{path}: record {rid}")
    if toks is not None:
      yield rid, toks
