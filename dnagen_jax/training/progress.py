"""Progress lines on stdout and metrics.jsonl in the workdir.

Train metrics stay on the device between log points (no per-step host sync);
at each log point one line shows step, loss, perplexity, nucleotides/s and
time left, and one JSON line is appended to metrics.jsonl. Time outside the
compiled steps is accounted by kind (`timed`): compilation (the first step of
each new batch shape), host work (next batch, transfer), validation and
checkpoints. The progress line's nucleotides/s leaves compilation, validation
and checkpoints out; `timings` keeps every kind for the end-to-end figures.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import math
import os
import time

import jax

from dnagen_jax.scoring import safe_exp


class NonFiniteLoss(Exception):
  """The training loss became NaN or infinite."""


def _hms(seconds: float) -> str:
  return str(datetime.timedelta(seconds=int(max(seconds, 0))))


class Logger:
  """Accumulates train metrics between log points and writes them out."""

  # Kinds of time kept out of the progress line's nucleotides/s.
  PAUSES = ("compile", "validation", "checkpoint")

  def __init__(self, workdir: str, total_steps: int, start_step: int, nucleotides_seen: int):
    self.path = os.path.join(workdir, "metrics.jsonl")
    self.writer = jax.process_index() == 0  # several processes: process 0 alone writes metrics
    self.total_steps, self.start_step = total_steps, start_step
    self.nucleotides_seen = nucleotides_seen
    self.tokens_seen = 0  # this session's padded tokens (real + padding)
    self._t0 = time.time()
    self._steady_time, self._steady_nt = 0.0, 0
    self.timings = {"compile": 0.0, "host": 0.0, "validation": 0.0, "checkpoint": 0.0}
    self._reset(start_step)
    if self.writer:
      _drop_partial_line(self.path)

  def _reset(self, step: int) -> None:
    self._nll = 0.0
    self._count = 0
    self._since, self._since_step, self._paused = time.time(), step, 0.0

  @contextlib.contextmanager
  def timed(self, kind: str):
    """Adds the wall time of the `with` block to timings[kind]."""
    t0 = time.time()
    try:
      yield
    finally:
      dt = time.time() - t0
      self.timings[kind] += dt
      if kind in self.PAUSES:
        self._paused += dt

  def train_step(self, step: int, metrics: dict, nucleotides: int, tokens: int = 0) -> None:
    """Adds one step's metrics; `nucleotides` real targets out of `tokens` padded ones."""
    self._nll = self._nll + metrics["nll"]  # stays on device: no sync per step
    self._count += nucleotides
    self.nucleotides_seen += nucleotides
    self.tokens_seen += tokens

  def check_finite(self, step: int) -> None:
    """Raises NonFiniteLoss if any step since the last log point gave NaN/inf."""
    nll = float(self._nll)
    if not math.isfinite(nll):
      raise NonFiniteLoss(f"the training loss became {nll} at or before step {step}")

  def flush_train(self, step: int) -> None:
    self.check_finite(step)
    elapsed = time.time() - self._since - self._paused
    if self._count == 0 or step == self._since_step or elapsed <= 0:
      return
    loss = float(self._nll) / self._count
    rate = self._count / max(elapsed, 1e-9)
    self._steady_time += elapsed
    self._steady_nt += self._count
    sec_per_step = elapsed / (step - self._since_step)
    left = (self.total_steps - step) * sec_per_step
    print(f"step {step}/{self.total_steps} | loss {loss:.4f} | ppl {safe_exp(loss):.4f} | "
          f"{rate:,.0f} nt/s | {self.nucleotides_seen:,} nt seen | {_hms(self.elapsed())} "
          f"elapsed, {_hms(left)} left", flush=True)
    self._write({"step": step, "split": "train", "loss": loss, "perplexity": safe_exp(loss),
                 "bits_per_nucleotide": loss / math.log(2), "nucleotides_seen": self.nucleotides_seen,
                 "nucleotides_per_s": rate, "time_s": self.elapsed(),
                 "tokens_seen": self.tokens_seen, **self._timing_fields()})
    self._reset(step)

  def _timing_fields(self) -> dict:
    return {f"{k}_s": v for k, v in self.timings.items()}

  def write_timings(self, step: int) -> None:
    """One metrics.jsonl line with this session's time by kind, at the end of a session."""
    self._write({"step": step, "split": "timings", "time_s": self.elapsed(),
                 "nucleotides_seen": self.nucleotides_seen, "tokens_seen": self.tokens_seen,
                 **self._timing_fields()})

  def validation(self, step: int, result: dict) -> None:
    print(f"step {step}/{self.total_steps} | validation perplexity {result['perplexity']:.4f} | "
          f"{result['bits_per_nucleotide']:.4f} bits/nt", flush=True)
    self._write({"step": step, "split": "validation", "loss": result["bits_per_nucleotide"] * math.log(2),
                 "perplexity": result["perplexity"],
                 "bits_per_nucleotide": result["bits_per_nucleotide"],
                 "nucleotides_seen": self.nucleotides_seen, "time_s": self.elapsed()})

  def elapsed(self) -> float:
    return time.time() - self._t0

  def mean_rate(self) -> float:
    """Steady-state training nucleotides/s (compilation and validation excluded)."""
    return self._steady_nt / self._steady_time if self._steady_time else 0.0

  def _write(self, record: dict) -> None:
    """Appends one line, or nothing: a write that fails (a full disk) is cut back off."""
    if not self.writer:
      return
    data = (json.dumps(record) + "\n").encode()
    with open(self.path, "ab", buffering=0) as f:  # unbuffered: nothing left to flush at close
      start = f.tell()
      try:
        done = 0
        while done < len(data):
          done += f.write(data[done:])
      except OSError:
        f.truncate(start)
        raise


def _drop_partial_line(path: str) -> None:
  """Cuts off an unfinished last line (a run killed while writing it), so every line parses."""
  try:
    with open(path, "rb+") as f:
      size = f.seek(0, os.SEEK_END)
      if size == 0:
        return
      f.seek(max(0, size - 65536))
      tail = f.read()
      if tail.endswith(b"\n"):
        return
      cut = tail.rfind(b"\n")
      f.truncate(size - len(tail) + cut + 1 if cut >= 0 else max(0, size - len(tail)))
  except FileNotFoundError:
    pass


def print_results(results: dict) -> None:
  """A short results table at the end of a run."""
  rows = [("model", results["model"]), ("parameters", f"{results['params']:,}"),
          ("nucleotides seen", f"{results['nucleotides_seen']:,}"),
          ("validation perplexity", f"{results['val_perplexity']:.4f}"),
          ("test perplexity", f"{results['test_perplexity']:.4f}"),
          ("test bits/nt", f"{results['test_bits_per_nucleotide']:.4f}")]
  if results.get("oracle_test_perplexity"):
    oracle = results["oracle_test_perplexity"]
    rows.append(("oracle test perplexity", f"{oracle:.4f} (model is "
                 f"{100 * (results['test_perplexity'] / oracle - 1):+.2f}%)"))
  width = max(len(k) for k, _ in rows)
  print("\n" + "\n".join(f"  {k:<{width}}  {v}" for k, v in rows) + "\n", flush=True)
