"""Readers, the non-ACGT policy, and one-line errors for bad files."""

import gzip

import numpy as np
import pytest

from dnagen_jax.data import sequence_io
from dnagen_jax.data import tokens
from dnagen_jax.errors import UserError
from tests.helpers import HEADER


def write(path, text, gz=False):
  if gz:
    with gzip.open(path, "wt") as f:
      f.write(text)
  else:
    path.write_text(text)
  return str(path)


def test_csv_study_format(tmp_path):
  path = write(tmp_path / "g.csv", HEADER + '1,A,"desc, with comma",PSEUDO,,,<ACGTacgt>\n2,B,d,ncRNA,,,<GGGA>\n')
  recs = sequence_io.read_sequences(path)
  assert [(r.record_id, r.sequence) for r in recs] == [("1", "ACGTACGT"), ("2", "GGGA")]


@pytest.mark.parametrize("suffix,gz", [(".fa", False), (".fasta", False), (".fna.gz", True)])
def test_fasta_multirecord_multiline(tmp_path, suffix, gz):
  text = ">chr1 first gene\nACGT\nacgt\n\n>second\nGG\nCC\n"
  recs = sequence_io.read_sequences(write(tmp_path / f"x{suffix}", text, gz))
  assert [(r.record_id, r.sequence) for r in recs] == [("chr1", "ACGTACGT"), ("second", "GGCC")]


def test_policy_n_and_skip(tmp_path):
  path = write(tmp_path / "x.fa", ">a\nACNRT\n>b\nACGT\n")
  assert [r.sequence for r in sequence_io.read_sequences(path, "n")] == ["ACNNT", "ACGT"]
  assert [r.record_id for r in sequence_io.read_sequences(path, "skip")] == ["b"]
  with pytest.raises(UserError, match=r"record a: invalid character 'N' at position 3"):
    sequence_io.read_sequences(path, "error")


def test_non_iupac_character_errors_even_with_policy_n(tmp_path):
  path = write(tmp_path / "x.fa", ">a\nAC*T\n")
  with pytest.raises(UserError, match=r"invalid character '\*' at position 3"):
    sequence_io.read_sequences(path, "n")


def test_encode_roundtrip():
  toks = tokens.encode("ACGTN")
  np.testing.assert_array_equal(toks, [tokens.A, tokens.C, tokens.G, tokens.T, tokens.N])
  assert tokens.decode(toks) == "ACGTN"


@pytest.mark.parametrize("make,message", [
    (lambda p: str(p / "missing.csv"), "no such file"),
    (lambda p: write(p / "x.csv", "id,Seq\n1,<ACGT>\n"), "missing column NucleotideSequence; the file has columns: id, Seq"),
    (lambda p: write(p / "x.csv", HEADER), "no sequences found"),
    (lambda p: write(p / "x.fa", ""), "no sequences found"),
    (lambda p: write(p / "x.txt", ">a\nACGT\n"), "unknown file type"),
])
def test_bad_files_one_line(tmp_path, make, message):
  with pytest.raises(UserError, match=message) as e:
    sequence_io.read_sequences(make(tmp_path))
  assert "\n" not in str(e.value)
