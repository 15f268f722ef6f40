"""The PyTorch training loop a user writes by hand: the peer of `bench --loop`.

Imported only by `dnagen_jax.bench.loop_speed` (torch is the optional `bench`
extra). It is deliberately plain, the loop of a PyTorch tutorial:
  * batching: each epoch, genes sorted by length + Uniform[0, noise),
    cut into batches of `batch_size` (the remainder sits the epoch out),
    each batch trimmed to its own longest gene, batch order shuffled;
  * model: `torch_twins.create_model` (nn.Embedding + nn.LSTM/nn.GRU +
    nn.Linear, or the GPT twin) with PyTorch's default initialisation;
  * step: masked mean NLL over real nucleotides, backward, (clip), Adam
    with the config's learning-rate schedule (`LambdaLR`, the same warm-up
    and cosine as `runtime.steps.make_optimizer`);
  * validation every `eval_every` steps and after the last (as the project's
    trainer does): genes sorted by length, batches of `eval_batch_size`, each
    trimmed to its longest gene, under inference_mode.
Time is wall time from the loop's start, validation included.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from dnagen_jax.data import tokens
from dnagen_jax.bench import torch_twins


def _batch(genes: list[np.ndarray], cut: int) -> dict:
  """Genes (token arrays) -> inputs/targets [B, T] int64 and mask [B, T] on the twin's device, T = longest gene."""
  genes = [g[:cut] for g in genes]
  length = max(len(g) for g in genes)
  targets = np.zeros((len(genes), length), np.int64)
  for i, g in enumerate(genes):
    targets[i, :len(g)] = g
  inputs = np.concatenate([np.full((len(genes), 1), tokens.BOS), targets[:, :-1]], axis=1)
  inputs[targets == tokens.PAD] = tokens.PAD
  dev = torch_twins.device()
  return {"inputs": torch.from_numpy(inputs).to(dev), "targets": torch.from_numpy(targets).to(dev),
          "mask": torch.from_numpy((targets != tokens.PAD).astype(np.float32)).to(dev)}


def score_batches(model, genes: list[np.ndarray], batch_size: int, cut: int) -> tuple[float, int]:
  """(summed ln p, nucleotides) of `genes` under `model`, length-sorted batches."""
  order = np.argsort([len(g) for g in genes], kind="stable")
  total, count = 0.0, 0
  model.eval()
  with torch.inference_mode():
    for start in range(0, len(order), batch_size):
      batch = _batch([genes[i] for i in order[start:start + batch_size]], cut)
      total += float(torch_twins.token_log_probs(model, batch).double().sum())
      count += int(batch["mask"].sum())
  model.train()
  return total, count


def train(config, train_seqs: list[str], val_seqs: list[str], *, minutes: float, epochs: int,
          eval_every: int, sort_noise: float = 50.0, on_point=None,
          eval_at_nucleotides=()) -> dict:
  """Trains the twin of `config.model`; returns validation points and totals.

  Stops after `epochs` epochs or `minutes` of wall time, whichever comes first
  (0 = no limit). Points: {step, nucleotides_seen, time_s, perplexity}, each
  also handed to `on_point` as it is made (so that a long run keeps them).
  eval_at_nucleotides: also validate on both sides of each of these running
  counts of real nucleotides (the other library's validation points): before
  the step that reaches it and after it, so that the curve can be read there
  between two points one batch apart (`loop_speed.matched_points`).
  """
  cut = config.data.length_buckets[-1]
  batch_size = config.train.batch_size
  train_genes = [tokens.encode(s) for s in train_seqs]
  val_genes = [tokens.encode(s) for s in val_seqs]
  lengths = np.asarray([min(len(g), cut) for g in train_genes])
  batches_per_epoch = len(train_genes) // batch_size
  trainer = torch_twins.TorchTrainer(config, config.train.seed)
  tc = config.train
  total = batches_per_epoch * tc.num_epochs
  warmup = max(0, min(tc.warmup_steps, total))  # 0: none (steps.make_optimizer)

  def lr_factor(step: int) -> float:  # optax's warm-up (+ cosine to 10%) schedule
    if step < warmup:
      return step / warmup
    if tc.schedule != "cosine":
      return 1.0
    frac = min(1.0, (step - warmup) / max(total - warmup, 1))
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac))

  schedule = torch.optim.lr_scheduler.LambdaLR(trainer.opt, lr_factor)
  rng = np.random.default_rng(config.train.seed)
  points, step, seen, padded, val_s = [], 0, 0, 0, 0.0
  t0 = time.perf_counter()
  out_of_time = lambda: minutes and time.perf_counter() - t0 >= 60 * minutes
  last_step = batches_per_epoch * epochs if epochs else None
  targets = sorted(eval_at_nucleotides)

  def validate():
    nonlocal val_s
    v0 = time.perf_counter()
    total, count = score_batches(trainer.model, val_genes, config.train.eval_batch_size, cut)
    val_s += time.perf_counter() - v0
    points.append({"step": step, "nucleotides_seen": seen,
                   "time_s": time.perf_counter() - t0, "perplexity": math.exp(-total / count)})
    if on_point:
      on_point(points[-1])

  for _ in range(epochs or 10**9):
    order = rng.permutation(len(train_genes))[:batches_per_epoch * batch_size]
    order = order[np.argsort(lengths[order] + rng.uniform(0, sort_noise, len(order)))]
    plan = order.reshape(-1, batch_size)[rng.permutation(batches_per_epoch)]
    for rows in plan:
      batch = _batch([train_genes[i] for i in rows], cut)
      ahead = int(batch["mask"].sum())
      if targets and seen < targets[0] <= seen + ahead and not (points and points[-1]["step"] == step):
        validate()  # the point just before the count: the lower end of the bracket
      trainer.train_step(batch)
      schedule.step()
      step += 1
      seen += ahead
      padded += batch["mask"].numel()
      reached = bool(targets) and seen >= targets[0]
      while targets and seen >= targets[0]:
        targets.pop(0)
      if step % eval_every == 0 or step == last_step or out_of_time() or reached:
        validate()
      if out_of_time():
        break
    if out_of_time():
      break
  return {"points": points, "steps": step, "nucleotides_seen": seen, "tokens_seen": padded,
          "wall_s": time.perf_counter() - t0, "validation_s": val_s,
          "batches_per_epoch": batches_per_epoch, "model": trainer.model,
          "threads": torch.get_num_threads(), "device": torch_twins.device().type,
          "torch_version": torch.__version__}
