"""Generation: sampling agrees with scoring, the KV cache with recomputation, controls, FASTA, the report."""

import json
import os

import numpy as np
import pytest
from flax import nnx

from dnagen_jax import generation
from dnagen_jax import models
from dnagen_jax import scoring
from dnagen_jax.data import tokens
from dnagen_jax.data.synthetic import MarkovSource
from dnagen_jax.errors import UserError
from dnagen_jax.generation import generate as generate_mode
from dnagen_jax.generation import report
from dnagen_jax.generation import sampler as sampler_lib
from dnagen_jax.generation import stats
from dnagen_jax.generation.sampler import Controls
from dnagen_jax.ngram.infinigram import InfiniGram
from dnagen_jax.ngram.model import NGramModel
from dnagen_jax.ngram.scorer import NGramScorer
from dnagen_jax.runtime import mesh_utils
from dnagen_jax.scoring.neural import NeuralScorer
from tests.helpers import overrides, run_main, tiny_config

SOURCE = MarkovSource(order=3, alpha=1.0, seed=0)


def _neural_scorer(name: str, seed: int = 0, **model_fields) -> NeuralScorer:
  config = tiny_config("/unused", name)
  config.model.num_layers = 2
  config.model.update(model_fields)
  model = models.create_model(config.model, seed)
  graphdef, params = nnx.split(model)
  return NeuralScorer(config, graphdef, params, mesh_utils.make_mesh())


def _scorer(family: str):
  if family == "ngram":
    return NGramScorer(NGramModel.fit(SOURCE.sample(200, 0), 4, "kneser_ney"))
  if family == "infinigram":
    return NGramScorer(InfiniGram.fit(SOURCE.sample(200, 0), cap=0, lower_discounts="0.6,1.1,1.7"))
  if family == "lstm_positions":
    return _neural_scorer("lstm", position_embedding=True)
  return _neural_scorer(family)


@pytest.mark.parametrize("family", ["lstm", "lstm_positions", "gru", "transformer", "ngram",
                                    "infinigram"])
def test_sampling_agrees_with_scoring(family):
  """Every step's distribution is exp(token_log_probs) of the scorer, with the cache and without."""
  scorer = _scorer(family)
  sampler = generation.from_scorer(scorer, batch_size=3)
  prompt, length = "GATC", 24
  paths = (False,) if family == "infinigram" else (True, False)  # the infinigram has one path
  runs = {cache: sampler.generate(prompt, 3, length, Controls(seed=4), cache=cache, record=True)
          for cache in paths}
  for cache, samples in runs.items():
    seqs = [prompt + s for s in samples.sequences()]
    assert all(len(s) == len(prompt) + length for s in seqs)
    for row, lp in enumerate(scorer.token_log_probs(seqs)):
      drawn = samples.log_probs[row, np.arange(length), samples.tokens[row]]
      np.testing.assert_allclose(drawn, lp[len(prompt):], atol=2e-5, err_msg=f"cache={cache}")
  # The same keys and (to rounding) the same distributions: the same samples. (The infinigram has
  # one path, its naive loop; test_capped_infinigram_samples_as_the_ngram_cache checks it.)
  np.testing.assert_array_equal(runs[paths[0]].tokens, runs[False].tokens)
  # Every outcome, not only the drawn one: the scorer on prefix + o for each o.
  prefixes = ["", "A", prompt + runs[False].sequences()[0][:7]]
  for cache in paths:
    got = sampler.next_log_probs(prefixes, cache=cache)
    for i, p in enumerate(prefixes):
      want = [scorer.token_log_probs([p + o])[0][-1] for o in "ACGT"]
      np.testing.assert_allclose(got[i, tokens.encode("ACGT")], want, atol=2e-5)
  # At temperature 1 without filters, the draw is that distribution over A, C, G, T, renormalised.
  logp = runs[paths[0]].log_probs[0]
  x = np.asarray(sampler_lib.sampling_log_probs(logp, sampler.allowed, Controls()))
  want = np.exp(logp[:, 3:7]) / np.exp(logp[:, 3:7]).sum(axis=1, keepdims=True)
  np.testing.assert_allclose(np.exp(x[:, 3:7]), want, atol=1e-5)
  assert np.all(np.exp(x[:, :3]) == 0) and np.all(np.exp(x[:, 7]) == 0)


def test_capped_infinigram_samples_as_the_ngram_cache():
  """An infinigram capped at 4 is the KN 4-gram (to 1e-12): its whole-prefix sampler draws the
  N-gram's table-context (cached) samples, token for token, from the same seed."""
  train = SOURCE.sample(200, 0)
  capped = generation.from_scorer(
      NGramScorer(InfiniGram.fit(train, cap=4, lower_discounts="0.6,1.1,1.7")), batch_size=3)
  table = generation.from_scorer(
      NGramScorer(NGramModel.fit(train, 4, "kneser_ney", lower_discounts="0.6,1.1,1.7")), batch_size=3)
  ours = capped.generate("GATC", 3, 24, Controls(seed=4), record=True)
  theirs = table.generate("GATC", 3, 24, Controls(seed=4), cache=True, record=True)
  np.testing.assert_array_equal(ours.tokens, theirs.tokens)
  np.testing.assert_allclose(ours.log_probs, theirs.log_probs, atol=1e-9)


def test_transformer_greedy_kv_cache_equals_recomputation():
  sampler = generation.from_scorer(_neural_scorer("transformer", seed=3), batch_size=2)
  greedy = Controls(greedy=True)
  cached = sampler.generate("ACGTTG", 2, 60, greedy)
  naive = sampler.generate("ACGTTG", 2, 60, greedy, cache=False)
  np.testing.assert_array_equal(cached.tokens, naive.tokens)
  assert len(set(cached.sequences()[0])) > 1  # not a degenerate constant run


def test_length_limit_of_learned_positions():
  """BOS + prompt + sample must fit model.max_len (128 here): one line before any work."""
  sampler = generation.from_scorer(_neural_scorer("transformer"))
  sampler.check_length("ACGT", 124)
  with pytest.raises(UserError, match="--max_length=125 after a prompt of 4 nt needs 129 positions"):
    sampler.generate("ACGT", 2, 125, Controls())
  with pytest.raises(UserError, match="invalid character 'N' at position 2"):
    sampler.generate("AN", 2, 5, Controls())


def test_controls_against_a_plain_reference():
  rng = np.random.default_rng(0)
  logp = np.log(rng.dirichlet(np.ones(8), size=50)).astype(np.float32)
  allowed = np.zeros(8, bool)
  allowed[3:7] = True

  def reference(row, c):
    p = np.where(allowed, np.exp(row / c.temperature), 0.0)
    p /= p.sum()
    order = np.argsort(-p)
    keep = np.zeros(8, bool)
    keep[order[:c.top_k or 8]] = True
    keep &= p > 0
    if c.top_p < 1:
      mass, nucleus = 0.0, np.zeros(8, bool)
      for i in order:
        if mass < c.top_p and keep[i]:
          nucleus[i], mass = True, mass + p[i] / p[keep].sum()
      keep = nucleus
    q = np.where(keep, p, 0.0)
    return q / q.sum()

  for c in (Controls(temperature=0.7), Controls(top_k=2), Controls(top_p=0.6),
            Controls(temperature=1.5, top_k=3, top_p=0.8)):
    got = np.exp(np.asarray(sampler_lib.sampling_log_probs(logp, allowed, c)))
    np.testing.assert_allclose(got, [reference(r, c) for r in logp], atol=1e-5, err_msg=str(c))
  # top-k 1 and a tiny top-p both leave the most likely outcome: greedy.
  keys = sampler_lib.sample_keys(0, 0, 0, 50)
  best = np.argmax(np.where(allowed, logp, -np.inf), axis=1)
  for c in (Controls(top_k=1), Controls(top_p=1e-6), Controls(greedy=True)):
    np.testing.assert_array_equal(sampler_lib.choose(keys, 0, logp, allowed, c), best)


def test_specials_never_emitted_and_eos_stops():
  """A model that puts almost all its mass on PAD/BOS/EOS/N still emits only A, C, G, T."""
  scorer = _neural_scorer("gru")
  model = nnx.merge(scorer.graphdef, scorer.params)
  bias = model.head.bias[...]
  model.head.bias[...] = bias.at[np.array([tokens.PAD, tokens.BOS, tokens.EOS, tokens.N])].add(20.0)
  scorer.params = nnx.state(model)
  sampler = generation.from_scorer(scorer, batch_size=8)
  out = sampler.generate("", 8, 50, Controls(temperature=2.0, seed=1))
  assert set("".join(out.sequences())) <= set("ACGT") and all(len(s) == 50 for s in out.sequences())
  # A sampler whose model has EOS as an outcome ends each sample there.
  sampler.eos = True
  short = sampler.generate("", 8, 50, Controls(seed=1)).sequences()
  assert all(len(s) < 50 for s in short) and set("".join(short)) <= set("ACGT")


def test_statistics_against_brute_force():
  rng = np.random.default_rng(1)
  seqs = ["".join(rng.choice(list("ACGT"), n)) for n in (40, 3, 77, 120)] + ["ACNGT"]
  for k in (1, 3):
    brute = {}
    for s in seqs:
      for i in range(len(s) - k + 1):
        if "N" not in s[i:i + k]:
          brute[s[i:i + k]] = brute.get(s[i:i + k], 0) + 1
    counts = stats.kmer_counts(seqs, k)
    assert {"".join("ACGT"[(c // 4 ** (k - 1 - j)) % 4] for j in range(k)): int(v)
            for c, v in enumerate(counts) if v} == brute
  assert stats.js_divergence([1, 0], [0, 1]) == pytest.approx(1.0)
  assert stats.js_divergence([3, 5, 2], [6, 10, 4]) == pytest.approx(0.0)
  for s in seqs[:4] + ["CCATGAAATAGGATGTTTTTTTTGA"]:
    best = 0
    for i in range(len(s) - 2):
      if s[i:i + 3] == "ATG":
        for j in range(i + 3, len(s) - 2, 3):
          if s[j:j + 3] in stats.STOPS:
            best = max(best, j + 3 - i)
            break
    assert stats.longest_orf(s)[1] == best
  corpus = ["".join(rng.choice(list("ACGT"), 200)) for _ in range(5)]
  queries = [corpus[0][50:90] + "T" * 5, "GGGG", corpus[2][-30:] + corpus[3][:30],
             "".join(rng.choice(list("ACGT"), 60))]
  brute = [max(L for L in range(len(q) + 1)
               if any(q[i:i + L] in c for i in range(len(q) - L + 1) for c in corpus))
           for q in queries]
  np.testing.assert_array_equal(stats.longest_matches(queries, corpus), brute)


def test_report_tells_a_model_of_the_source_from_an_untrained_one():
  """k = 4 spectra: samples of a fitted 4-gram sit near the real-vs-real yardstick, an untrained LSTM's do not."""
  train, reference = SOURCE.sample(600, 0), SOURCE.sample(200, 1)
  fitted = generation.from_scorer(NGramScorer(NGramModel.fit(train, 4, "kneser_ney")))
  untrained = generation.from_scorer(_neural_scorer("lstm"), batch_size=64)
  judges = {"oracle": scoring.OracleScorer(SOURCE)}
  ratio, results = {}, {}
  for name, sampler in (("fitted", fitted), ("untrained", untrained)):
    seqs = sampler.generate("", 64, 500, Controls(seed=0)).sequences()
    results[name] = r = report.compare(seqs, reference, train, judges)
    js = r["kmer_js_bits"]
    ratio[name] = js["samples_vs_reference"][3] / js["real_vs_real"][3]
  assert ratio["fitted"] < 2.0 < 10 * 2.0 < ratio["untrained"], ratio
  oracle = {n: r["perplexity"]["oracle"]["samples"] for n, r in results.items()}
  assert oracle["fitted"] < 1.05 * results["fitted"]["perplexity"]["oracle"]["reference"] < oracle["untrained"]
  # Nothing long copied from training genes by samples of a 4-gram.
  assert results["fitted"]["longest_match_in_train_nt"]["samples"]["fraction_at_least_32"] == 0.0
  assert "| 4-mer JS divergence (bits) |" in report.markdown(results["fitted"])


@pytest.fixture(scope="module")
def ngram_workdir(tfds_dir, tmp_path_factory):
  """A trained N-gram workdir through main (seconds)."""
  config = tiny_config(tfds_dir, "ngram")
  config.model.ngram_order = 4
  workdir = str(tmp_path_factory.mktemp("gen") / "ngram")
  proc = run_main("--config=configs/default.py", f"--workdir={workdir}", *overrides(config))
  assert proc.returncode == 0, proc.stderr
  return workdir


@pytest.mark.slow  # 10 s; by default the sampling/report tests and main's bad-input tests guard generation
def test_generate_and_report_through_main(ngram_workdir, tmp_path):
  prompts = tmp_path / "prompts.fa"
  prompts.write_text(">first\nACGTAC\n>second\nggat\n")
  paths = [tmp_path / f"s{i}.fa" for i in range(3)]
  proc = run_main("--mode=generate", f"--workdir={ngram_workdir}", "--num_samples=5",
                  "--max_length=40", "--top_p=0.95", "--seed=7", f"--prompts={prompts}",
                  f"--out={paths[0]}")
  assert proc.returncode == 0, proc.stderr
  for path, seed in zip(paths[1:], (7, 8)):  # in-process, as main calls it: the same bytes for seed 7
    generate_mode.run(ngram_workdir, str(path), 5, 40, Controls(top_p=0.95, seed=seed), str(prompts))
  text = paths[0].read_bytes()
  assert text == paths[1].read_bytes() and text != paths[2].read_bytes()  # the seed decides, byte for byte
  lines = text.decode().splitlines()
  headers = [l for l in lines if l.startswith(">")]
  assert len(headers) == 10 and "model=ngram-kneser_ney-4" in headers[0] and "seed=7" in headers[0]
  assert "prompt=second prompt_length=4" in headers[5]
  body = "".join(l for l in lines if not l.startswith(">"))
  assert set(body) <= set("ACGT")
  assert lines[1].startswith("ACGTAC") and lines[11].startswith("GGAT") and len(lines[11]) == 44
  proc = run_main("--mode=sample_report", f"--workdir={ngram_workdir}", f"--samples={paths[0]}",
                  f"--out={tmp_path / 'rep'}")
  assert proc.returncode == 0, proc.stderr
  with open(tmp_path / "rep" / "s0_report.json") as f:
    r = json.load(f)
  assert r["sequences"]["samples"] == 10 and r["length"]["samples"]["max"] == 40
  assert "the true source (oracle)" in r["perplexity"]
  assert os.path.getsize(tmp_path / "rep" / "s0_report.png") > 0


@pytest.mark.parametrize("args,expected", [
    (["--prompts=ACGXT"], "--prompts: p0: invalid character 'X' at position 4"),
    (["--top_p=0"], "--top_p=0.0 must be in (0, 1]"),
    (["--top_p=1.5"], "--top_p=1.5 must be in (0, 1]"),
    (["--top_k=0"], "--top_k=0 must be >= 1"),
    (["--temperature=0"], "--temperature=0.0 must be > 0 (or use --greedy)"),
])
def test_generate_bad_input(ngram_workdir, tmp_path, args, expected):
  out = tmp_path / "never.fa"
  if args[0].startswith("--prompts"):  # through the command line: exit 2, one line
    proc = run_main("--mode=generate", f"--workdir={ngram_workdir}", f"--out={out}", *args)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and expected in lines[0], proc.stderr
  else:  # main hands these flags to Controls unchanged: the same check in-process (no 3 s start-up)
    flags = dict(a[2:].split("=") for a in args)
    controls = Controls(temperature=float(flags.get("temperature", 1.0)), top_p=float(flags.get("top_p", 1.0)),
                        top_k=int(flags["top_k"]) if "top_k" in flags else None)
    with pytest.raises(UserError) as e:
      generate_mode.run(ngram_workdir, str(out), 5, 40, controls)
    assert expected in str(e.value) and "\n" not in str(e.value)
  assert not out.exists()


def test_generate_needs_a_trained_model(tmp_path):
  out = tmp_path / "never.fa"
  with pytest.raises(UserError) as e:  # in-process; the command line's exit 2 is test_generate_bad_input's
    generate_mode.run(str(tmp_path / "empty"), str(out), 5, 40, Controls())
  assert "no trained model here" in str(e.value) and "\n" not in str(e.value)
  assert not out.exists()


@pytest.mark.parametrize("change,expected", [
    ({"model": {"name": "mixture", "mixture_workdirs": "/a,/b"}}, "a mixture does not generate"),
    ({"data": {"kmer": 3}}, "its model reads 3-mer tokens"),
])
def test_generate_refuses_models_that_cannot_sample(ngram_workdir, tmp_path, change, expected):
  """A mixture or a k-mer model: one line, nothing written (the check reads config.json only)."""
  with open(os.path.join(ngram_workdir, "config.json")) as f:
    config = json.load(f)
  for section, fields in change.items():
    config[section].update(fields)
  workdir = tmp_path / "other"
  workdir.mkdir()
  (workdir / "config.json").write_text(json.dumps(config))
  out = tmp_path / "never.fa"
  with pytest.raises(UserError) as e:  # in-process; the command line's exit 2 is tested above
    generate_mode.run(str(workdir), str(out), 5, 40, Controls())
  assert expected in str(e.value) and "\n" not in str(e.value)
  assert not out.exists()


def test_sample_report_with_a_reference_file(ngram_workdir, tmp_path):
  samples, ref = tmp_path / "s.fa", tmp_path / "ref.fa"
  samples.write_text(">a prompt_length=3\nACGATGAAATAGCC\n>b\nTTTTGGGCCCAAATGC\n")
  ref.write_text("".join(f">r{i}\n{s}\n" for i, s in enumerate(SOURCE.sample(6, 3))))
  r = report.run(ngram_workdir, str(samples), reference=str(ref), out=str(tmp_path / "out"))
  assert r["sequences"]["reference"] == 6 and r["sequences"]["samples_nt"] == 11 + 16
  assert r["longest_orf_nt"]["samples"]["max"] == 9  # ATGAAATAG after the 3-nt prompt
  assert (tmp_path / "out" / "s_report.md").exists()


def test_sample_report_needs_samples(ngram_workdir):
  proc = run_main("--mode=sample_report", f"--workdir={ngram_workdir}")
  lines = proc.stderr.strip().splitlines()
  assert proc.returncode == 2 and len(lines) == 1 and "needs --samples=PATH.fa" in lines[0]


def test_speed_measures_both_paths_on_the_same_samples():
  from dnagen_jax.generation import speed  # defines no flags on import
  for sampler in (generation.from_scorer(_scorer("ngram")), generation.from_scorer(_neural_scorer("gru"))):
    row = speed.measure(sampler, 8, 20, seed=0)
    assert row["same_tokens"] and row["cached_nt_per_s"] > 0 and row["naive_nt_per_s"] > 0
  assert "| **" in speed.markdown([dict(row, label="gru")])
