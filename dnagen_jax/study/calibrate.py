"""A study's compute and its time on this machine, for --dry_run: planned FLOPs and a short timing.

Per neural family and tokenization, the smallest and the largest model (by
FLOPs per nucleotide) run a few compiled training steps on a batch of the
point's size, padded to the length bucket that holds the mean gene; the
other sizes get the seconds per step interpolated in log-log against FLOPs
per step. A point's estimate is its planned steps x seconds per step:
compilation, validation and the data pipeline's own time are not included,
and steps cut short by early stopping make it an upper bound.
"""

from __future__ import annotations

import math
import time

import numpy as np


def planned_steps(point, n_genes: int) -> int:
  """Steps the point's training will take at most (the step cap, or its epochs over its genes)."""
  tc = point.config.train
  per_epoch = max(1, math.ceil(n_genes / tc.batch_size))
  steps = tc.num_epochs * per_epoch
  return int(min(steps, tc.max_steps) if tc.max_steps else steps)


def subset_genes(point, lengths) -> int:
  """Genes of the point's training subset (~ its nucleotides / mean gene; all for 0)."""
  target = point.config.data.train_nucleotides
  if not target:
    return len(lengths)
  return min(len(lengths), max(1, round(target * len(lengths) / float(np.sum(lengths)))))


def _bucket(config, tokens: float) -> int:
  buckets = [b for b in config.data.length_buckets if b >= tokens + 1]
  return int(buckets[0] if buckets else min(config.data.length_buckets[-1], config.model.max_len))


def seconds_per_step(config, length: int, steps: int = 3) -> float:
  """Median seconds of one compiled training step on [batch_size, length] random tokens."""
  import jax  # pylint: disable=g-import-not-at-top
  from flax import nnx  # pylint: disable=g-import-not-at-top
  from dnagen_jax import models  # pylint: disable=g-import-not-at-top
  from dnagen_jax.data import kmers  # pylint: disable=g-import-not-at-top
  from dnagen_jax.runtime import mesh_utils, steps as steps_lib  # pylint: disable=g-import-not-at-top
  vocab = kmers.vocab_size(config.data.kmer)
  model = models.create_model(config.model, 0, vocab)
  optimizer = nnx.Optimizer(model, steps_lib.make_optimizer(config.train, 10**6), wrt=nnx.Param)
  graphdef, state = nnx.split((model, optimizer))
  mesh = mesh_utils.make_mesh()
  b = config.train.batch_size
  ids = np.random.default_rng(0).integers(3, min(vocab, 3 + 4 ** config.data.kmer), (b, length))
  batch = mesh_utils.put_batch({"inputs": ids.astype(np.int32), "targets": ids.astype(np.int32),
                                "mask": np.ones((b, length), np.float32)}, mesh)
  state = jax.device_put(state, mesh_utils.replicated(mesh))
  step = steps_lib.jit_train_step(graphdef, mesh)
  state, metrics = step(state, batch)  # compile and warm up
  jax.block_until_ready(metrics)
  times = []
  for _ in range(steps):
    t0 = time.perf_counter()
    state, metrics = step(state, batch)
    jax.block_until_ready(metrics)
    times.append(time.perf_counter() - t0)
  return float(np.median(times))


def estimate(points, lengths, log=print) -> dict:
  """{point name: (planned FLOPs, estimated seconds)} of every neural point; measures a few models.

  Args:
    points: spec.Point list; lengths: int [n] nucleotides of each gene of the whole train split.
  """
  mean_gene = float(np.mean(lengths))
  out, groups = {}, {}
  for p in points:
    if p.flops_per_nt:
      groups.setdefault((p.family, p.kmer), []).append(p)
  for (family, k), group in groups.items():
    by_cost = sorted(group, key=lambda p: p.flops_per_nt)
    measured = {}
    for p in {id(by_cost[0]): by_cost[0], id(by_cost[-1]): by_cost[-1]}.values():
      length = _bucket(p.config, mean_gene / k)
      t0 = time.time()
      secs = seconds_per_step(p.config, length)
      step_flops = p.flops_per_nt * p.config.train.batch_size * mean_gene
      measured[p.flops_per_nt] = (step_flops, secs)
      log(f"calibration: {family} k={k} {p.size_name or ''} {secs * 1000:.1f} ms a step of "
          f"{p.config.train.batch_size} x {length} tokens ({step_flops / secs / 1e9:.2f} GFLOP/s; "
          f"{time.time() - t0:.0f} s with compilation)")
    xs = sorted(measured.values())
    for p in group:
      step_flops = p.flops_per_nt * p.config.train.batch_size * mean_gene
      if len(xs) == 1 or xs[0][0] == xs[-1][0]:
        secs = xs[0][1] * step_flops / xs[0][0] if len(xs) > 1 else xs[0][1]
      else:  # log-log interpolation (extrapolation) between the two measured sizes
        (f0, s0), (f1, s1) = xs[0], xs[-1]
        slope = math.log(s1 / s0) / math.log(f1 / f0)
        secs = s0 * (step_flops / f0) ** slope
      n_steps = planned_steps(p, subset_genes(p, lengths))
      out[p.name] = (step_flops * n_steps, secs * n_steps)
  return out
