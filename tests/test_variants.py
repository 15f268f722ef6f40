"""--mode=variants: inputs, reference, windows, metrics, the oracle's exact scores, known truth,
invariance and bad input. Genomes are drawn from the synthetic source at run time."""

import gzip
import json
import os

import jax
import numpy as np
import pytest
import scipy.stats
from flax import nnx

from dnagen_jax import models
from dnagen_jax.data.synthetic import MarkovSource
from dnagen_jax.errors import UserError
from dnagen_jax.ngram.model import NGramModel
from dnagen_jax.ngram.scorer import NGramScorer
from dnagen_jax.runtime import mesh_utils
from dnagen_jax.scoring.interface import OracleScorer
from dnagen_jax.scoring.neural import NeuralScorer
from dnagen_jax.variants import demo, inputs, metrics, run as run_lib, score as score_lib, windows
from dnagen_jax.variants.inputs import Variant
from dnagen_jax.variants.reference import Reference
from tests import helpers

SOURCE = MarkovSource(order=3, alpha=1.0, seed=0, min_length=6000, max_length=6000, mean_length=6000)


def write_fasta(path, records, width=60, compress=None):
  text = "".join(f">{name}\n" + "\n".join(s[i:i + width] for i in range(0, len(s), width)) + "\n"
                 for name, s in records)
  if compress == "gzip":
    with gzip.open(path, "wt") as f:
      f.write(text)
  elif compress == "bgzip":
    import pysam
    with open(path + ".plain", "w") as f:
      f.write(text)
    pysam.tabix_compress(path + ".plain", path, force=True)
  else:
    with open(path, "w") as f:
      f.write(text)
  return path


@pytest.fixture(scope="module")
def genome(tmp_path_factory):
  """Two synthetic chromosomes named 1 and 2; chromosome 2 has a run of N at [3000, 3100)."""
  d = tmp_path_factory.mktemp("genome")
  c1, c2 = SOURCE.sample(2, seed=11)
  c2 = c2[:3000] + "N" * 100 + c2[3100:]
  path = write_fasta(str(d / "g.fa"), [("1", c1), ("2", c2)])
  return {"dir": d, "path": path, "seqs": {"1": c1, "2": c2}}


def snvs(seq, num, seed, chrom="chr1", lo=0, hi=None):
  rng = np.random.default_rng(seed)
  pos = rng.choice(np.arange(lo, hi or len(seq)), size=num, replace=False)
  return [Variant(chrom, int(p) + 1, seq[p], str(rng.choice([b for b in "ACGT" if b != seq[p]])))
          for p in sorted(pos)]


# ------------------------------------------------------------------ inputs and reference
def test_vcf_and_table_inputs(tmp_path):
  vcf = tmp_path / "x.vcf"
  vcf.write_text("##fileformat=VCFv4.2\n##contig=<ID=chr1,length=6000>\n"
                 '##INFO=<ID=AF,Number=A,Type=Float,Description="f">\n'
                 '##INFO=<ID=GRP,Number=1,Type=String,Description="g">\n'
                 "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
                 "chr1\t10\trs1\tA\tC,G\t.\tPASS\tAF=0.1,0.2;GRP=x\n"
                 "chr1\t20\t.\tAT\tA\t.\tPASS\tGRP=y\n")
  t = inputs.read_variants(str(vcf))
  assert [v.alt for v in t.variants] == ["C", "G", "A"]
  assert t.column("AF") == ["0.1", "0.2", "."]  # Number=A: each allele its own value
  assert t.column("GRP") == ["x", "x", "y"] and t.columns[:5] == ["CHROM", "POS", "ID", "REF", "ALT"]
  tsv = tmp_path / "x.csv"
  tsv.write_text("Chromosome,Position,Ref,Alt,label\n17,5,A,\"C,T\",pathogenic\n")
  t = inputs.read_variants(str(tsv))
  assert [(v.chrom, v.pos, v.alt) for v in t.variants] == [("17", 5, "C"), ("17", 5, "T")]
  empty = tmp_path / "e.vcf"
  empty.write_text("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
  with pytest.raises(UserError, match="no variants"):
    inputs.read_variants(str(empty))
  (tmp_path / "bad.tsv").write_text("chrom\tpos\tref\talt\n1\tx\tA\tC\n")
  with pytest.raises(UserError, match="bad.tsv:2: position 'x'"):
    inputs.read_variants(str(tmp_path / "bad.tsv"))


@pytest.mark.parametrize("compress", [None, "gzip", "bgzip"])
def test_reference_formats_and_names(tmp_path, compress):
  seq = SOURCE.sample(1, seed=3)[0]
  src = tmp_path / "in"
  src.mkdir()
  path = write_fasta(str(src / "r.fa.gz"), [("chr17", seq), ("MT", seq[:500])], compress=compress)
  os.chmod(src, 0o555)  # read-only: indexes and copies must go to the cache
  try:
    ref = Reference(path, str(tmp_path / "cache"))
    assert ref.resolve("17") == "chr17" and ref.resolve("chrM") == "MT" and ref.resolve("3") is None
    assert ref.lengths["chr17"] == len(seq) and ref.fetch("chr17", 100, 170) == seq[100:170]
    cached = os.listdir(tmp_path / "cache")
    assert any(n.endswith(".fa") for n in cached) == (compress == "gzip")  # plain gzip: one copy
    Reference(path, str(tmp_path / "cache"))  # a second open reuses the copy and the index
    assert sorted(os.listdir(tmp_path / "cache")) == sorted(cached)
  finally:
    os.chmod(src, 0o755)


# ------------------------------------------------------------------ windows
def test_windows_flanks_edges_and_n(genome):
  ref = Reference(genome["path"], str(genome["dir"] / "cache"))
  c1, c2 = genome["seqs"]["1"], genome["seqs"]["2"]
  w = windows.make_window(Variant("chr1", 2001, c1[2000], "A" if c1[2000] != "A" else "C"), ref, 101)
  assert (w.start, w.end, w.left, w.right) == (1950, 2051, 50, 50) and w.ref == c1[1950:2051]
  assert w.alt[:50] == w.ref[:50] and w.alt[51:] == w.ref[51:] and w.alt[50] != w.ref[50]
  dele = windows.make_window(Variant("1", 2001, c1[2000:2004], c1[2000]), ref, 101)  # 3-nt deletion
  assert len(dele.ref) == 101 and len(dele.alt) == 98
  assert dele.alt == c1[dele.start:2001] + c1[2004:dele.end]  # same flanks on both sides
  ins = windows.make_window(Variant("1", 2001, c1[2000], c1[2000] + "GGGG"), ref, 101)
  assert len(ins.alt) == 101 and len(ins.ref) == 97 and ins.left + ins.right == 96
  edge = windows.make_window(Variant("1", 3, c1[2], "A" if c1[2] != "A" else "G"), ref, 101)
  assert (edge.start, edge.end, edge.left) == (0, 101, 2)  # shifted right at the start
  end = windows.make_window(Variant("1", len(c1), c1[-1], "A" if c1[-1] != "A" else "G"), ref, 101)
  assert (end.end, end.start, end.right) == (len(c1), len(c1) - 101, 0)
  near_n = windows.make_window(Variant("2", 3110, c2[3109], "A" if c2[3109] != "A" else "G"), ref, 101)
  assert near_n.start == 3100 and "N" not in near_n.ref and len(near_n.ref) == 101
  r, a, skip = near_n.strand("-")
  assert r == windows.reverse_complement(near_n.ref) and skip == near_n.right
  assert r[:skip] == a[:skip] and r[skip] != a[skip]
  with pytest.raises(windows.BadVariant, match="does not match"):
    windows.make_window(Variant("1", 5, "A" if c1[4] != "A" else "C", "G"), ref, 101)
  with pytest.raises(UserError, match="past the end"):
    windows.make_window(Variant("1", len(c1) + 1, "A", "C"), ref, 101)
  with pytest.raises(UserError, match="chromosome '7' is not in"):
    windows.make_window(Variant("7", 5, "A", "C"), ref, 101)


# ------------------------------------------------------------------ metrics
def brute_auroc(x, y):
  p, n = x[y == 1], x[y == 0]
  return ((p[:, None] > n[None]).sum() + 0.5 * (p[:, None] == n[None]).sum()) / (p.size * n.size)


def brute_ap(x, y):
  ap, last_recall = 0.0, 0.0
  for t in sorted(set(x), reverse=True):
    sel = x >= t
    recall, precision = (y[sel] == 1).sum() / (y == 1).sum(), (y[sel] == 1).mean()
    ap += (recall - last_recall) * precision
    last_recall = recall
  return ap


def test_metrics_against_independent_computations():
  rng = np.random.default_rng(0)
  for n in (7, 60, 301):
    x = np.round(rng.normal(size=n), 1)  # ties
    y = (rng.random(n) < 0.4).astype(float)
    z = np.round(x + rng.normal(size=n), 1)
    assert metrics.auroc(x, y) == pytest.approx(brute_auroc(x, y), abs=1e-12)
    assert metrics.auprc(x, y) == pytest.approx(brute_ap(x, y), abs=1e-12)
    assert metrics.spearman(x, z) == pytest.approx(scipy.stats.spearmanr(x, z)[0], abs=1e-12)
    w = rng.integers(0, 4, size=n)  # weights = the cases repeated
    xr, yr, zr = np.repeat(x, w), np.repeat(y, w), np.repeat(z, w)
    assert metrics.auroc(x, y, w) == pytest.approx(brute_auroc(xr, yr), abs=1e-12)
    assert metrics.auprc(x, y, w) == pytest.approx(brute_ap(xr, yr), abs=1e-12)
    assert metrics.spearman(x, z, w) == pytest.approx(scipy.stats.spearmanr(xr, zr)[0], abs=1e-12)
  s = metrics.summarize(-x, labels=y, numeric=z, resamples=200)
  for k in ("auroc", "auprc", "spearman"):
    assert s[k][1] <= s[k][0] <= s[k][2]


# ------------------------------------------------------------------ known truth
def oracle_direct(w, strands):
  """The exact score from whole windows (no prefix skipped), computed from the source alone."""
  fwd = SOURCE.log_likelihood(w.alt) - SOURCE.log_likelihood(w.ref)
  rc = windows.reverse_complement
  rev = SOURCE.log_likelihood(rc(w.alt)) - SOURCE.log_likelihood(rc(w.ref))
  return {"forward": fwd, "reverse": rev, "both": (fwd + rev) / 2}[strands]


def genome_windows(genome, width, num=120, seed=0):
  ref = Reference(genome["path"], str(genome["dir"] / "cache"))
  c1 = genome["seqs"]["1"]
  recs = demo.draw(c1, 0, num, seed)  # SNVs and indels
  return [windows.make_window(Variant("1", p, r, a), ref, width) for p, r, a, _, _ in recs]


def test_oracle_scores_are_exact_and_models_near_it_rank_alike(genome):
  wins = genome_windows(genome, 200)
  oracle = OracleScorer(SOURCE)
  for strands in ("forward", "both"):
    got = score_lib.score_windows(oracle, wins, strands, chunk=37)["score"]
    np.testing.assert_allclose(got, [oracle_direct(w, strands) for w in wins], atol=1e-9)
  truth = score_lib.score_windows(oracle, wins, "both")["score"]
  train = SOURCE.sample(400, seed=1)  # 2.4M nucleotides of the same source
  near = NGramScorer(NGramModel.fit(train, 4, "kneser_ney", lower_discounts=""))
  got = score_lib.score_windows(near, wins, "both")["score"]  # windows cut to the N-gram's context
  np.testing.assert_allclose(got, score_lib.score_windows(near, wins, "both", cut=False)["score"],
                             atol=1e-9)
  rho_near = scipy.stats.spearmanr(got, truth)[0]
  far = NGramScorer(NGramModel.fit(SOURCE.sample(2, seed=2), 9, "laplace"))  # 12k nt, order 9
  rho_far = scipy.stats.spearmanr(score_lib.score_windows(far, wins, "both")["score"], truth)[0]
  assert rho_near > 0.9 and rho_far < rho_near - 0.2, (rho_near, rho_far)


def untrained(name, max_len=256, seed=0, devices=None):
  config = helpers.tiny_config("", name)
  config.model.max_len = max_len
  config.data.length_buckets = (64, 128, 256)
  mesh = mesh_utils.make_mesh(devices)
  graphdef, params = nnx.split(models.create_model(config.model, seed))
  return NeuralScorer(config, graphdef, jax.device_put(params, mesh_utils.replicated(mesh)), mesh)


@pytest.fixture(scope="module")
def gru():
  return untrained("gru")


def test_untrained_model_does_not_rank_like_the_oracle(genome, gru):
  wins = genome_windows(genome, 150)
  truth = score_lib.score_windows(OracleScorer(SOURCE), wins, "both")["score"]
  got = score_lib.score_windows(gru, wins, "both")["score"]
  assert abs(scipy.stats.spearmanr(got, truth)[0]) < 0.5


def test_scores_do_not_depend_on_batch_devices_or_order(genome, gru):
  wins = genome_windows(genome, 150)[:40]
  base = gru
  ref = score_lib.score_windows(base, wins, "both", chunk=1000)["score"]
  base.config.train.eval_batch_size = 24  # other batches and chunks
  other = score_lib.score_windows(base, wins, "both", chunk=7)["score"]
  perm = np.random.default_rng(0).permutation(len(wins))
  shuffled = score_lib.score_windows(base, [wins[i] for i in perm], "both", chunk=16)["score"]
  base.config.train.eval_batch_size = 8
  one = untrained("gru", devices=jax.devices()[:1])  # same seed: same parameters, one device
  single = score_lib.score_windows(one, wins, "both")["score"]
  assert len(jax.devices()) == 8
  np.testing.assert_allclose(other, ref, atol=1e-4)
  np.testing.assert_allclose(shuffled[np.argsort(perm)], ref, atol=1e-4)
  np.testing.assert_allclose(single, ref, atol=1e-4)
  assert np.std(ref) > 1e-3  # the scores are not all equal


# ------------------------------------------------------------------ the run: files and bad input
def write_vcf(path, genome, num=60, seed=0):
  recs = demo.draw(genome["seqs"]["1"], 0, num, seed)
  demo.write_vcf(path, "chr1", 6000, recs)
  return recs


def test_run_writes_scores_metrics_and_roc(genome, tmp_path):
  vcf = str(tmp_path / "v.vcf.gz")
  recs = write_vcf(vcf, genome)
  oracle = OracleScorer(SOURCE)
  ngram = NGramScorer(NGramModel.fit(SOURCE.sample(50, seed=1), 4, "kneser_ney", lower_discounts=""))
  scorers = {"oracle": oracle, "ngram": ngram}
  out = str(tmp_path / "out")
  result = run_lib.run(["/x/oracle", "/y/ngram"], vcf, genome["path"], out,
                       lambda w: scorers[os.path.basename(w)], window=128,
                       strands="both", resamples=50)
  assert sorted(os.listdir(out)) == ["roc.png", "variants.json", "variants.md", "variants.tsv"]
  rows = [l.split("\t") for l in open(os.path.join(out, "variants.tsv")).read().splitlines()]
  head = rows[0]
  assert head[:9] == ["CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "LABEL", "CONSEQUENCE"]
  assert {"llr_oracle", "llr_forward_oracle", "llr_reverse_ngram"} <= set(head)
  assert len(rows) == len(recs) + 1
  i = head.index("llr_oracle")
  for row in rows[1:4]:
    v = Variant("1", int(row[1]), row[3], row[4])
    w = windows.make_window(v, Reference(genome["path"], str(tmp_path / "reference_cache")), 128)
    assert float(row[i]) == pytest.approx(oracle_direct(w, "both"), abs=1e-5)
  saved = json.load(open(os.path.join(out, "variants.json")))
  assert saved["models"]["oracle"]["overall"]["labeled"] == len(recs)
  assert set(saved["models"]["ngram"]["groups"]) == {r[3] for r in recs}
  assert "| oracle | all |" in open(os.path.join(out, "variants.md")).read()


def test_labels_from_the_oracle_give_it_auroc_one(genome, tmp_path):
  wins = genome_windows(genome, 128, num=80, seed=3)
  truth = score_lib.score_windows(OracleScorer(SOURCE), wins, "forward")["score"]
  cut = np.median(truth)
  tsv = tmp_path / "v.tsv"
  lines = ["chrom\tpos\tref\talt\tlabel\tfunction_score"]
  for w, t, (p, r, a, _, _) in zip(wins, truth, demo.draw(genome["seqs"]["1"], 0, 80, 3)):
    lines.append(f"1\t{p}\t{r}\t{a}\t{'damaging' if t < cut else 'benign'}\t{t + 1e-9 * p}")
  tsv.write_text("\n".join(lines) + "\n")
  res = run_lib.run(["oracle"], str(tsv), genome["path"], str(tmp_path / "o"),
                    lambda w: OracleScorer(SOURCE), window=128, strands="forward", resamples=20)
  overall = res["models"]["oracle"]["overall"]
  assert overall["auroc"][0] == 1.0 and overall["auprc"][0] == 1.0
  assert overall["spearman"][0] > 0.99


def test_bad_input_one_line_nothing_written(genome, tmp_path):
  vcf = str(tmp_path / "v.vcf.gz")
  write_vcf(vcf, genome, num=10)
  out = str(tmp_path / "out")
  oracle = lambda w: OracleScorer(SOURCE)
  c1 = genome["seqs"]["1"]

  def fails(match, variants=vcf, reference=genome["path"], load=oracle, **kw):
    with pytest.raises(UserError, match=match) as e:
      run_lib.run(["w"], variants, reference, out, load, **kw)
    assert "\n" not in str(e.value) and not os.path.exists(out)

  empty = tmp_path / "empty.vcf"
  empty.write_text("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
  fails("no variants", variants=str(empty))
  wrong = tmp_path / "wrong.tsv"
  bad_ref = "A" if c1[99] != "A" else "C"
  wrong.write_text(f"chrom\tpos\tref\talt\n1\t100\t{bad_ref}\tG\n1\t50\t{c1[49]}\tN\n")
  fails(r"variant 1:100 .* does not match .*--skip_mismatches", variants=str(wrong))
  wrong.write_text(f"chrom\tpos\tref\talt\n1\t50\t{c1[49]}\t<DEL>\n")
  fails(r"variant 1:50 .* ALT allele '<DEL>' is not A/C/G/T", variants=str(wrong))
  (tmp_path / "chr.tsv").write_text("chrom\tpos\tref\talt\nchr9\t5\tA\tC\n")
  fails("chromosome 'chr9' is not in", variants=str(tmp_path / "chr.tsv"))
  (tmp_path / "end.tsv").write_text("chrom\tpos\tref\talt\n1\t6001\tA\tC\n")
  fails("past the end", variants=str(tmp_path / "end.tsv"))
  fails("longer than the model", load=lambda w: untrained("transformer", max_len=128), window=256)
  fails("no trained model here", load=__import__("dnagen_jax.workdir").workdir.load_scorer)
  fails("no such file", reference=str(tmp_path / "none.fa"))
  # with the flag, mismatches are skipped and counted
  (tmp_path / "mix.tsv").write_text(f"chrom\tpos\tref\talt\n1\t100\t{bad_ref}\tG\n"
                                    f"1\t200\t{c1[199]}\t{'A' if c1[199] != 'A' else 'C'}\n")
  res = run_lib.run(["w"], str(tmp_path / "mix.tsv"), genome["path"], out, oracle,
                    skip_mismatches=True, window=64)
  assert res["skipped"] == 1 and res["scored"] == 1


def test_ngram_without_n_scores_windows_that_stop_at_n(genome, tmp_path):
  c2 = genome["seqs"]["2"]
  ngram = NGramScorer(NGramModel.fit(SOURCE.sample(20, seed=1), 4, "kneser_ney", lower_discounts=""))
  assert not ngram.model.with_n
  tsv = tmp_path / "n.tsv"
  tsv.write_text(f"chrom\tpos\tref\talt\n2\t3105\t{c2[3104]}\t{'A' if c2[3104] != 'A' else 'C'}\n"
                 f"2\t2995\t{c2[2994]}\t{'A' if c2[2994] != 'A' else 'C'}\n")
  out = str(tmp_path / "o")
  run_lib.run(["ng"], str(tsv), genome["path"], out, lambda w: ngram, window=500)
  rows = [l.split("\t") for l in open(os.path.join(out, "variants.tsv")).read().splitlines()[1:]]
  assert [r[4] for r in rows] == ["2:3101-3600", "2:2501-3000"]  # shifted away from the N run


def test_command_line(genome, tmp_path):
  """--mode=variants through main: an N-gram workdir, the default window, one-line errors."""
  from configs import ngram as ngram_config
  from dnagen_jax import config_check
  workdir = str(tmp_path / "ng")
  config = ngram_config.get_config()
  config.model.ngram_order = 4
  os.makedirs(workdir)
  config_check.write_or_check_workdir_config(config, workdir)
  NGramModel.fit(SOURCE.sample(20, seed=1), 4, "kneser_ney", lower_discounts="").save(workdir)
  vcf = str(tmp_path / "v.vcf.gz")
  write_vcf(vcf, genome, num=30)
  proc = helpers.run_main("--mode=variants", f"--workdir={workdir}", f"--variants={vcf}",
                          f"--reference={genome['path']}", "--strands=forward")
  assert proc.returncode == 0, proc.stderr
  assert "windows of 1024 nt" in proc.stdout and "variants/s" in proc.stdout
  assert sorted(os.listdir(os.path.join(workdir, "variants"))) == [
      "roc.png", "variants.json", "variants.md", "variants.tsv"]
  rows = open(os.path.join(workdir, "variants", "variants.tsv")).read().splitlines()
  assert len(rows) == 31 and rows[0].endswith("\twindow\tllr\tllr_forward")


@pytest.mark.slow
def test_trained_lstm_ranks_variants_as_the_oracle_does(genome, tfds_dir, tmp_path):
  """A small LSTM trained on the source (configs/default.py, 300 steps) against the exact scores."""
  from dnagen_jax import workdir as workdir_lib
  proc = helpers.run_main("--config=configs/default.py", f"--workdir={tmp_path / 'lstm'}",
                          f"--config.data.data_dir={tfds_dir}", "--config.train.max_steps=300",
                          timeout=1800)
  assert proc.returncode == 0, proc.stderr[-2000:]
  wins = genome_windows(genome, 200, num=300)
  truth = score_lib.score_windows(OracleScorer(SOURCE), wins, "both")["score"]
  got = score_lib.score_windows(workdir_lib.load_scorer(str(tmp_path / "lstm")), wins, "both")["score"]
  assert scipy.stats.spearmanr(got, truth)[0] > 0.9
