"""`train_and_evaluate(config, workdir)`: the training run behind --mode=train.

The workdir is the experiment. It holds config.json (the resolved config),
metrics.jsonl (one JSON line per log or validation point), checkpoints/ and
best/ (Orbax), and results.json at the end. Running the same command again
resumes from the latest checkpoint, with the data iterator where it stopped.
SIGTERM or Ctrl-C saves a checkpoint first, so an interrupted run loses nothing.
On several processes (runtime/distributed.py) process 0 alone writes these
files and prints; a signal to any process stops all of them at one agreed
step, which they save together.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal

import jax
import ml_collections
import numpy as np
from flax import nnx

from dnagen_jax.runtime import checkpoints
from dnagen_jax.runtime import distributed
from dnagen_jax.runtime import workdir_lock
from dnagen_jax.runtime import write_errors
from dnagen_jax import config_check
from dnagen_jax.scoring import neural
from dnagen_jax.data import storage
from dnagen_jax.data import batching
from dnagen_jax.data import kmers
from dnagen_jax.runtime import mesh_utils
from dnagen_jax import models
from dnagen_jax.training import progress
from dnagen_jax import scoring
from dnagen_jax.runtime import steps
from dnagen_jax.errors import UserError


class Interrupted(Exception):
  """SIGTERM / SIGINT arrived; a checkpoint has been saved."""

  def __init__(self, message: str, signum: int):
    super().__init__(message)
    self.signum = signum


def _signal_catcher():
  """Installs SIGTERM/SIGINT handlers that set a flag; returns (flag, restore)."""
  flag = {"signal": None}
  previous = {}

  def handler(signum, _frame):
    flag["signal"] = signum

  for sig in (signal.SIGTERM, signal.SIGINT):
    previous[sig] = signal.signal(sig, handler)

  def restore():
    for sig, h in previous.items():
      signal.signal(sig, h)

  return flag, restore


def split_perplexity(scorer, data_config, split: str) -> dict:
  """`scorer.perplexity` over a whole split, read in pieces (`storage.sequence_chunks`).

  A split of fewer than 2^24 nucleotides (every gene set) is one piece: the
  same sums as scoring the list at once.
  """
  ll, n = 0.0, 0
  for chunk in storage.sequence_chunks(data_config, split):
    lls, counts = scorer.score(chunk)
    ll, n = ll + float(lls.sum()), n + int(counts.sum())
  return scoring.perplexity_from_totals(ll, n)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Trains `config` in `workdir` (resuming if possible) and returns results.json's dict.

  The run holds the workdir's lock throughout (runtime/workdir_lock.py: a second
  run on it stops in one line). A file that cannot be written (no space, no
  permission) stops it in one line naming the last complete checkpoint.
  """
  with workdir_lock.hold(workdir), write_errors.quiet_orbax():
    try:
      return _train_family(config, workdir)
    except Exception as e:  # pylint: disable=broad-except
      line = write_errors.describe(e)
      if line is None:
        raise
      raise UserError(f"{line}; {write_errors.last_checkpoint(workdir)}") from None


def _train_family(config, workdir: str) -> dict:
  if config.model.name == "ngram":
    from dnagen_jax.ngram import train as ngram_train  # pylint: disable=g-import-not-at-top
    return ngram_train.train_and_evaluate(config, workdir)
  if config.model.name == "infinigram":
    from dnagen_jax.ngram import infinigram_train  # pylint: disable=g-import-not-at-top
    return infinigram_train.train_and_evaluate(config, workdir)
  if config.model.name == "mixture":
    from dnagen_jax import workdir as workdir_lib  # pylint: disable=g-import-not-at-top
    from dnagen_jax.mixture import train as mixture_train  # pylint: disable=g-import-not-at-top
    return mixture_train.train_and_evaluate(config, workdir, workdir_lib.load_scorer)
  config_check.validate(config)
  os.makedirs(workdir, exist_ok=True)
  # Several processes: every one checks the workdir, process 0 alone writes and
  # prints, and it prepares the data set before the others read it.
  writer = distributed.is_writer()
  config_check.write_or_check_workdir_config(config, workdir, write=writer)
  if writer:
    storage.prepare(config.data)
  distributed.barrier("data prepared")
  flag, restore_signals = _signal_catcher()
  try:
    with contextlib.ExitStack() as stack:
      if not writer:  # progress lines from process 0 only
        stack.enter_context(contextlib.redirect_stdout(stack.enter_context(open(os.devnull, "w"))))
      return _train(config, workdir, flag)
  finally:
    restore_signals()


def _train(config, workdir: str, flag: dict) -> dict:
  tc = config.train
  writer = distributed.is_writer()
  mesh = mesh_utils.make_mesh(fsdp=tc.get("fsdp", 1))
  if tc.batch_size % mesh.size:
    raise UserError(f"train.batch_size={tc.batch_size} must be a multiple of the {mesh.size} devices")

  # Each process reads and builds only its own rows of every global batch.
  data = batching.TrainBatches(config.data, tc.batch_size, tc.seed,
                               rows=mesh_utils.process_rows(tc.batch_size))
  total_steps = tc.num_epochs * data.batches_per_epoch
  if tc.max_steps:
    total_steps = min(total_steps, tc.max_steps)
  val_seqs = [r.sequence for r in storage.load_records(config.data, "validation")]

  model = models.create_model(config.model, tc.seed, kmers.vocab_size(config.data.get("kmer", 1)))
  n_params = models.param_count(model)
  optimizer = nnx.Optimizer(model, steps.make_optimizer(tc, total_steps), wrt=nnx.Param)
  ckpts = checkpoints.Checkpoints(workdir, keep=tc.keep_checkpoints, cleanup=True)

  meta = {"step": 0, "data": None, "best_val_loss": math.inf, "bad_evals": 0,
          "nucleotides_seen": 0, "seed": tc.seed, "elapsed_s": 0.0}
  if ckpts.latest_step() is not None:
    meta = ckpts.restore_into(model, optimizer, lambda s: mesh_utils.state_shardings(s, mesh))
    print(f"resuming from step {meta['step']} in {workdir}", flush=True)

  model_def = nnx.graphdef(model)
  graphdef, state = nnx.split((model, optimizer))
  shardings = mesh_utils.state_shardings(state, mesh)  # replicated unless train.fsdp > 1
  state = jax.device_put(state, shardings)
  train_step = steps.ByShape(steps.jit_train_step(graphdef, mesh, shardings), state, mesh, shardings)
  # One scorer for every validation: its compiled eval programs are reused.
  val_scorer = neural.NeuralScorer(config, model_def, nnx.state(model), mesh)
  it = data.iterator()
  if meta["data"] is not None:
    it.set_state(meta["data"])

  log = progress.Logger(workdir, total_steps, start_step=meta["step"],
                        nucleotides_seen=meta["nucleotides_seen"])
  name = config.model.name
  print(f"{name}: {n_params:,} parameters | {mesh.size} device(s) | {total_steps} steps "
        f"({data.batches_per_epoch} per epoch, batch {tc.batch_size}, "
        f"{100 * data.padded_fraction():.0f}% padding)", flush=True)
  with log.timed("compile"):  # every shape of the epoch at once, on every core
    shapes = data.shapes(meta["step"] // data.batches_per_epoch)
    train_step.precompile(shapes, threads=os.cpu_count() or 1)
    val_scorer.precompile(val_seqs, threads=os.cpu_count() or 1)
  print(f"compiled {len(shapes)} train shapes (lengths {shapes[0][1]}..{shapes[-1][1]}) and the "
        f"validation shapes in {log.timings['compile']:.1f} s", flush=True)

  def current_meta(step):
    return dict(meta, step=step, data=it.get_state(), nucleotides_seen=log.nucleotides_seen,
                elapsed_s=meta["elapsed_s"] + log.elapsed())

  def save(step, best=False):
    """Checks the loss since the last check is finite, then saves (async)."""
    with log.timed("checkpoint"):
      workdir_lock.check(workdir)  # another run took the workdir over: save nothing
      log.check_finite(step)
      model_, opt_ = nnx.merge(graphdef, state)
      ckpts.save(step, checkpoints.state_tree(model_, opt_), current_meta(step), best=best)

  def validate(step):
    with log.timed("validation"):
      model_, _ = nnx.merge(graphdef, state)
      val_scorer.params = nnx.state(model_)
      result = val_scorer.perplexity(val_seqs)
    loss = result["bits_per_nucleotide"] * math.log(2)  # nats per nucleotide
    log.validation(step, result)
    if loss < meta["best_val_loss"]:
      meta.update(best_val_loss=loss, bad_evals=0)
      save(step, best=True)
    else:
      meta["bad_evals"] += 1

  step = meta["step"]
  stopped_early = bool(tc.patience and meta["bad_evals"] >= tc.patience)  # a finished run, rerun
  stop_vote = distributed.StopVote(mesh)  # a signal to any process stops all at one step
  try:
    while step < total_steps and not stopped_early:
      if stop_vote.vote(flag["signal"] is not None):
        save(step)
        ckpts.wait()
        signum = flag["signal"] or signal.SIGTERM  # another process got it
        who = (f"process {jax.process_index()} of {jax.process_count()}: "
               if jax.process_count() > 1 else "")
        raise Interrupted(f"{who}interrupted by signal {signum} at step {step}; checkpoint "
                          f"saved in {workdir}; run the same command to resume", int(signum))
      with log.timed("host"):
        batch = next(it)  # this process's rows; the global batch's counts (k-mers count nucleotides)
        nucleotides, batch_tokens = int(batch.pop("nucleotides_total")), int(batch.pop("tokens_total"))
        batch.pop("nucleotides", None)
        device_batch = mesh_utils.put_local_batch(batch, mesh, tc.batch_size)
      shape = device_batch["inputs"].shape  # the global batch's
      if not train_step.has(shape):  # a length the first epoch did not use
        with log.timed("compile"):
          train_step.precompile([shape], threads=1)
      state, metrics = train_step(state, device_batch)
      step += 1
      log.train_step(step, metrics, nucleotides, batch_tokens)
      if step % tc.log_every == 0 or step == total_steps:
        log.flush_train(step)
      if step % tc.eval_every == 0 or step == total_steps:
        log.check_finite(step)
        validate(step)
        if tc.patience and meta["bad_evals"] >= tc.patience:
          print(f"early stopping at step {step}: no validation improvement in "
                f"{tc.patience} evaluations", flush=True)
          stopped_early = True
      if tc.max_minutes and log.elapsed() + meta["elapsed_s"] >= 60 * tc.max_minutes:
        print(f"time budget of {tc.max_minutes} minutes reached at step {step}", flush=True)
        stopped_early = True
        if step % tc.eval_every and step != total_steps:  # the run's last figure
          validate(step)
      halt = bool(tc.halt_after_steps and step - log.start_step >= tc.halt_after_steps)
      if step % tc.checkpoint_every == 0 or step == total_steps or stopped_early or halt:
        save(step)
      if halt:
        break
  except progress.NonFiniteLoss as e:
    ckpts.wait()
    last = ckpts.latest_step()
    raise UserError(f"{e}; stopped without saving it; last good checkpoint: "
                    f"{'step ' + str(last) if last is not None else 'none'} in {workdir}") from None
  finally:
    ckpts.wait()
  log.write_timings(step)
  if step < total_steps and not stopped_early:
    ckpts.close()
    print(f"halted at step {step} (train.halt_after_steps); run again to continue", flush=True)
    return {}

  # Test with the best parameters (by validation loss).
  ckpts.close()
  scorer = neural.NeuralScorer.load(workdir)
  test = split_perplexity(scorer, config.data, "test")
  val = scorer.perplexity(val_seqs)
  results = {
      "model": name, "params": n_params, "nucleotides_seen": log.nucleotides_seen,
      "steps": step, "stopped_early": stopped_early,
      "val_perplexity": val["perplexity"], "val_bits_per_nucleotide": val["bits_per_nucleotide"],
      "test_perplexity": test["perplexity"], "test_bits_per_nucleotide": test["bits_per_nucleotide"],
      "oracle_test_perplexity": storage.oracle_perplexity(config.data, "test"),
      "train_seconds": meta["elapsed_s"] + log.elapsed(), "nucleotides_per_s": log.mean_rate(),
      "timings_s": log.timings,
  }
  if writer:
    with open(os.path.join(workdir, "results.json"), "w") as f:
      json.dump(results, f, indent=2)
  progress.print_results(results)
  return results
