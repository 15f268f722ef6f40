"""Data-scaling studies: nested subsets, k-mer tokens, the fit against the oracle, resume, bad input."""

import json
import os

import ml_collections
import numpy as np
import pytest

from dnagen_jax.data import subsets
from dnagen_jax.errors import UserError
from dnagen_jax.study import fit as fit_lib
from dnagen_jax.study import runner
from dnagen_jax.study import spec
from tests.helpers import ROOT, run_main


def _genes(n, seed=0):
  rng = np.random.default_rng(seed)
  seqs = ["".join(rng.choice(list("ACGT"), int(L))) for L in rng.integers(5, 60, n)]
  return [f"g{i}" for i in range(n)], seqs


def test_subsets_are_nested_minimal_and_independent_of_stored_order():
  ids, seqs = _genes(200)
  total = sum(map(len, seqs))
  previous = set()
  for target in (1, 50, 400, 1000, total // 2, total):
    idx = subsets.prefix_indices(ids, seqs, target)
    chosen = {ids[i] for i in idx}
    assert previous <= chosen  # nested: every smaller subset inside every larger one
    got = sum(len(seqs[i]) for i in idx)
    assert got >= target
    # minimal: dropping the last gene of the ranking falls below the target
    last = subsets.rank(ids, seqs)[len(idx) - 1]
    assert got - len(seqs[last]) < target
    # keyed on the genes, not on where they are stored
    perm = np.random.default_rng(1).permutation(len(ids))
    idx2 = subsets.prefix_indices([ids[i] for i in perm], [seqs[i] for i in perm], target)
    assert {ids[perm[i]] for i in idx2} == chosen
    previous = chosen
  with pytest.raises(UserError, match="larger than the train split"):
    subsets.prefix_indices(ids, seqs, total + 1)


def test_fit_recovers_a_known_law():
  d = np.geomspace(1e4, 1e7, 7)
  loss = fit_lib.law(d, 1.5, 0.2, 0.6, 1e5) * (1 + 0.001 * np.sin(np.arange(7)))
  f = fit_lib.fit_with_intervals(d, loss, bootstrap=50, targets=(1.6, 1.4))
  assert abs(f["E"] - 1.5) < 0.01 and abs(f["beta"] - 0.6) < 0.1
  assert f["ci"]["E"][0] <= f["E"] <= f["ci"]["E"][1]
  need = f["data_needed"]
  assert 1e4 < need[0]["D"] < 1e7 and need[1]["D"] == float("inf")  # 1.4 < E: never


def _study(tfds_dir, name="synthetic-test", families=None):
  study = ml_collections.ConfigDict()
  study.name = name
  study.data = ml_collections.ConfigDict({"data_dir": tfds_dir})
  study.fractions = tuple(2.0 ** -i for i in range(7, -1, -1))
  study.nucleotides = ()
  study.target_losses = (1.54, 1.5)
  study.bootstrap = 100
  study.fit_seed = 0
  study.families = ml_collections.ConfigDict(families or {
      "kn": dict(config="configs/ngram.py", overrides={}, kmers=(1,),
                 seeds=(0,), budget="", ngram_orders=(3, 4))})
  return study


def test_synthetic_ngram_study_finds_the_oracle_and_resumes(tfds_dir, tmp_path, capsys):
  workdir = str(tmp_path / "study")
  study = _study(tfds_dir)
  out = runner.run(study, workdir)
  f = out["fits"][0]
  oracle = f["oracle_test_bits_per_nt"]
  assert abs(oracle - 1.5275) < 0.002  # log2 of the default source's test perplexity 2.8829
  assert abs(f["E"] / oracle - 1) < 0.02
  assert f["ci"]["E"][0] <= oracle <= f["ci"]["E"][1]
  rows = out["rows"]
  assert rows[-1]["order"] == 4 and rows[0]["order"] in (3, 4)  # chosen on validation
  assert len(rows) == 8 and [r["train_nucleotides"] for r in rows] == sorted(r["train_nucleotides"] for r in rows)
  assert rows[-1]["train_genes"] == 3000 and rows[0]["test_bits_per_nt"] > rows[-1]["test_bits_per_nt"]
  for name in ("study.csv", "study.json", "fits.json", "study.png", "study.md"):
    assert os.path.getsize(os.path.join(workdir, name)) > 0
  point = os.path.join(workdir, "points", rows[0]["point"])
  assert any(n.startswith("events.out.tfevents") for n in os.listdir(os.path.join(point, "tb")))
  stamps = {r["point"]: os.path.getmtime(os.path.join(workdir, "points", r["point"], "results.json"))
            for r in rows}
  capsys.readouterr()
  again = runner.run(study, workdir)  # trains nothing, same tables
  assert "8 done, 0 to train" in capsys.readouterr().out
  assert again["markdown"] == out["markdown"]
  assert stamps == {r["point"]: os.path.getmtime(os.path.join(workdir, "points", r["point"], "results.json"))
                    for r in rows}
  # One point per job; the dry run names them all
  runner.run(study, workdir, dry_run=True)
  printed = capsys.readouterr().out
  assert printed.count("--point=") == 8 and "(done)" in printed
  with pytest.raises(UserError, match="not a point of study"):
    runner.run(study, workdir, point="nope")
  # Another study in the same workdir is refused before anything is trained
  with pytest.raises(UserError, match="holds study 'synthetic-test'"):
    runner.run(_study(tfds_dir, name="other"), workdir)
  other = _study(tfds_dir)
  other.families.kn.overrides = {"model": {"ngram_smoothing": "witten_bell"}}
  with pytest.raises(UserError, match="trained with another config"):
    runner.run(other, workdir)
  fewer = _study(tfds_dir)
  fewer.fractions = (0.5, 1.0)
  with pytest.raises(UserError, match="not a point of study"):
    runner.run(fewer, workdir)


def test_point_trains_one_point_only(tfds_dir, tmp_path):
  workdir = str(tmp_path / "study")
  study = _study(tfds_dir)
  names = [n for n, *_ in spec.point_names(study)]
  runner.run(study, workdir, point=names[2])
  assert os.listdir(os.path.join(workdir, "points")) == [names[2]]
  with open(os.path.join(workdir, "points", names[2], "config.json")) as f:
    assert json.load(f)["data"]["train_nucleotides"] > 0


@pytest.mark.parametrize("change, message", [
    (lambda s: s.families.kn.update(model="lstm"), "unknown field 'model'"),
    (lambda s: s.families.kn.update(overrides={"model": {"ngram_ordr": 4}}), "overrides: unknown config field 'model.ngram_ordr'"),
    (lambda s: s.update(fractions=(0.5, 1.5)), "not in \\(0, 1\\]"),
    (lambda s: s.update(fractions=(), nucleotides=(1000, 10**9)), "larger than the train split"),
    (lambda s: s.families.kn.update(kmers=(6,), ngram_orders=(), overrides={"model": {"ngram_order": 4}}),
     "ngram_order=4 with data.kmer=6 does not fit"),
    (lambda s: s.families.kn.update(kmers=(6,), ngram_orders=(4, 5)), "no N-gram order of \\(4, 5\\) fits 6-mer"),
    (lambda s: s.families.kn.update(kmers=(7,)), "k-mer length 7 must be 1..6"),
    (lambda s: s.families.kn.update(budget="steps:3"), "budget 'steps:3'"),
])
def test_bad_study_configs_are_one_line_errors(tfds_dir, change, message):
  study = _study(tfds_dir)
  change(study)
  with pytest.raises(UserError, match=message):
    spec.points(study)


def test_cli_bad_study_is_one_line_exit_2(tmp_path):
  path = tmp_path / "bad_study.py"
  path.write_text("import ml_collections\n"
                  "def get_config():\n"
                  "  s = ml_collections.ConfigDict()\n"
                  "  s.name = 'x'\n"
                  "  s.fractions = (1.0,)\n"
                  "  s.families = ml_collections.ConfigDict({'f': {'config': 'configs/ngram.py', 'colour': 1}})\n"
                  "  return s\n")
  r = run_main("--mode=study", f"--config={path}", f"--workdir={tmp_path / 'w'}", "--dry_run")
  assert r.returncode == 2, r.stderr
  assert r.stderr.strip().splitlines() == ["error: study family 'f': unknown field 'colour' "
                                           "(fields: config, overrides, kmers, seeds, budget, ngram_orders, sizes)"]
  assert not os.path.exists(tmp_path / "w")
  assert os.path.exists(os.path.join(ROOT, "configs", "studies", "synthetic.py"))


# ------------------------------------------------------------------ k-mer tokens

def test_kmer_ids_round_trip_and_tail_ranges():
  from dnagen_jax.data import kmers
  rng = np.random.default_rng(0)
  for k in range(2, 7):
    for length in (1, k - 1, k, 2 * k + 1, 37):
      s = "".join(rng.choice(list("ACGT"), length))
      ids = kmers.encode(s, k)
      assert len(ids) == -(-length // k) and kmers.decode(ids, k) == s
      assert (ids[: length // k] < kmers.vocab_size(k)).all()  # full k-mers are model tokens
    lo, hi = kmers.target_ranges(k)
    tail = kmers.encode("CG", k)[-1] if k > 2 else None
    if tail is not None:  # "CG" then anything: a contiguous block of 4^(k-2) k-mers
      assert [kmers.decode([i], k)[:2] for i in range(lo[tail], hi[tail])] == ["CG"] * 4 ** (k - 2)
  with pytest.raises(UserError, match="read A, C, G, T only"):
    kmers.encode("ACGNT", 3)


def _all_strings(length):
  import itertools
  return ["".join(p) for p in itertools.product("ACGT", repeat=length)]


def test_kmer_models_are_distributions_over_genes_of_a_length(tfds_dir, tmp_path):
  """Tails scored as the k-mers extending them: the N-grams' probabilities of all genes of length L sum to 1."""
  from dnagen_jax.ngram.model import NGramModel
  from dnagen_jax.ngram.scorer import NGramScorer
  from dnagen_jax.scoring import neural
  from dnagen_jax.training import trainer
  from tests.helpers import tiny_config
  _, train = _genes(100)
  for smoothing in ("kneser_ney", "laplace", "witten_bell"):
    model = NGramModel.fit(train, 2, smoothing, kmer=3)
    ll, _ = NGramScorer(model).score(_all_strings(5))  # one 3-mer and a 2-letter tail
    assert abs(np.exp(ll).sum() - 1) < 1e-9, smoothing
  config = tiny_config(tfds_dir, "lstm")
  config.data.kmer = 2
  trainer.train_and_evaluate(config, str(tmp_path / "lstm2"))
  scorer = neural.NeuralScorer.load(str(tmp_path / "lstm2"))
  # A neural model also gives the specials some mass, so check the tail rule itself:
  # p(gene ending in a tail) = sum of p(gene + completion) over the completions.
  short = _all_strings(3)
  ll, n = scorer.score(short)
  ll_full, _ = scorer.score([s + c for s in short for c in "ACGT"])
  assert (n == 3).all()
  np.testing.assert_allclose(np.exp(ll), np.exp(ll_full).reshape(-1, 4).sum(axis=1), rtol=1e-4)


def test_kmer_loss_per_nucleotide_equals_nucleotide_loss_on_an_order0_source(tfds_dir, tmp_path):
  """i.i.d. nucleotides: a unigram of k-mers is a product of nucleotide unigrams, so bits/nt agree."""
  from configs import ngram
  from dnagen_jax.training import trainer
  bits = {}
  for k in (1, 2, 3):
    config = ngram.get_config()
    config.data.data_dir = tfds_dir
    config.data.synthetic_order = 0
    config.data.synthetic_sizes = (1500, 100, 300)
    config.data.kmer = k
    config.model.ngram_order, config.model.ngram_smoothing = 1, "laplace"
    bits[k] = trainer.train_and_evaluate(config, str(tmp_path / f"k{k}"))["test_bits_per_nucleotide"]
  oracle = float(np.log2(trainer.storage.oracle_perplexity(config.data, "test")))
  for k in (2, 3):
    assert abs(bits[k] / bits[1] - 1) < 0.001, bits
  assert abs(bits[1] / oracle - 1) < 0.001


def test_synthetic_study_config_declares_its_points():
  synthetic = spec.load_config_file("configs/studies/synthetic.py")
  names = [n for n, *_ in spec.point_names(synthetic)]
  assert len(names) == 32 and len(set(names)) == 32 and "kn_k3_f0.5_s0" in names


def test_genes_study_config_declares_its_points(tfds_dir, genes_csv):
  """configs/studies/genes.py resolves on genes.csv (skipped where ../shared is absent)."""
  genes = spec.load_config_file("configs/studies/genes.py")
  genes.data.files, genes.data.data_dir = genes_csv, tfds_dir
  points = spec.points(genes)
  assert len(points) == 30
  kn6 = [p for p in points if p.family == "kn" and p.kmer == 6]
  assert all(p.orders == (1, 2, 3) for p in kn6)  # only orders with 6 N <= 21 nucleotides
  sizes = sorted({p.nucleotides for p in points})
  assert len(sizes) == 6 and sizes[-1] == sum(len(r.sequence) for r in trainer_records(points[0]))


def trainer_records(point):
  from dnagen_jax.data import storage
  config = point.config.copy_and_resolve_references()
  config.data.train_nucleotides = 0
  return storage.load_records(config.data, "train")
