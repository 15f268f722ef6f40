"""Compressors beside the models (scoring/compressors.py): the command-line tools' sizes, what is compressed."""

import shutil
import subprocess

import numpy as np
import pytest

from dnagen_jax.errors import UserError
from dnagen_jax.scoring import compressors


def dna(n: int, seed: int) -> str:
  return "".join(np.random.default_rng(seed).choice(list("ACGT"), n))


@pytest.mark.parametrize("name,command", [("xz -9e", ["xz", "-9e", "-c"]), ("bzip2 -9", ["bzip2", "-9", "-c"])])
def test_sizes_equal_the_command_line_tools(name, command):
  if shutil.which(command[0]) is None:
    pytest.skip(f"{command[0]} not installed")
  data = compressors.acgt_bytes([dna(30000, 0), dna(30000, 0)[:20000]])  # a repeat to find
  got = compressors.bits_per_nucleotide(data, [name])[name]
  tool = subprocess.run(command, input=data, capture_output=True, check=True).stdout
  assert got["compressed_bytes"] == len(tool)
  assert got["bits_per_nucleotide"] == 8.0 * len(tool) / len(data)


def test_only_acgt_is_compressed_and_training_data_helps(tmp_path):
  assert compressors.acgt_bytes(["ACNNGT", "NNac"]) == b"ACGT"  # N dropped; readers upper-case
  train, test = dna(40000, 1), dna(40000, 1)[5000:25000]  # the test split repeats the train split
  (tmp_path / "train.fa").write_text(f">t\n{train}\n")
  (tmp_path / "test.fa").write_text(f">a\n{test[:9000]}\n>b\n{test[9000:].lower()}\nNNNN\n")
  alone = compressors.compress_files([str(tmp_path / "test.fa")], names=["xz -9e"])
  after = compressors.compress_files([str(tmp_path / "test.fa")], names=["xz -9e"],
                                     given=str(tmp_path / "train.fa"))
  assert alone[0]["nucleotides"] == after[0]["nucleotides"] == 20000
  a, b = alone[0]["compressors"]["xz -9e"], after[0]["compressors"]["xz -9e"]
  assert a["bits_per_nucleotide"] > 1.9  # random DNA: about 2 bits, no less
  assert b["bits_per_nucleotide"] < 0.1 * a["bits_per_nucleotide"]  # a copy of the training data
  with pytest.raises(UserError, match="no A, C, G or T"):
    compressors.bits_per_nucleotide(b"")
  with pytest.raises(UserError, match="unknown compressor"):
    compressors.bits_per_nucleotide(b"ACGT", ["zstd"])
