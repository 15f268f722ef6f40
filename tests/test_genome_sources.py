"""Streamed sources: compression by content, the streaming FASTA reader, one-line errors for damaged files."""

import bz2
import gzip
import lzma
import os

import numpy as np
import pytest

from dnagen_jax.data import sequence_io
from dnagen_jax.data import sources
from dnagen_jax.data import tokens
from dnagen_jax.errors import UserError

GENOMES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared", "data", "genomes")
TEXT = ">chr1 first\nACGTacgt\nNNnnAC\n;comment\n>chr2\n" + "GATTACA" * 50 + "\n>chr3\nT"


def write(path, data: bytes, how="plain"):
  opener = {"plain": open, "gzip": gzip.open, "xz": lzma.open, "bzip2": bz2.open}[how]
  with opener(path, "wb") as f:
    f.write(data)
  return str(path)


def reference(text):
  """A plain line-by-line FASTA parser: the readers must agree with it."""
  out, rid = [], None
  for line in text.splitlines():
    line = line.strip()
    if line.startswith(">"):
      rid = line[1:].split()[0]
      out.append([rid, ""])
    elif line and not line.startswith(";"):
      out[-1][1] += line
  return [(r, s) for r, s in out]


@pytest.mark.parametrize("how,name", [("plain", "x.fa"), ("gzip", "x.fa.gz"), ("xz", "x.fna.xz"),
                                      ("bzip2", "x.fasta.bz2"), ("gzip", "x.fa")])
def test_every_compression_reads_the_same(tmp_path, how, name):
  path = write(tmp_path / name, TEXT.encode(), how)
  assert sources.compression(path) == how
  want = reference(TEXT)
  assert [(r, s.decode()) for r, _, s in sources.fasta_raw_records(path)] == want
  assert [(r.record_id, r.sequence) for r in sequence_io.iter_records(path, "n")] == \
      [(r, s.upper()) for r, s in want]
  assert [(r.record_id, r.sequence) for r in sequence_io.read_sequences(path, "n")] == \
      [(r.record_id, r.sequence) for r in sequence_io.iter_records(path, "n")]


def test_bgzip_is_read_as_gzip(tmp_path):
  path = tmp_path / "x.fa.gz"    # bgzip: several gzip members, one after the other
  with open(path, "wb") as f:
    for i in range(0, len(TEXT), 17):
      f.write(gzip.compress(TEXT[i:i + 17].encode()))
  assert [r for r, _, _ in sources.fasta_raw_records(str(path))] == ["chr1", "chr2", "chr3"]


@pytest.mark.parametrize("block", [1, 3, 7, 64])
def test_stream_agrees_at_any_block_size(tmp_path, block):
  path = write(tmp_path / "x.fa", TEXT.encode())
  assert [(r, s.decode()) for r, _, s in sources.fasta_raw_records(path, block=block)] == reference(TEXT)


def test_tokens_keep_soft_masking_as_a_bit(tmp_path):
  path = write(tmp_path / "x.fa", b">a\nACgtNn\n")
  (_, toks), = list(sources.fasta_token_records(path, "n"))
  assert list(toks & ~np.uint8(tokens.LOWER)) == [tokens.A, tokens.C, tokens.G, tokens.T, tokens.N, tokens.N]
  assert list(toks & tokens.LOWER > 0) == [False, False, True, True, False, True]
  assert tokens.token_string(toks) == "ACGTNN"


def test_folders_and_globs_find_compressed_fasta(tmp_path):
  for name in ("a.fna.xz", "b.fa.gz", "c.fasta", "d.txt"):
    write(tmp_path / name, TEXT.encode())
  assert [os.path.basename(p) for p in sequence_io.expand_paths(str(tmp_path))] == ["a.fna.xz", "b.fa.gz", "c.fasta"]


def _truncated(tmp_path, how):
  data = open(write(tmp_path / "whole", (TEXT * 200).encode(), how), "rb").read()
  return write(tmp_path / {"gzip": "x.fa.gz", "xz": "x.fa.xz"}[how], data[: len(data) // 2])


def _corrupt(tmp_path, how):
  data = bytearray(open(write(tmp_path / "whole", (TEXT * 200).encode(), how), "rb").read())
  data[40:60] = b"\xff" * 20
  return write(tmp_path / {"gzip": "x.fa.gz", "xz": "x.fa.xz"}[how], bytes(data))


def _bgzip_cut(tmp_path):
  data = b"".join(gzip.compress(TEXT[i:i + 50].encode() * 20) for i in range(0, len(TEXT), 50))
  return write(tmp_path / "x.fa.gz", data[:-7])


@pytest.mark.parametrize("make,message", [
    (lambda p: _truncated(p, "gzip"), r"x.fa.gz: truncated gzip file"),
    (lambda p: _truncated(p, "xz"), r"x.fa.xz: truncated xz file"),
    (lambda p: _corrupt(p, "gzip"), r"x.fa.gz: (damaged|truncated) gzip file"),
    (lambda p: _corrupt(p, "xz"), r"x.fa.xz: damaged xz file"),
    (_bgzip_cut, r"x.fa.gz: truncated gzip file"),
    (lambda p: write(p / "x.fa", b">a\nACGT\n>b\n>c\nAC\n"), r"x.fa: record b: header with no sequence"),
    (lambda p: write(p / "x.fa", b">a\nACGT\n>b\n"), r"x.fa: record b: header with no sequence"),
    (lambda p: write(p / "x.fa", bytes(range(256)) * 10), r"x.fa: binary content"),
    (lambda p: write(p / "x.fa", b"ACGT\n>a\nAC\n"), r"x.fa: sequence data before the first '>' header"),
])
def test_damaged_files_one_line(tmp_path, make, message):
  path = make(tmp_path)
  for read in (lambda: list(sequence_io.iter_records(path, "n")),
               lambda: sequence_io.read_sequences(path, "n")):
    with pytest.raises(UserError, match=message) as e:
      read()
    assert "\n" not in str(e.value)


def test_truncated_gzip_csv_one_line(tmp_path):
  data = gzip.compress(("NCBIGeneID,NucleotideSequence\n" + "1,<ACGTACGTAC>\n" * 5000).encode())
  path = write(tmp_path / "x.csv.gz", data[: len(data) // 2])
  with pytest.raises(UserError, match="x.csv.gz: truncated gzip file"):
    sequence_io.read_sequences(path)


def test_fasta_entries_still_passes_over_empty_records(tmp_path):
  path = write(tmp_path / "x.fa", b">a\n>b\nAC\n")
  assert [r for r, _, _ in sequence_io.fasta_entries(path)] == ["b"]


def test_real_xz_genome_streams_like_the_reader():
  path = os.path.join(GENOMES, "Klebs_HS11286.fna.xz")
  if not os.path.exists(path):
    pytest.skip("../shared/data/genomes not present")
  streamed = [(r.record_id, len(r.sequence)) for r in sequence_io.iter_records(path, "n")]
  assert len(streamed) > 1 and streamed == [(r.record_id, len(r.sequence)) for r in sequence_io.read_sequences(path, "n")]
