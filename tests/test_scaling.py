"""Scaling studies: FLOP counts against XLA, the L(N, D) and IsoFLOP fitters on known laws,
model-size ladders and IsoFLOP budgets in study configs, bad input, and the synthetic truth (slow)."""

import os

import ml_collections
import numpy as np
import pytest

from dnagen_jax.errors import UserError
from dnagen_jax.models import flops
from dnagen_jax.study import fit_nd
from dnagen_jax.study import runner
from dnagen_jax.study import spec
from tests.helpers import run_main


# ------------------------------------------------------------------ FLOPs and parameters

def _model_config(name, **kw):
  from configs import default
  config = default.get_config()
  config.model.name = name
  config.model.update(dict(embed_dim=16, hidden_dim=32, max_len=64, num_heads=2, mlp_dim=24,
                           cpu_kernel=False))
  config.model.update(kw)
  return config


@pytest.mark.parametrize("name, kw, vocab", [
    ("lstm", {}, 8), ("gru", {"num_layers": 2, "position_embedding": True}, 8),
    ("gru", {"bias_pair": False}, 8),
    ("lstm", {"init": "flax"}, 67), ("transformer", {"head_dim": 5, "num_layers": 2}, 8)])
def test_parameter_counts_match_the_models(name, kw, vocab):
  import jax
  from flax import nnx
  from dnagen_jax import models
  config = _model_config(name, **kw)
  total, without = flops.params(config.model, vocab)
  cls = models.NEURAL[name]  # shapes only (no compilation)
  model = nnx.eval_shape(lambda: cls(config.model, rngs=nnx.Rngs(0), vocab_size=vocab))
  assert total == sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param)))
  embed = vocab * config.model.embed_dim + (config.model.max_len * config.model.embed_dim
                                            if name == "transformer" or config.model.position_embedding else 0)
  assert total - without == embed


def _xla_flops(config, batch: int, t: int) -> float:
  """XLA's cost analysis of the compiled training step on a [batch, t] batch."""
  import jax
  import jax.numpy as jnp
  from flax import nnx
  from dnagen_jax import models
  from dnagen_jax.runtime import steps
  cls = models.NEURAL[config.model.name]
  model = nnx.eval_shape(lambda: cls(config.model, rngs=nnx.Rngs(0)))
  optimizer = nnx.eval_shape(lambda: nnx.Optimizer(model, steps.make_optimizer(config.train, 100),
                                                   wrt=nnx.Param))
  graphdef, state = nnx.split((model, optimizer))
  spec_ = lambda dtype: jax.ShapeDtypeStruct((batch, t), dtype)
  b = {"inputs": spec_(jnp.int32), "targets": spec_(jnp.int32), "mask": spec_(jnp.float32)}
  # the project's train step on one device (the tests' several CPU devices would split the batch)
  step = jax.jit(lambda s, x: steps.train_step(graphdef, s, x))
  cost = step.lower(state, b).compile().cost_analysis()
  return float((cost[0] if isinstance(cost, list) else cost)["flops"])


def _recurrent_check(monkeypatch, name, batch, t, kw, tolerance):
  # XLA counts a while loop's body once, so the time loop is unrolled (recurrent's unroll = t);
  # unrolled, it skips the products with the zero initial state (4 B G H^2 a layer).
  from dnagen_jax.models import recurrent
  monkeypatch.setattr(recurrent, "UNROLL", t)
  monkeypatch.setattr(recurrent, "UNROLL_BY_BACKEND", {"cpu": t, "gpu": t, "tpu": t})
  config = _model_config(name, **kw)
  m = config.model
  ours = flops.step_flops(m, 8, batch, t) - 4 * batch * flops.GATES[name] * m.hidden_dim ** 2 * m.num_layers
  ratio = _xla_flops(config, batch, t) / ours
  # XLA also counts the element-wise work (gates, softmax, Adam) the formulas leave out
  assert 1.0 <= ratio <= 1 + tolerance, ratio


def test_lstm_flops_match_xla(monkeypatch):
  _recurrent_check(monkeypatch, "lstm", 32, 4, {"hidden_dim": 64}, 0.25)


@pytest.mark.parametrize("block", [0, pytest.param(16, marks=pytest.mark.slow)])
def test_transformer_flops_and_attention_term_match_xla(block):
  # One sequence and one head: the CPU attention's per-(sequence, head) loop runs once.
  config = _model_config("transformer", embed_dim=32, num_heads=1, mlp_dim=64, num_layers=1,
                         attention_block=block, max_len=128)
  short, long = (_xla_flops(config, 1, t) for t in (32, 64))
  ours_short, ours_long = (flops.step_flops(config.model, 8, 1, t) for t in (32, 64))
  for xla, ours in ((short, ours_short), (long, ours_long)):
    assert 1.0 <= xla / ours <= 1.25, (xla, ours)  # + Adam's ~20 FLOPs a parameter, large at B x T = 32
  # per token and the sequence-length term (the step's Adam cancels): within 10%
  assert abs((long - short) / (ours_long - ours_short) - 1) < 0.10, (long - short, ours_long - ours_short)


@pytest.mark.slow
@pytest.mark.parametrize("name, kw", [("lstm", {"num_layers": 2}), ("gru", {"num_layers": 2}),
                                      ("gru", {"position_embedding": True})])
def test_recurrent_flops_match_xla_slow(monkeypatch, name, kw):
  _recurrent_check(monkeypatch, name, 64, 8, dict(kw, hidden_dim=64), 0.25)


def test_flops_per_nucleotide_counts_tokens_and_attention():
  lstm = _model_config("lstm").model
  lengths = np.array([30, 61, 90])
  per_nt = flops.flops_per_nucleotide(lstm, 8, 1, lengths, batch_size=10**9)  # per-step terms vanish
  assert per_nt == pytest.approx(flops.token_flops(lstm, 8))
  tr = _model_config("transformer", attention_block=0).model
  a = tr.num_heads * (tr.embed_dim // tr.num_heads)
  attention = sum(14.0 * a * tr.num_layers * (-(-n // 3)) ** 2 for n in lengths)  # 3-mers: ceil(n/3) tokens
  want = (flops.token_flops(tr, 67) * sum(-(-n // 3) for n in lengths) + attention) / lengths.sum()
  assert flops.flops_per_nucleotide(tr, 67, 3, lengths, 16) == pytest.approx(want)


# ------------------------------------------------------------------ fitters on known laws

TRUE = dict(E=1.5, A=0.3, alpha=0.5, B=0.4, beta=0.3, N0=1e4, D0=1e7)


def test_lnd_fit_recovers_a_known_law():
  n = np.repeat(np.geomspace(1e3, 1e5, 4), 4)
  d = np.tile(np.geomspace(1e6, 1e8, 4), 4)
  rng = np.random.default_rng(0)
  loss = fit_nd.law(n, d, TRUE) * (1 + 0.002 * rng.standard_normal(n.size))
  f = fit_nd.fit_with_intervals(n, d, loss, 6 * n, budgets=(1e14,), bootstrap=20)
  assert abs(f["E"] / 1.5 - 1) < 0.02 and f["ci"]["E"][0] <= 1.5 <= f["ci"]["E"][1]
  assert abs(f["alpha"] - 0.5) < 0.05 and abs(f["beta"] - 0.3) < 0.05
  assert f["cost"] == pytest.approx([6.0, 1.0])
  # the compute-optimal allocation against the true law's, found by brute force on a fine grid
  grid = np.geomspace(1e2, 1e7, 20001)
  best = grid[np.argmin(fit_nd.law(grid, 1e14 / (6 * grid), TRUE))]
  assert abs(f["optimal"][0]["N"] / best - 1) < 0.15
  assert f["optimal"][0]["N"] * 6 * f["optimal"][0]["D"] == pytest.approx(1e14)


def test_isoflop_minima_follow_the_true_optimum():
  budgets = np.repeat([1e11, 1e12, 1e13], 7)
  center = {1e11: 7e3, 1e12: 1.6e4, 1e13: 3.8e4}  # near the true optima
  n = np.array([center[c] * f for c in (1e11, 1e12, 1e13) for f in np.geomspace(0.2, 5, 7)])
  loss = fit_nd.law(n, budgets / (6 * n), TRUE)
  r = fit_nd.isoflop_fit(budgets, n, loss, 6 * n, budgets=(1e14,), bootstrap=20)
  assert all(m["interior"] for m in r["minima"])
  for m in r["minima"]:
    grid = np.geomspace(1e2, 1e7, 20001)
    best = grid[np.argmin(fit_nd.law(grid, m["C"] / (6 * grid), TRUE))]
    assert abs(m["N"] / best - 1) < 0.1
  # with gamma = 1 the exponents add to one (C = 6 N D)
  assert r["N_law"][1] + r["D_law"][1] == pytest.approx(1.0, abs=1e-6)
  assert abs(r["N_law"][1] - 0.3 / (0.5 + 0.3)) < 0.05  # beta / (alpha + beta)


def test_lnd_fit_with_fewer_points_than_parameters_is_one_line():
  with pytest.raises(UserError, match="more points than its 5 parameters \\(got 5 points\\)"):
    fit_nd.fit_law([1e3, 1e4, 1e5, 1e3, 1e4], [1e6, 1e6, 1e7, 1e7, 1e8], [2.0, 1.9, 1.8, 1.85, 1.7])


# ------------------------------------------------------------------ ladders and budgets in study configs

def _ladder(tfds_dir, budgets=(2e8, 6e8, 2e9), **family):
  study = ml_collections.ConfigDict()
  study.name = "ladder-test"
  study.data = ml_collections.ConfigDict({"data_dir": tfds_dir, "max_length": 40, "length_buckets": (64,),
                                          "synthetic_sizes": (300, 60, 60)})
  study.fractions, study.nucleotides = (), ()
  study.budgets = budgets
  study.optimal_budgets = (1e10,)
  study.target_losses = ()
  study.bootstrap = 20
  study.fit_seed = 0
  train = {"batch_size": 16, "eval_every": 10**6, "checkpoint_every": 10**6, "log_every": 10**6,
           "warmup_steps": 5}
  study.families = ml_collections.ConfigDict({
      "lstm": dict(config="configs/default.py", overrides={"model": {"embed_dim": 8, "max_len": 64},
                                                           "train": train},
                   sizes={"h4": {"model": {"hidden_dim": 4}}, "h8": {"model": {"hidden_dim": 8}},
                          "h16": {"model": {"hidden_dim": 16}}},
                   kmers=(1,), seeds=(0,), budget="", ngram_orders=())})
  study.families.lstm.update(family)
  return study


def test_isoflop_points_spend_their_budget(tfds_dir):
  study = _ladder(tfds_dir)
  lengths = spec.train_lengths_of(study)
  pts = spec.points(study, lengths)
  assert [p.name for p in pts[:3]] == ["lstm_k1_h4_c2e08_s0", "lstm_k1_h4_c6e08_s0", "lstm_k1_h4_c2e09_s0"]
  assert [p.size_name for p in pts[::3]] == ["h4", "h8", "h16"]  # by parameters, not by label
  mean_gene = np.mean(lengths)
  for p in pts:
    spent = p.flops_per_nt * p.config.train.max_steps * p.config.train.batch_size * mean_gene
    assert abs(spent / p.budget_flops - 1) < 0.5 / p.config.train.max_steps + 1e-9  # rounded steps
    assert p.config.data.train_nucleotides == 0 and p.config.train.patience == 0
  bigger = [p.config.train.max_steps for p in pts if p.budget_flops == 2e9]
  assert bigger == sorted(bigger, reverse=True)  # larger models: fewer steps for the same budget


def test_old_style_study_keeps_its_point_names(tfds_dir):
  study = spec.load_config_file("configs/studies/synthetic.py")
  names = [n for n, *_ in spec.point_names(study)]
  assert names[0] == "kn_k1_f0.0078125_s0" and names[-1] == "lstm_k1_f1_s0" and len(names) == 32
  from dnagen_jax.study import scaling_report
  assert not scaling_report.is_scaling(study)


@pytest.mark.parametrize("change, message", [
    (lambda s: s.families.lstm.sizes.update({"h0": {"model": {"hidden_dim": 0}}}),
     "study family 'lstm' size 'h0': config.model.hidden_dim=0 must be positive"),
    (lambda s: s.families.lstm.sizes.update({"hx": {"model": {"hiden_dim": 3}}}),
     "study family 'lstm' size 'hx': unknown config field 'model.hiden_dim'"),
    (lambda s: s.update(budgets=(1e3, 2e9)),
     "compute budget 1e\\+03 FLOPs is too small for its smallest model \\(h4, k=1\\) to take one step"),
    (lambda s: s.update(fractions=(0.5,)), "exactly one of fractions, nucleotides or budgets"),
    (lambda s: s.families.lstm.update(budget="epochs:2"), "with IsoFLOP budgets"),
    (lambda s: s.families.lstm.update(sizes={"a b": {}}), "size label 'a b'"),
])
def test_bad_ladders_are_one_line_errors(tfds_dir, change, message):
  study = _ladder(tfds_dir)
  change(study)
  with pytest.raises(UserError, match=message):
    spec.points(study)


def test_dry_run_prints_commands_flops_and_time(tfds_dir, tmp_path, capsys, monkeypatch):
  from dnagen_jax.study import calibrate
  measured = []

  def fake_seconds(config, length, steps=3):  # the timing itself: the slow CLI test below
    measured.append(config.model.hidden_dim)
    return 1e-3 * config.model.hidden_dim

  monkeypatch.setattr(calibrate, "seconds_per_step", fake_seconds)
  study = _ladder(tfds_dir, budgets=(1e9, 3e9))
  runner.run(study, str(tmp_path / "w"), dry_run=True)
  out = capsys.readouterr().out
  assert out.count("--point=") == 6 and sorted(measured) == [4, 16]  # the smallest and largest only
  assert "training FLOPs in its neural points; about" in out and "left on this machine" in out
  assert not os.path.exists(tmp_path / "w" / "points")
  lengths = spec.train_lengths_of(study)
  pts = spec.points(study, lengths)
  cost = calibrate.estimate(pts, lengths, log=lambda _: None)
  for p in pts:
    flops_, secs = cost[p.name]
    assert flops_ == pytest.approx(p.flops_per_nt * p.config.train.batch_size * np.mean(lengths)
                                   * p.config.train.max_steps)
    if p.size_name in ("h4", "h16"):  # measured; h8 interpolated between them
      assert secs == pytest.approx(1e-3 * p.config.model.hidden_dim * p.config.train.max_steps)
  h8 = [cost[p.name][1] / p.config.train.max_steps for p in pts if p.size_name == "h8"][0]
  assert 4e-3 < h8 < 16e-3
  # a budget too small for a larger size: that point is skipped, said so
  study.budgets = (1e6, 3e9)
  runner.run(study, str(tmp_path / "w"), dry_run=True, calibrate=False)
  out = capsys.readouterr().out
  assert "skipped: lstm_k1_h16_c1e06_s0, 1e+06 FLOPs < one step" in out
  assert out.count("\n# ") + out.startswith("# ") == 5  # launch/slurm/study_array.sbatch counts these


@pytest.mark.slow
def test_cli_dry_run_of_the_synthetic_ladder_calibrates(tmp_path):
  r = run_main("--mode=study", "--config=configs/studies/synthetic_ladder.py",
               f"--workdir={tmp_path / 'w'}", "--dry_run", timeout=1200)
  assert r.returncode == 0, r.stderr
  assert r.stdout.count("--point=") == 18 and r.stdout.count("calibration: ") == 4
  assert "training FLOPs in its neural points" in r.stdout


def test_report_of_an_isoflop_study_recovers_the_law_its_points_follow(tfds_dir, tmp_path):
  """Point workdirs written from a known L(N, D) (no training): the study's tables and fits find it."""
  import json
  study = _ladder(tfds_dir, budgets=(2e8, 6e8, 2e9, 6e9))
  study.bootstrap = 10
  study.families.lstm.sizes["h32"] = {"model": {"hidden_dim": 32}}
  workdir = str(tmp_path / "w")
  lengths = spec.train_lengths_of(study)
  pts = spec.points(study, lengths)
  law = dict(E=1.9, A=0.2, alpha=0.6, B=0.5, beta=0.35, N0=1e3, D0=1e6)
  for p in pts:
    pdir = os.path.join(workdir, "points", p.name)
    os.makedirs(pdir)
    seen = int(p.config.train.max_steps * p.config.train.batch_size * np.mean(lengths))
    loss = float(fit_nd.law(p.params[1], seen, law))
    with open(os.path.join(pdir, "config.json"), "w") as f:
      f.write(p.config.to_json_best_effort())
    with open(os.path.join(pdir, "study_point.json"), "w") as f:
      json.dump({"train_nucleotides": int(sum(lengths)), "train_genes": len(lengths), "wall_s": 1.0}, f)
    with open(os.path.join(pdir, "results.json"), "w") as f:
      json.dump({"model": "lstm", "params": p.params[0], "steps": p.config.train.max_steps,
                 "nucleotides_seen": seen, "val_bits_per_nucleotide": loss,
                 "test_bits_per_nucleotide": loss, "oracle_test_perplexity": 2 ** 1.9}, f)
  out = runner.run(study, workdir)  # every point done: trains nothing, writes the tables
  fam = out["scaling"]["families"][0]
  assert abs(fam["lnd"]["E"] / 1.9 - 1) < 0.01 and abs(fam["lnd"]["alpha"] - 0.6) < 0.05
  assert len(fam["isoflop"]["minima"]) == 4 and fam["isoflop"]["N_law"] is not None
  assert out["rows"][0]["train_flops"] == pytest.approx(pts[0].flops_per_nt * out["rows"][0]["nucleotides_seen"])
  text = out["markdown"]
  for section in ("## Sizes and compute", "## L(N, D) =", "## IsoFLOP minima", "## Compute-optimal size",
                  "## Best test loss of each family at each budget"):
    assert section in text
  assert "| lstm | 1 | 16 | 1.9000 |" in text and "| 1.9 | +0.00% |" in text  # E against the 'oracle'
  assert os.path.getsize(os.path.join(workdir, "scaling.png")) > 0
  assert "L(D) = E + B" not in text  # IsoFLOP points share one D: no learning curve


@pytest.mark.slow
def test_synthetic_ladders_find_the_oracle(tfds_dir, tmp_path):
  """Known truth, small: LSTM and transformer ladders x nested data sizes on the order-2 source.

  configs/studies/synthetic_grid.py at a smaller scale (docs/studies.md gives
  the full one): the L(N, D) fit's E within 2% of the oracle's bits per
  nucleotide, and its bootstrap interval holding the oracle.
  """
  study = spec.load_config_file("configs/studies/synthetic_grid.py")
  study.name = "truth-test"
  study.data.data_dir = tfds_dir
  study.data.synthetic_sizes = (1000, 200, 400)
  study.data.max_length = 32
  study.data.length_buckets = (33,)
  study.fractions = (0.25, 0.5, 1.0)
  study.bootstrap = 50
  for fam in study.families.values():
    fam.overrides["model"]["max_len"] = 33
    fam.overrides["train"] = dict(fam.overrides["train"], max_steps=2000)
  del study.families.lstm.sizes["h32"]
  out = runner.run(study, str(tmp_path / "w"))
  assert {fam["family"] for fam in out["scaling"]["families"]} == {"lstm", "transformer"}
  for fam in out["scaling"]["families"]:
    oracle, fit = fam["oracle_test_bits_per_nt"], fam["lnd"]
    assert abs(fit["E"] / oracle - 1) < 0.02, (fam["family"], fit["E"], oracle)
    lo, hi = fit["ci"]["E"]
    assert lo <= oracle <= hi, (fam["family"], fit["ci"]["E"], oracle)


def test_cli_dry_run_of_a_bad_ladder_is_one_line(tmp_path):
  path = tmp_path / "bad_ladder.py"
  path.write_text("import ml_collections\n"
                  "def get_config():\n"
                  "  s = ml_collections.ConfigDict()\n"
                  "  s.name = 'x'\n"
                  "  s.budgets = (1e12,)\n"
                  "  s.families = ml_collections.ConfigDict({'f': {'config': 'configs/default.py',\n"
                  "      'sizes': {'big': {'model': {'num_layers': -1}}}}})\n"
                  "  return s\n")
  r = run_main("--mode=study", f"--config={path}", f"--workdir={tmp_path / 'w'}", "--dry_run")
  assert r.returncode == 2, r.stderr
  assert r.stderr.strip().splitlines() == [
      "error: study family 'f' size 'big': config.model.num_layers=-1 must be positive"]
  assert not os.path.exists(tmp_path / "w")
