"""Mutation sets: the edit process, alignment windows, the CSV and its errors."""

import os

import numpy as np
import pytest

from configs import default
from dnagen_jax.data import synthetic
from dnagen_jax.errors import UserError
from dnagen_jax.mutations import edits
from dnagen_jax.mutations import generate
from dnagen_jax.mutations import mutation_csv


def _random_genes(n, seed=0, lo=1, hi=60):
  rng = np.random.default_rng(seed)
  return [(f"g{i}", "".join(rng.choice(list("ACGT"), size=int(rng.integers(lo, hi)))))
          for i in range(n)]


def test_each_edit_does_what_it_says():
  rng = np.random.default_rng(1)
  seen = set()
  for gid, seq in _random_genes(300, lo=1, hi=30):
    mutated, eds = edits.mutate(seq, 6, rng, swaps=True)
    assert len(eds) == 6
    cur = seq
    for kind, p, b in eds:
      seen.add(kind)
      nxt = edits.apply_edit(cur, (kind, p, b))
      if kind == "ins":
        assert len(nxt) == len(cur) + 1 and nxt[p] == b and 0 <= p <= len(cur)
      elif kind == "del":
        assert len(cur) >= 2 and len(nxt) == len(cur) - 1
      elif kind == "sub":
        assert b != cur[p] and nxt[p] == b and len(nxt) == len(cur)
      else:
        assert cur[p] != cur[p + 1] and nxt[p:p + 2] == cur[p + 1] + cur[p]
      cur = nxt
    assert cur == mutated and len(mutated) >= 1, gid
    assert edits.apply_edits(seq, eds)[0] == mutated
  assert seen == {"ins", "del", "sub", "swap"}


def test_pairs_follow_the_study_distribution():
  genes = _random_genes(50, hi=200)
  pairs = generate.make_pairs(genes, 3000, max_edits=5, seed=3)
  counts = [len(p.edits) for p in pairs]
  assert min(counts) == 1 and max(counts) == 5
  assert all(abs(np.mean(np.equal(counts, k)) - 0.2) < 0.04 for k in range(1, 6))
  kinds = [e[0] for p in pairs for e in p.edits]
  assert {k: round(kinds.count(k) / len(kinds), 1) for k in set(kinds)} == {
      "ins": 0.3, "del": 0.3, "sub": 0.3}
  assert all(p.real == dict(genes)[p.gene_id] for p in pairs)
  assert len({p.gene_id for p in pairs}) == 50  # drawn with replacement from all genes


@pytest.mark.parametrize("window", [0, 3, 8])
def test_unchanged_positions_have_equal_context_and_log_probs(window):
  source = synthetic.MarkovSource(order=3, seed=2, min_length=20, max_length=80)
  genes = [(str(i), s) for i, s in enumerate(source.sample(40, seed=0))]
  for p in generate.make_pairs(genes, 200, max_edits=4, seed=0, swaps=True):
    for origin in (edits.apply_edits(p.real, p.edits)[1], edits.origin_from_diff(p.real, p.mutated)):
      cr, cm = edits.changed_positions(origin, len(p.real), window)
      pad = "^" * window  # BOS, then nothing: contexts near the start include it
      for j in np.flatnonzero(~cm):
        i = origin[j]
        assert (pad + p.mutated)[j:j + window + 1] == (pad + p.real)[i:i + window + 1]
      assert (~cr).sum() == (~cm).sum()
      if window >= source.order:  # a Markov chain of order <= W: unchanged means equal
        lr, lm = source.token_log_probs(p.real), source.token_log_probs(p.mutated)
        np.testing.assert_array_equal(lr[~cr], lm[~cm])


def test_diff_alignment_of_one_edit():
  assert list(edits.origin_from_diff("ACGT", "AGT")) == [0, 2, 3]
  assert list(edits.origin_from_diff("ACGT", "ACCGT")) == [0, 1, -1, 2, 3]
  assert list(edits.origin_from_diff("ACGT", "ACTT")) == [0, 1, -1, 3]
  assert list(edits.origin_from_diff("AAAA", "AAA")) == [0, 1, 2]  # deletion at the end of a run


def test_csv_is_the_study_format_and_round_trips(tmp_path):
  pairs = generate.make_pairs(_random_genes(20), 30, max_edits=3, seed=0)
  path = str(tmp_path / "m.csv")
  mutation_csv.write(path, pairs, {"seed": 0})
  lines = open(path).read().splitlines()
  assert lines[0] == "NCBIGeneID,RealNucleotideSequence,MutatedNucleotideSequence"
  assert lines[1] == f"{pairs[0].gene_id},<{pairs[0].real}>,<{pairs[0].mutated}>"
  assert mutation_csv.read(path) == pairs  # edits come back from the side file
  os.remove(mutation_csv.edits_path(path))
  assert [p.edits for p in mutation_csv.read(path)] == [None] * 30


def _write(tmp_path, text, name="bad.csv"):
  path = tmp_path / name
  path.write_text(text)
  return str(path)


def test_read_errors_are_one_clear_line(tmp_path):
  cases = {
      "NCBIGeneID,RealNucleotideSequence\n1,<ACGT>\n":
          "missing column MutatedNucleotideSequence; the file has columns: NCBIGeneID, RealNucleotideSequence",
      "NCBIGeneID,RealNucleotideSequence,MutatedNucleotideSequence\n1,<ACGT>,<ACGT>\n7,<ACGT>,<ACXT>\n":
          "row 2 (NCBIGeneID 7), column MutatedNucleotideSequence: invalid character 'X' at position 3",
      "NCBIGeneID,RealNucleotideSequence,MutatedNucleotideSequence\n1,<ACNT>,<ACGT>\n":
          "column RealNucleotideSequence: invalid character 'N' at position 3",
      "NCBIGeneID,RealNucleotideSequence,MutatedNucleotideSequence\n1,<>,<ACGT>\n": "empty sequence",
      "NCBIGeneID,RealNucleotideSequence,MutatedNucleotideSequence\n": "no pairs found",
  }
  for text, message in cases.items():
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")) as e:
      mutation_csv.read(_write(tmp_path, text))
    assert "\n" not in str(e.value)
  lower = _write(tmp_path, "NCBIGeneID,RealNucleotideSequence,MutatedNucleotideSequence\n1,<acgu>,<ACGT>\n")
  assert mutation_csv.read(lower)[0].real == "ACGT"


def test_generate_run_is_byte_identical_per_seed(tmp_path, tfds_dir, capsys):
  config = default.get_config()
  config.data.data_dir = tfds_dir
  a = generate.run(config, str(tmp_path / "a"), max_edits=5, num_pairs=200, seed=7)
  b = generate.run(config, str(tmp_path / "b"), max_edits=5, num_pairs=200, seed=7)
  c = generate.run(config, str(tmp_path / "c"), max_edits=5, num_pairs=200, seed=8)
  assert os.path.basename(a) == "mutations_max5_seed7.csv"
  assert open(a, "rb").read() == open(b, "rb").read()
  assert open(mutation_csv.edits_path(a), "rb").read() == open(mutation_csv.edits_path(b), "rb").read()
  assert open(a, "rb").read() != open(c, "rb").read()
  assert f"to {a}" in capsys.readouterr().out
  pairs = mutation_csv.read(a)
  assert all(p.gene_id.startswith("syn-test-") for p in pairs)
  assert all(1 <= len(p.edits) <= 5 for p in pairs)
  with pytest.raises(UserError, match="--max_edits=0"):
    generate.run(config, str(tmp_path / "d"), max_edits=0, num_pairs=10, seed=0)


def test_sets_from_real_genes(tmp_path, tfds_dir, genes_csv):
  config = default.get_config()
  config.data.data_dir = tfds_dir
  config.data.source = "files"
  config.data.files = genes_csv
  path = generate.run(config, str(tmp_path), max_edits=10, num_pairs=100, seed=0)
  pairs = mutation_csv.read(path)
  assert all(p.gene_id.isdigit() and 1 <= len(p.real) <= 1000 for p in pairs)
  assert all(1 <= len(p.edits) <= 10 and p.real != "" for p in pairs)
  assert mutation_csv.read_settings(path)["dataset"].startswith("files-")
