"""Progress lines on stdout and metrics.jsonl in the workdir.

Train metrics stay on the device between log points (no per-step host sync);
at each log point one line shows step, loss, perplexity, nucleotides/s and
time left, and one JSON line is appended to metrics.jsonl. The first step's
time (compilation) is reported apart so that it never skews nucleotides/s.
"""

from __future__ import annotations

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

  def __init__(self, workdir: str, total_steps: int, start_step: int, nucleotides_seen: int):
    self.path = os.path.join(workdir, "metrics.jsonl")
    self.total_steps, self.start_step = total_steps, start_step
    self.nucleotides_seen = nucleotides_seen
    self._t0 = time.time()
    self._steady_time, self._steady_nt = 0.0, 0
    self._reset(start_step)
    self.compile_s = None

  def _reset(self, step: int) -> None:
    self._nll = 0.0
    self._count = 0
    self._since, self._since_step = time.time(), step
    self._checked_nll = None

  def train_step(self, step: int, metrics: dict, nucleotides: int) -> None:
    self._nll = self._nll + metrics["nll"]  # stays on device: no sync per step
    self._count += nucleotides
    self.nucleotides_seen += nucleotides
    if self.compile_s is None:
      jax.block_until_ready(metrics["nll"])
      self.compile_s = time.time() - self._since
      print(f"first step (compilation included) took {self.compile_s:.1f}s", flush=True)
      self._nll, self._count = float(self._nll), 0
      self._since, self._since_step = time.time(), step
      self._nll = 0.0

  def check_finite(self, step: int) -> None:
    """Raises NonFiniteLoss if any step since the last log point gave NaN/inf."""
    nll = float(self._nll)
    if not math.isfinite(nll):
      raise NonFiniteLoss(f"the training loss became {nll} at or before step {step}")

  def flush_train(self, step: int) -> None:
    self.check_finite(step)
    elapsed = time.time() - self._since
    if self._count == 0 or step == self._since_step:
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
                 "nucleotides_per_s": rate, "time_s": self.elapsed()})
    self._reset(step)

  def validation(self, step: int, result: dict) -> None:
    print(f"step {step}/{self.total_steps} | validation perplexity {result['perplexity']:.4f} | "
          f"{result['bits_per_nucleotide']:.4f} bits/nt", flush=True)
    self._write({"step": step, "split": "validation", "loss": result["bits_per_nucleotide"] * math.log(2),
                 "perplexity": result["perplexity"],
                 "bits_per_nucleotide": result["bits_per_nucleotide"],
                 "nucleotides_seen": self.nucleotides_seen, "time_s": self.elapsed()})
    self._since = time.time()  # keep validation time out of nt/s

  def elapsed(self) -> float:
    return time.time() - self._t0

  def mean_rate(self) -> float:
    """Steady-state training nucleotides/s (compilation and validation excluded)."""
    return self._steady_nt / self._steady_time if self._steady_time else 0.0

  def _write(self, record: dict) -> None:
    with open(self.path, "a") as f:
      f.write(json.dumps(record) + "\n")


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
