r"""Variants per second and peak memory of a neural family at given windows, with fresh parameters.

  python -m dnagen_jax.variants.speed --config=configs/real_genes_gru.py \
    --variants=demo16.vcf.gz --reference=ref.fa.gz --windows=1024,8192 [--config.model.max_len=8192]

Scoring time does not depend on the parameters' values, so no training is
needed to learn which window a model affords: each window runs in a fresh
process (so each peak memory is its own) that builds the config's model,
compiles its one scoring shape, scores the variants once to warm up on a
few of them, then times the whole set. Prints one line per window; writes
nothing. Trained workdirs are timed by --mode=variants itself (it prints
variants/s and peak memory too).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time

from absl import app
from absl import flags
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "A neural config (configs/*.py).")
_VARIANTS = flags.DEFINE_string("variants", None, "VCF or TSV of variants.")
_REFERENCE = flags.DEFINE_string("reference", None, "Reference FASTA.")
_WINDOWS = flags.DEFINE_list("windows", ["1024", "8192"], "Windows to time.")
_STRANDS = flags.DEFINE_string("strands", "both", "forward, reverse or both.")
_ONE = flags.DEFINE_integer("one_window", 0, "Internal: time this window in this process.")


def measure(config, variants: str, reference: str, window: int, strands: str) -> dict:
  """Seconds, variants/s and peak memory of scoring `variants` at `window` (this process)."""
  import jax  # pylint: disable=g-import-not-at-top
  from flax import nnx  # pylint: disable=g-import-not-at-top
  from dnagen_jax import models  # pylint: disable=g-import-not-at-top
  from dnagen_jax.runtime import mesh_utils  # pylint: disable=g-import-not-at-top
  from dnagen_jax.scoring.neural import NeuralScorer  # pylint: disable=g-import-not-at-top
  from dnagen_jax.variants import inputs, run, score  # pylint: disable=g-import-not-at-top
  from dnagen_jax.variants.reference import Reference  # pylint: disable=g-import-not-at-top
  mesh = mesh_utils.make_mesh()
  graphdef, params = nnx.split(models.create_model(config.model, config.train.seed))
  scorer = NeuralScorer(config, graphdef, jax.device_put(params, mesh_utils.replicated(mesh)), mesh)
  score.check_window(scorer, window, "--config")
  table = inputs.read_variants(variants)
  ref = Reference(reference, os.path.join("/tmp", "dnagen_reference_cache"))
  wins, _, _ = run.build_windows(table, ref, window, skip_mismatches=True)
  devnull = open(os.devnull, "w")
  t0 = time.time()
  longest = sorted(wins, key=lambda w: -max(len(w.ref), len(w.alt)))[:2]
  score.score_windows(scorer, longest, strands, out=devnull)  # compiles the one shape
  compile_s = time.time() - t0
  s = score.score_windows(scorer, wins, strands, out=devnull)
  return {"window": window, "variants": len(wins), "seconds": float(s["seconds"]),
          "cpu_seconds": float(s["cpu_seconds"]), "compile_seconds": compile_s,
          "variants_per_second": len(wins) / float(s["seconds"]),
          "peak_memory_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}


def main(argv):
  del argv
  config = _CONFIG.value
  if _ONE.value:
    print("RESULT " + json.dumps(measure(config, _VARIANTS.value, _REFERENCE.value, _ONE.value,
                                         _STRANDS.value)), flush=True)
    return
  name = f"{config.model.name} {config.model.num_layers}x{config.model.hidden_dim if config.model.name != 'transformer' else config.model.embed_dim}"
  for w in _WINDOWS.value:
    args = [sys.executable, "-m", "dnagen_jax.variants.speed", f"--one_window={w}"] + [
        a for a in sys.argv[1:] if not a.startswith("--windows")]
    proc = subprocess.run(args, capture_output=True, text=True)
    line = next((l for l in proc.stdout.splitlines() if l.startswith("RESULT ")), None)
    if line is None:
      err = (proc.stderr.strip().splitlines() or ["no output"])[-1]
      print(f"{name} window {w}: failed ({err})", flush=True)
      continue
    r = json.loads(line[len("RESULT "):])
    print(f"{name} window {w}: {r['variants']} variants in {r['seconds']:.1f} s = "
          f"{r['variants_per_second']:.2f} variants/s ({r['cpu_seconds']:.1f} CPU s; compile "
          f"{r['compile_seconds']:.1f} s); peak memory {r['peak_memory_gib']:.2f} GiB", flush=True)


if __name__ == "__main__":
  app.run(main)
