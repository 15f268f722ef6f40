r"""End-to-end benchmark: the project's trainer as it trains, against a plain PyTorch loop.

  python -m dnagen_jax.bench --loop --config=configs/paper_lstm.py --workdir=/tmp/loop \
      --config.data.source=files --config.data.files=../shared/data/human_genes/genes.csv \
      --minutes=8

Both sides train the same model settings on the same TFDS splits, for the
same wall time (--minutes) or number of epochs (--epochs), one after the
other in this process, and validate at the same steps:
  * dnagen_jax: `trainer.train_and_evaluate` itself, in WORKDIR/jax (its
    metrics.jsonl is the record), batching and all;
  * PyTorch: `torch_loop.train`, the loop users write by hand.
Then both score the validation and test genes (forward only, length-sorted
batches of train.eval_batch_size), as --mode=eval/detect do.
Reported for both: real nucleotides/s over the training wall time
(compilation, validation and checkpoints included), the padding fraction,
time per epoch, time outside the compiled step, validation perplexity after
each evaluation, scoring nucleotides/s and the final model's held-out (test
split) perplexity. Written: WORKDIR/loop.json (every
point) and WORKDIR/loop.png (validation perplexity against nucleotides seen
and against wall time, one line per library).
"""

from __future__ import annotations

import json
import math
import os
import time

from dnagen_jax.data import storage
from dnagen_jax.data import batching
from dnagen_jax.data import tokens
from dnagen_jax.errors import UserError


# The training settings that shape a curve: a reused dnagen_jax side must have been trained with them.
_CURVE_FIELDS = ("batch_size", "learning_rate", "schedule", "warmup_steps", "num_epochs", "grad_clip",
                 "weight_decay", "seed", "eval_every", "max_steps", "patience")


def _jax_config(config, minutes: float):
  cfg = config.copy_and_resolve_references()
  cfg.train.max_minutes, cfg.train.max_steps, cfg.train.patience = minutes, 0, 0
  return cfg


def _check_reusable(cfg, workdir: str) -> None:
  """A finished dnagen_jax side in `workdir` trained the same model, data and curve settings, or UserError."""
  from dnagen_jax import config_check  # pylint: disable=g-import-not-at-top
  if not os.path.exists(os.path.join(workdir, "results.json")):
    raise UserError(f"{workdir} holds no finished run (results.json missing): use a new --workdir")
  config_check.write_or_check_workdir_config(cfg, workdir, write=False)  # model and data
  old = config_check.read_workdir_config(workdir)["train"]
  diffs = [f"train.{k}: {old.get(k)!r} -> {cfg.train[k]!r}" for k in _CURVE_FIELDS
           if old.get(k) != cfg.train[k]]
  if diffs:
    raise UserError(f"{workdir} was trained with other settings ({'; '.join(diffs[:3])}); "
                    f"use a new --workdir")


def _jax_side(cfg, workdir: str, train: bool = True) -> dict:
  """Trains `cfg` in `workdir` (or, train=False, reads the finished run there); returns its record."""
  from dnagen_jax.training import trainer  # pylint: disable=g-import-not-at-top
  if train:
    trainer.train_and_evaluate(cfg, workdir)
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    records = [json.loads(line) for line in f]
  end = [r for r in records if r["split"] == "timings"][-1]
  points = [{"step": r["step"], "nucleotides_seen": r["nucleotides_seen"], "time_s": r["time_s"],
             "perplexity": r["perplexity"]} for r in records if r["split"] == "validation"]
  return {"points": points, "steps": end["step"], "nucleotides_seen": end["nucleotides_seen"],
          "tokens_seen": end["tokens_seen"], "wall_s": end["time_s"],
          "outside_step_s": {k[:-2]: end[k] for k in ("compile_s", "host_s", "validation_s",
                                                      "checkpoint_s")}}


def _score_rate(score, seqs: list[str]) -> dict:
  """Nucleotides/s of `score(seqs)`: the first call (compilation included) and a second one."""
  out = {}
  for name in ("first", "second"):
    t0 = time.perf_counter()
    score(seqs)
    out[f"{name}_nt_per_s"] = sum(map(len, seqs)) / (time.perf_counter() - t0)
  return out


def _summary(side: dict, batches_per_epoch: int) -> dict:
  s = dict(side)
  s["real_nt_per_s"] = side["nucleotides_seen"] / side["wall_s"]
  s["padding_fraction"] = 1.0 - side["nucleotides_seen"] / max(side["tokens_seen"], 1)
  s["epochs"] = side["steps"] / batches_per_epoch
  s["seconds_per_epoch"] = side["wall_s"] / max(s["epochs"], 1e-9)
  return s


def matched_points(ours: dict, theirs: dict) -> tuple[list[dict], list[dict]]:
  """The two curves compared point by point: (at equal nucleotides, at equal time).

  At equal nucleotides: each of `ours`' validation points against `theirs`'
  curve read at the same count, linearly between their two points around it
  (torch_loop validates one batch before and after each of ours on purpose:
  `eval_at_nucleotides`), or their nearest point where none lies beyond;
  `other_nucleotides` are the two counts read between. At equal time: each of
  `theirs`' points against `ours`' last point at or before that wall time
  (what our run had reached then). Rows also hold difference = ours - theirs.
  """
  by_nt, by_time = [], []
  for p in ours["points"]:
    n = p["nucleotides_seen"]
    below = [q for q in theirs["points"] if q["nucleotides_seen"] <= n]
    above = [q for q in theirs["points"] if q["nucleotides_seen"] >= n]
    if not below and not above:
      continue
    lo, hi = (below or above)[-1 if below else 0], (above or below)[0 if above else -1]
    span = hi["nucleotides_seen"] - lo["nucleotides_seen"]
    w = (n - lo["nucleotides_seen"]) / span if span else 0.0
    other = lo["perplexity"] + w * (hi["perplexity"] - lo["perplexity"])
    by_nt.append({"nucleotides": n, "other_nucleotides": [lo["nucleotides_seen"], hi["nucleotides_seen"]],
                  "perplexity": p["perplexity"], "other_perplexity": other,
                  "difference": p["perplexity"] - other})
  for q in theirs["points"]:
    before = [p for p in ours["points"] if p["time_s"] <= q["time_s"]]
    if before:
      p = before[-1]
      by_time.append({"time_s": q["time_s"], "time_s_ours": p["time_s"],
                      "nucleotides": p["nucleotides_seen"], "other_nucleotides": q["nucleotides_seen"],
                      "perplexity": p["perplexity"], "other_perplexity": q["perplexity"],
                      "difference": p["perplexity"] - q["perplexity"]})
  return by_nt, by_time


def _plot(result: dict, path: str) -> None:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
  for lib, side in result["sides"].items():
    pts = side["points"]
    axes[0].plot([p["nucleotides_seen"] / 1e6 for p in pts], [p["perplexity"] for p in pts],
                 "o-", label=lib)
    axes[1].plot([p["time_s"] / 60 for p in pts], [p["perplexity"] for p in pts], "o-", label=lib)
  axes[0].set_xlabel("training nucleotides seen (millions)")
  axes[1].set_xlabel("wall time (minutes, validation included)")
  axes[0].set_ylabel("validation perplexity")
  for ax in axes:
    ax.grid(alpha=0.3)
    ax.legend()
  fig.suptitle(result["title"], fontsize=9)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def _print_table(result: dict) -> None:
  sides = result["sides"]
  libs = list(sides)
  rows = [("real nucleotides/s", "real_nt_per_s", "{:,.0f}", True),
          ("padding", "padding_fraction", "{:.1%}", False),
          ("seconds per epoch", "seconds_per_epoch", "{:,.0f}", False),
          ("epochs", "epochs", "{:.2f}", False),
          ("scoring nt/s (first call)", "score_first_nt_per_s", "{:,.0f}", True),
          ("scoring nt/s (second call)", "score_second_nt_per_s", "{:,.0f}", True),
          ("held-out (test) perplexity", "test_perplexity", "{:.4f}", False)]
  header = f"{'':30s}" + "".join(f"{lib:>20s}" for lib in libs)
  print(header + ("   ratio" if len(libs) == 2 else ""), flush=True)
  for label, key, fmt, ratio in rows:
    vals = [sides[lib].get(key) for lib in libs]
    line = f"{label:30s}" + "".join(f"{fmt.format(v):>20s}" if v is not None else f"{'-':>20s}"
                                    for v in vals)
    if ratio and len(libs) == 2 and None not in vals:
      line += f"   {vals[0] / vals[1]:.2f}x"
    print(line, flush=True)
  if "equal_nucleotides" in result:
    print(f"validation perplexity at equal nucleotides ({libs[0]} - {libs[1]}):", flush=True)
    for r in result["equal_nucleotides"]:
      lo, hi = r["other_nucleotides"]
      print(f"  {r['nucleotides'] / 1e6:7.3f}M nt (theirs read between {lo / 1e6:.3f}M and {hi / 1e6:.3f}M): "
            f"{r['perplexity']:.4f} / {r['other_perplexity']:.4f}  ({r['difference']:+.4f})", flush=True)
    print(f"validation perplexity at equal time ({libs[0]}'s last point before {libs[1]}'s):", flush=True)
    for r in result["equal_time"]:
      print(f"  {r['time_s'] / 60:6.1f} min: {r['perplexity']:.4f} ({r['nucleotides'] / 1e6:.3f}M nt) / "
            f"{r['other_perplexity']:.4f} ({r['other_nucleotides'] / 1e6:.3f}M nt)  ({r['difference']:+.4f})",
            flush=True)
  for lib in libs:
    outside = sides[lib].get("outside_step_s", {})
    print(f"{lib} time outside the compiled step: " +
          ", ".join(f"{k} {v:.1f} s" for k, v in outside.items()), flush=True)
    print(f"{lib} validation perplexity: " + ", ".join(
        f"{p['perplexity']:.4f} (step {p['step']}, {p['nucleotides_seen'] / 1e6:.2f}M nt, "
        f"{p['time_s'] / 60:.1f} min)" for p in sides[lib]["points"]), flush=True)


def run(config, workdir: str, minutes: float = 0.0, epochs: int = 0, with_torch: bool = True,
        evals_per_epoch: int = 2, torch_sort_noise: float = 50.0, reuse_jax: bool = False) -> dict:
  """Runs both loops; prints the comparison; writes loop.json and loop.png; returns loop.json's dict.

  reuse_jax: a finished dnagen_jax side already in WORKDIR/jax (same model, data
  and training settings) is read, not trained again: only PyTorch trains, for
  --minutes / --epochs (e.g. when the first run was stopped during its PyTorch side).
  """
  if not workdir:
    raise UserError("bench --loop needs --workdir (it trains there)")
  if not minutes and not epochs:
    raise UserError("bench --loop needs --minutes=M or --epochs=E (the same budget for both)")
  if config.model.name == "ngram":
    raise UserError("bench --loop times the neural trainers; for N-grams see python -m dnagen_jax.ngram.bench")
  jax_dir = os.path.join(workdir, "jax")
  reuse = os.path.exists(jax_dir)
  if reuse and not reuse_jax:
    raise UserError(f"{jax_dir} exists: the loop benchmark trains from scratch; use a new --workdir "
                    f"(or --reuse_jax to train only PyTorch against the finished run there)")
  os.makedirs(workdir, exist_ok=True)
  data = batching.TrainBatches(config.data, config.train.batch_size, config.train.seed)
  bpe = data.batches_per_epoch
  config = config.copy_and_resolve_references()
  config.train.eval_every = max(1, -(-bpe // evals_per_epoch))  # the last lands on the epoch's end
  config.train.num_epochs = epochs or 10**6  # both sides' schedules span this many epochs
  m = config.model
  title = (f"{m.name} {m.num_layers}x{m.hidden_dim if m.name != 'transformer' else m.embed_dim}, "
           f"batch {config.train.batch_size}, lr {config.train.learning_rate} {config.train.schedule}, "
           f"{', '.join(b for b in (minutes and f'{minutes:g} min', epochs and f'{epochs} epochs') if b)}, "
           f"data {config.data.files or config.data.source}")
  print(f"loop benchmark: {title} | {bpe} steps per epoch, validation every "
        f"{config.train.eval_every} steps", flush=True)

  val = [r.sequence for r in storage.load_records(config.data, "validation")]
  test = [r.sequence for r in storage.load_records(config.data, "test")]
  sides = {}
  cfg = _jax_config(config, minutes)
  if reuse:
    _check_reusable(cfg, jax_dir)
  print(f"--- dnagen_jax{' (read from ' + jax_dir + ')' if reuse else ''}", flush=True)
  jax_side = _jax_side(cfg, jax_dir, train=not reuse)
  from dnagen_jax.scoring import neural  # pylint: disable=g-import-not-at-top
  scorer = neural.NeuralScorer.load(jax_dir)
  jax_side.update({f"score_{k}": v for k, v in _score_rate(scorer.token_log_probs, val + test).items()})
  lps = scorer.token_log_probs(test)
  count = sum(map(len, lps))  # 0 with data.test_fraction=0: no held-out figure
  jax_side["test_perplexity"] = math.exp(-sum(float(lp.sum()) for lp in lps) / count) if count else None
  sides["dnagen_jax"] = _summary(jax_side, bpe)

  if with_torch:
    from dnagen_jax.bench import step_speed  # pylint: disable=g-import-not-at-top
    if not step_speed.torch_available():
      print("torch is not installed (pip install -e .[bench]): dnagen_jax only", flush=True)
    else:
      from dnagen_jax.bench import torch_loop  # pylint: disable=g-import-not-at-top
      print("--- PyTorch", flush=True)
      train = [r.sequence for r in storage.load_records(config.data, "train")]
      with open(os.path.join(workdir, "torch_points.jsonl"), "w") as points:
        def on_point(p):  # progress, and the curve kept on disk while the loop runs
          points.write(json.dumps(p) + "\n")
          points.flush()
          print(f"PyTorch step {p['step']} | validation perplexity {p['perplexity']:.4f} | "
                f"{p['time_s'] / 60:.1f} min", flush=True)
        t = torch_loop.train(config, train, val, minutes=minutes, epochs=epochs,
                             eval_every=config.train.eval_every, sort_noise=torch_sort_noise,
                             on_point=on_point,
                             eval_at_nucleotides=[p["nucleotides_seen"] for p in jax_side["points"]])
      model = t.pop("model")
      cut = config.data.length_buckets[-1]
      genes = [tokens.encode(s) for s in val + test]
      rate = _score_rate(lambda _: torch_loop.score_batches(
          model, genes, config.train.eval_batch_size, cut), val + test)
      t.update({f"score_{k}": v for k, v in rate.items()})
      total, count = torch_loop.score_batches(model, genes[len(val):], config.train.eval_batch_size, cut)
      t["test_perplexity"] = math.exp(-total / count) if count else None
      t["outside_step_s"] = {"validation": t.pop("validation_s")}
      sides[f"PyTorch {t['torch_version']}"] = _summary(t, bpe)

  result = {"title": title, "batches_per_epoch": bpe, "eval_every": config.train.eval_every,
            "config": config.to_dict(), "sides": sides}
  if len(sides) == 2:
    result["equal_nucleotides"], result["equal_time"] = matched_points(*sides.values())
  with open(os.path.join(workdir, "loop.json"), "w") as f:
    json.dump(result, f, indent=2, default=str)
  _plot(result, os.path.join(workdir, "loop.png"))
  _print_table(result)
  print(f"wrote {os.path.join(workdir, 'loop.json')} and loop.png", flush=True)
  return result
