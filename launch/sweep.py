r"""Runs a declared sweep: one training run per entry of a sweep file's list of overrides.

A sweep file (launch/sweeps/*.py) defines `BASE` (a config file path) and
`SWEEP` (a list of {name: {dotted.field: value}}). Each entry trains in
WORKDIR/<name> through `trainer.train_and_evaluate`, so an interrupted sweep
resumes where it stopped (finished runs are skipped), and at the end
WORKDIR/sweep_results.md tabulates every run's results.json.

  python launch/sweep.py --sweep=launch/sweeps/lstm_width.py --workdir=/tmp/dnagen/width

On a cluster, give each job one entry with --only=NAME.
"""

import importlib.util
import json
import os
import sys

from absl import app
from absl import flags
from absl import logging

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from dnagen_jax.training import trainer  # pylint: disable=g-import-not-at-top,wrong-import-position
from dnagen_jax.errors import UserError  # pylint: disable=g-import-not-at-top,wrong-import-position
from dnagen_jax.study import spec  # pylint: disable=g-import-not-at-top,wrong-import-position

flags.DEFINE_string("sweep", None, "Sweep file (launch/sweeps/*.py).", required=True)
flags.DEFINE_string("workdir", None, "Parent directory of the runs.", required=True)
flags.DEFINE_string("only", None, "Run only this entry (one cluster job per entry).")
FLAGS = flags.FLAGS


def _load(path):
  spec = importlib.util.spec_from_file_location("sweep_module", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def apply_overrides(config, overrides: dict):
  """Sets dotted fields; an unknown field is a UserError, as on the command line.

  The study mode's override mechanism (dnagen_jax/study/spec.py), which
  supersedes this launcher: --mode=study also trains nested data sizes,
  tokenizations and seeds, and fits and plots the results.
  """
  for dotted, value in overrides.items():
    spec.apply_overrides(config, {dotted: value}, f"sweep override {dotted}")
  return config


def main(_):
  logging.set_verbosity(logging.WARNING)
  sweep = _load(FLAGS.sweep)
  base_path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), sweep.BASE)
  rows = []
  try:
    for name, overrides in sweep.SWEEP.items():
      workdir = os.path.join(FLAGS.workdir, name)
      if FLAGS.only and name != FLAGS.only:
        continue
      results_path = os.path.join(workdir, "results.json")
      if not os.path.exists(results_path):
        print(f"== {name}: {overrides}", flush=True)
        config = apply_overrides(_load(base_path).get_config(), overrides)
        trainer.train_and_evaluate(config, workdir)
      if os.path.exists(results_path):
        rows.append((name, json.load(open(results_path))))
  except UserError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  lines = ["| run | params | nucleotides seen | val ppl | test ppl | test bits/nt |",
           "|---|---|---|---|---|---|"]
  for name, r in rows:
    lines.append(f"| {name} | {r['params']:,} | {r['nucleotides_seen']:,} | {r['val_perplexity']:.4f} | "
                 f"{r['test_perplexity']:.4f} | {r['test_bits_per_nucleotide']:.4f} |")
  out = os.path.join(FLAGS.workdir, "sweep_results.md")
  with open(out, "w") as f:
    f.write("\n".join(lines) + "\n")
  print("\n".join(lines) + f"\n-> {out}")


if __name__ == "__main__":
  app.run(main)
