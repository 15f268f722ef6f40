"""TensorBoard event files per study point, without TensorFlow (tensorboardX).

`Mirror(workdir)` follows the point's metrics.jsonl while it trains (a
background thread, every `interval` seconds) and writes each new line's
numbers under <workdir>/tb/, so `tensorboard --logdir WORKDIR/points` shows a
study live; `write_results` adds the point's final losses.
"""

from __future__ import annotations

import json
import os
import threading

_SCALARS = ("loss", "bits_per_nucleotide", "perplexity", "nucleotides_per_s")


def _writer(workdir: str):
  from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
  return SummaryWriter(os.path.join(workdir, "tb"), flush_secs=5)


class Mirror:
  """Context manager: copies metrics.jsonl lines into TensorBoard events as they appear."""

  def __init__(self, workdir: str, interval: float = 2.0):
    self.path = os.path.join(workdir, "metrics.jsonl")
    self.workdir, self.interval = workdir, interval
    self._offset = os.path.getsize(self.path) if os.path.exists(self.path) else 0
    self._stop = threading.Event()
    self._thread = None
    self._tb = None

  def poll(self) -> int:
    """Writes the lines appended since the last poll; returns how many."""
    if not os.path.exists(self.path):
      return 0
    with open(self.path) as f:
      f.seek(self._offset)
      chunk = f.read()
    lines = chunk.split("\n")
    complete, rest = lines[:-1], lines[-1]  # a line still being written waits for the next poll
    self._offset += len(chunk.encode()) - len(rest.encode())
    for line in complete:
      if not line.strip():
        continue
      record = json.loads(line)
      split = record.get("split", "train")
      for key in _SCALARS:
        if isinstance(record.get(key), (int, float)):
          self._tb.add_scalar(f"{split}/{key}", record[key], record.get("step", 0))
    return len(complete)

  def _loop(self):
    while not self._stop.wait(self.interval):
      self.poll()

  def __enter__(self):
    self._tb = _writer(self.workdir)
    self._thread = threading.Thread(target=self._loop, daemon=True)
    self._thread.start()
    return self

  def __exit__(self, *exc):
    self._stop.set()
    self._thread.join()
    self.poll()
    self._tb.close()
    return False


def write_results(workdir: str, results: dict, record: dict) -> None:
  """The point's final validation and test bits/nt, at its training nucleotides."""
  tb = _writer(workdir)
  for key in ("val_bits_per_nucleotide", "test_bits_per_nucleotide"):
    if results.get(key) is not None:
      tb.add_scalar(f"final/{key}", results[key], record["train_nucleotides"])
  tb.close()
