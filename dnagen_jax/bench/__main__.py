r"""python -m dnagen_jax.bench: the step benchmark (`step_speed`), with --loop the loop benchmark
(`loop_speed`), with --score real-gene scoring alone (`score_speed`).

  python -m dnagen_jax.bench --config=configs/paper_lstm.py
  python -m dnagen_jax.bench --loop --minutes=8 --config=configs/paper_lstm.py --workdir=/tmp/loop \
      --config.data.source=files --config.data.files=../shared/data/human_genes/genes.csv
  python -m dnagen_jax.bench --score --config=configs/paper_lstm.py \
      --config.data.source=files --config.data.files=../shared/data/human_genes/genes.csv
"""

import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from dnagen_jax.bench import loop_speed
from dnagen_jax.bench import score_speed
from dnagen_jax.bench import step_speed
from dnagen_jax.runtime import compile_cache
from dnagen_jax.errors import UserError


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)  # Orbax logs every save at INFO
  f = flags.FLAGS
  if f.loop:  # the step benchmark reports compile time: it stays cold
    compile_cache.enable()
  try:
    if f.loop and f.score:
      raise UserError("--loop and --score are two benchmarks: give one")
    if f.score:
      score_speed.run(f.config, f.workdir, repeats=f.rounds, with_torch=f.torch)
    elif f.loop:
      loop_speed.run(f.config, f.workdir, minutes=f.minutes, epochs=f.epochs, with_torch=f.torch,
                     evals_per_epoch=f.evals_per_epoch, reuse_jax=f.reuse_jax)
    else:
      step_speed.run(f.config, f.workdir, steps=f.steps, with_torch=f.torch,
                     batch_size=f.batch_size, seq_len=f.seq_len, warmup=f.warmup,
                     pipeline=f.pipeline, memory_gib=tuple(float(g) for g in f.memory_gib))
  except UserError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
  config_flags.DEFINE_config_file("config", None, "Config file (configs/*.py).", lock_config=True)
  flags.DEFINE_string("workdir", None, "Where to write bench.json (optional).")
  flags.DEFINE_integer("batch_size", 0, "Genes per step (0 = the config's train.batch_size).")
  flags.DEFINE_integer("seq_len", 1024, "Tokens per gene.")
  flags.DEFINE_integer("steps", 10, "Timed steps after warm-up (median reported).")
  flags.DEFINE_integer("warmup", 2, "Untimed steps first.")
  flags.DEFINE_bool("torch", True, "Also time the PyTorch twin (if torch is installed).")
  flags.DEFINE_bool("pipeline", True, "Also time the input pipeline.")
  flags.DEFINE_list("memory_gib", [], "Device sizes (GiB) for the longest-sequence estimate.")
  flags.DEFINE_bool("loop", False, "Time the whole training loop on real genes against a PyTorch loop.")
  flags.DEFINE_float("minutes", 0.0, "loop: wall-time budget of each library's training.")
  flags.DEFINE_integer("epochs", 0, "loop: epochs of each library's training (0 = --minutes decides).")
  flags.DEFINE_bool("score", False, "Time scoring the config's validation + test genes against a "
                    "PyTorch forward loop.")
  flags.DEFINE_integer("rounds", 3, "score: timed rounds over the genes (median reported).")
  flags.DEFINE_bool("reuse_jax", False, "loop: read the finished dnagen_jax side in WORKDIR/jax "
                    "(same settings) and train only PyTorch.")
  flags.DEFINE_integer("evals_per_epoch", 2, "loop: validations per epoch (both libraries, same steps).")
  flags.mark_flag_as_required("config")
  app.run(main)
