"""The README's genome row, recomputed by its documented commands: `python -m pytest -m claims`.

E. coli K-12, hashed 100-kb blocks: the Kneser-Ney 7-gram of configs/genome_ngram.py
scored by --mode=eval on the test split written by split_fasta (1.9344 bits/nt), and
xz -9e on the same test nucleotides after the training split (2.0134). The GRU's
20-minute figure (1.9543) depends on the steps a machine fits in the budget: not rerun,
its command is configs/genome_gru.py's. Skips where ../shared is absent.
"""

import json
import os
import subprocess
import sys

import pytest

from tests.helpers import ROOT

pytestmark = pytest.mark.claims

ECOLI = os.path.join(ROOT, "..", "shared", "data", "genomes", "ecoli_k12_mg1655.fasta.gz")


def _run(env, *args: str) -> str:
  proc = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env=env, capture_output=True,
                        text=True, timeout=3600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return proc.stdout


def test_ecoli_ngram_and_xz(tmp_path):
  if not os.path.exists(ECOLI):
    pytest.skip("../shared/data/genomes/ecoli_k12_mg1655.fasta.gz not present")
  env = dict(os.environ, XLA_FLAGS="", PYTHONPATH=ROOT)
  w = str(tmp_path / "ng7")
  _run(env, "dnagen_jax.main", "--config=configs/genome_ngram.py", f"--workdir={w}",
       f"--config.data.files={ECOLI}", f"--config.data.data_dir={tmp_path / 'tfds'}",
       "--config.model.ngram_order=7")
  for split in ("train", "test"):
    _run(env, "dnagen_jax.scoring.split_fasta", f"--workdir={w}", f"--split={split}",
         f"--out={tmp_path / split}.fa")
  _run(env, "dnagen_jax.main", "--mode=eval", f"--workdir={w}", f"--eval_file={tmp_path / 'test'}.fa")
  with open(os.path.join(w, "eval_test.json")) as f:
    result = json.load(f)
  assert result["nucleotides"] == 639675
  assert result["bits_per_nucleotide"] == pytest.approx(1.9344, abs=1e-4)
  out = tmp_path / "xz.json"
  _run(env, "dnagen_jax.scoring.compressors", f"{tmp_path / 'test'}.fa", "--compressors=xz -9e",
       f"--given={tmp_path / 'train'}.fa", f"--out={out}")
  with open(out) as f:
    xz = json.load(f)[0]["compressors"]["xz -9e"]
  assert xz["bits_per_nucleotide"] == pytest.approx(2.0134, abs=1e-4)
