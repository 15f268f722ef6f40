"""The bench command on a tiny config: it runs, writes bench.json, and its helpers add up."""

import json
import os
import statistics

import pytest

from configs import default
from dnagen_jax.bench import step_speed


def _tiny_config(name="lstm"):
  config = default.get_config()
  config.model.name = name
  config.model.embed_dim = 8
  config.model.hidden_dim = 8
  config.model.mlp_dim = 16
  config.model.num_heads = 2
  return config


def test_run_writes_bench_json(tmp_path):
  result = step_speed.run(_tiny_config(), str(tmp_path), steps=2, warmup=1, batch_size=8, seq_len=16,
                     with_torch=step_speed.torch_available(), pipeline=False)
  saved = json.loads((tmp_path / "bench.json").read_text())
  assert saved["jax_train_nt_per_s"] > 0 and saved["jax_score_nt_per_s"] > 0
  assert len(saved["step_times_s"]["jax_train"]) == 2
  assert saved["batch_size"] == 8 and saved["seq_len"] == 16
  if step_speed.torch_available():
    assert result["train_ratio"] > 0 and result["torch_params"] > 0


def test_flops_and_memory_estimate():
  lstm = _tiny_config().model
  # 1 layer, in 8, hidden 8, 4 gates; head 8 -> vocab 8.
  assert step_speed.forward_flops_per_token(lstm, 16) == 2 * (8 + 8) * 4 * 8 + 2 * 8 * 8
  small = step_speed.train_step_bytes(_tiny_config(), 2, 64, remat=False)
  large = step_speed.train_step_bytes(_tiny_config(), 2, 256, remat=False)
  assert 0 < small < large


def test_random_batch_is_full_and_shifted():
  batch = step_speed.random_batch(3, 10)
  assert batch["inputs"].shape == (3, 10) and batch["mask"].all()
  assert (batch["inputs"][:, 1:] == batch["targets"][:, :-1]).all()


def test_loop_benchmark_trains_both_and_writes_curves(tfds_dir, tmp_path):
  """bench --loop on tiny synthetic genes: one epoch each, the same validation steps, files out."""
  from dnagen_jax.bench import loop_speed  # pylint: disable=g-import-not-at-top
  from dnagen_jax.errors import UserError  # pylint: disable=g-import-not-at-top
  from tests.helpers import tiny_config  # pylint: disable=g-import-not-at-top
  config = tiny_config(tfds_dir)
  config.data.num_buckets = 2
  result = loop_speed.run(config, str(tmp_path), epochs=1, with_torch=step_speed.torch_available())
  saved = json.loads((tmp_path / "loop.json").read_text())
  assert (tmp_path / "loop.png").stat().st_size > 1000
  assert len(saved["sides"]) == (2 if step_speed.torch_available() else 1)
  for side in result["sides"].values():
    assert side["real_nt_per_s"] > 0 and 0 <= side["padding_fraction"] < 1
    assert abs(side["epochs"] - 1) < 1e-9                      # the same budget for both
    main_points = [p for p in side["points"] if p["step"] % 4 == 0]
    assert [p["step"] for p in main_points] == [4, 8]          # 8 steps per epoch, 2 evaluations
    # Both learn: 8 warm-up steps take validation from ~7.9 to ~7.2 (uniform over the 8 tokens: 8).
    first, last = (p["perplexity"] for p in main_points)
    assert last < first - 0.3 and first < 8
    # the final model on the held-out split: the same source, so about its last validation figure
    assert side["test_perplexity"] == pytest.approx(side["points"][-1]["perplexity"], rel=0.05)
  if step_speed.torch_available():  # the PyTorch curve is on disk as it is made
    kept = [json.loads(line) for line in (tmp_path / "torch_points.jsonl").read_text().splitlines()]
    other = next(k for k in result["sides"] if k != "dnagen_jax")
    assert kept == result["sides"][other]["points"]
    # and validated around the project's nucleotide counts too: read between points one batch apart
    assert len(result["equal_nucleotides"]) == 2 and "equal_time" in result
    for row in result["equal_nucleotides"]:
      lo, hi = row["other_nucleotides"]
      assert lo <= row["nucleotides"] <= hi and hi - lo <= 8 * 128       # one batch at most
    for a, b in zip(*([p for p in result["sides"][k]["points"] if p["step"] % 4 == 0]
                      for k in ("dnagen_jax", other))):  # measured within 0.8%
      assert a["perplexity"] == pytest.approx(b["perplexity"], rel=0.03)
  ours = result["sides"]["dnagen_jax"]
  # Without torch too: our curve against PyTorch's, stored by tests/data/make_torch_reference.py.
  from tests.test_torch_reference import stored_loop_curve  # pylint: disable=g-import-not-at-top
  steps, torch_perplexity = stored_loop_curve()
  assert [p["step"] for p in ours["points"]] == steps.tolist()
  for p, want in zip(ours["points"], torch_perplexity):
    assert p["perplexity"] == pytest.approx(want, rel=0.03)
  assert set(ours["outside_step_s"]) == {"compile", "host", "validation", "checkpoint"}
  with pytest.raises(UserError, match="trains from scratch"):
    loop_speed.run(config, str(tmp_path), epochs=1)           # never overwrites a finished run
  again = loop_speed.run(config, str(tmp_path), epochs=1, with_torch=False, reuse_jax=True)
  assert again["sides"]["dnagen_jax"]["points"] == ours["points"]  # read back, not retrained
  config.train.learning_rate *= 2
  with pytest.raises(UserError, match="other settings"):
    loop_speed.run(config, str(tmp_path), epochs=1, reuse_jax=True)


def test_gpu_script_refuses_an_unknown_part(tmp_path):
  """launch/gpu_bench.sh: an unknown mode or part is one line and exit 2, before anything is installed or run."""
  import subprocess  # pylint: disable=g-import-not-at-top
  script = os.path.join(os.path.dirname(os.path.dirname(__file__)), "launch", "gpu_bench.sh")
  out = subprocess.run(["bash", script, "lstm_float64", str(tmp_path / "out")],
                       capture_output=True, text=True, check=False)
  assert out.returncode == 2
  assert out.stderr.strip().splitlines() == [
      "gpu_bench.sh: unknown mode or part 'lstm_float64' (prep, check, all, a part: run without "
      "arguments for the list)"]
  assert not (tmp_path / "out").exists()


def test_score_benchmark_times_both_on_the_splits(tfds_dir, tmp_path):
  """bench --score on tiny synthetic genes: both scorers, every validation + test nucleotide, score.json out."""
  from dnagen_jax.bench import score_speed  # pylint: disable=g-import-not-at-top
  from dnagen_jax.data import storage  # pylint: disable=g-import-not-at-top
  from dnagen_jax.errors import UserError  # pylint: disable=g-import-not-at-top
  from tests.helpers import tiny_config  # pylint: disable=g-import-not-at-top
  config = tiny_config(tfds_dir)
  result = score_speed.run(config, str(tmp_path), repeats=2, with_torch=step_speed.torch_available())
  expected = sum(len(r.sequence) for s in ("validation", "test")
                 for r in storage.load_records(config.data, s))
  assert result["nucleotides"] == expected
  saved = json.loads((tmp_path / "score.json").read_text())
  for side, times in saved["seconds"].items():  # each rate from its own timed rounds
    assert saved["nt_per_s"][side] == pytest.approx(expected / statistics.median(times), rel=1e-9)
  assert all(len(ts) == 2 for ts in result["seconds"].values())
  assert len(result["nt_per_s"]) == (2 if step_speed.torch_available() else 1)
  config.model.name = "ngram"
  with pytest.raises(UserError, match="neural scorers"):
    score_speed.run(config, None, repeats=1)
