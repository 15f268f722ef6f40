r"""Generation speed: cached sampling against the naive loop, per family, in one run.

  python -m dnagen_jax.generation.speed \
    --configs=configs/default.py,configs/gru.py,configs/transformer.py,configs/ngram.py \
    --num_samples=64 --max_length=512 --out=/tmp/gen_speed

For each config (or trained --workdirs), the same samples are generated twice
with the same seed: by the family's cached path (recurrent state / KV cache /
N-gram context, `Sampler.generate`) and by the loop users write by hand,
which recomputes the whole prefix for every token (cache=False). Neural
models from a config get fresh parameters (speed does not depend on their
values); an N-gram config is fitted on its training split. Compilation is
done before timing (the cached program once, every padded length of the
naive loop). Generated nucleotides per second exclude the prompt; both runs
must give the same tokens, which the table reports.
Writes speed.json and speed.md to --out.
"""

from __future__ import annotations

import json
import os
import time

from absl import app
from absl import flags

FLAGS = flags.FLAGS


def define_flags() -> None:
  """The command line's flags (defined only when run, so that importing this module defines none)."""
  flags.DEFINE_list("configs", ["configs/default.py", "configs/gru.py", "configs/transformer.py",
                                "configs/ngram.py"], "Config files; each gives one model (fresh parameters).")
  flags.DEFINE_list("workdirs", [], "Trained workdirs to time as well.")
  flags.DEFINE_integer("num_samples", 64, "Samples generated at once.")
  flags.DEFINE_integer("max_length", 512, "Nucleotides per sample.")
  flags.DEFINE_integer("seed", 0, "Seed of the samples (and of the fresh parameters).")
  flags.DEFINE_string("out", "/tmp/dnagen_gen_speed", "Folder for speed.json and speed.md.")


def _load_config(path: str):
  import importlib.util  # pylint: disable=g-import-not-at-top
  spec = importlib.util.spec_from_file_location("speed_config", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def sampler_from_config(config, seed: int):
  """A sampler of the config's model: fresh parameters, or an N-gram fitted on its training split."""
  from dnagen_jax import generation  # pylint: disable=g-import-not-at-top
  from dnagen_jax.data import storage  # pylint: disable=g-import-not-at-top
  if config.model.name == "ngram":
    from dnagen_jax.ngram.model import NGramModel  # pylint: disable=g-import-not-at-top
    from dnagen_jax.ngram.scorer import NGramScorer  # pylint: disable=g-import-not-at-top
    train = [r.sequence for r in storage.load_records(config.data, "train")]
    model = NGramModel.fit(train, config.model.ngram_order, config.model.ngram_smoothing,
                           config.model.ngram_k, config.data.unknown_policy == "n",
                           lower_discounts=config.model.ngram_kn_lower_discounts)
    return generation.from_scorer(NGramScorer(model))
  from flax import nnx  # pylint: disable=g-import-not-at-top
  from dnagen_jax import models  # pylint: disable=g-import-not-at-top
  from dnagen_jax.runtime import mesh_utils  # pylint: disable=g-import-not-at-top
  from dnagen_jax.scoring.neural import NeuralScorer  # pylint: disable=g-import-not-at-top
  graphdef, params = nnx.split(models.create_model(config.model, seed))
  return generation.from_scorer(NeuralScorer(config, graphdef, params, mesh_utils.make_mesh()))


def measure(sampler, num_samples: int, max_length: int, seed: int) -> dict:
  """Generated nt/s of the cached path and of the naive loop, compiled beforehand, on the same samples."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from dnagen_jax.generation.sampler import Controls  # pylint: disable=g-import-not-at-top
  controls = Controls(seed=seed)
  sampler.batch_size = max(sampler.batch_size, num_samples)
  sampler.generate("", num_samples, max_length, controls)           # compiles the cached program
  if hasattr(sampler, "warm_up_naive"):
    sampler.warm_up_naive(num_samples, max_length, controls)        # every padded length
  times, toks = {}, {}
  for cache in (True, False):
    start = time.perf_counter()
    toks[cache] = sampler.generate("", num_samples, max_length, controls, cache=cache).tokens
    times[cache] = time.perf_counter() - start
  nt = num_samples * max_length
  return {"model": sampler.name, "samples": num_samples, "max_length": max_length,
          "cached_seconds": times[True], "naive_seconds": times[False],
          "cached_nt_per_s": nt / times[True], "naive_nt_per_s": nt / times[False],
          "speedup": times[False] / times[True],
          "same_tokens": bool(np.array_equal(toks[True], toks[False]))}


def markdown(rows: list[dict]) -> str:
  lines = ["| model | samples x length | cached nt/s | naive nt/s (full prefix each token) | speed-up | same samples |",
           "|---|---|---|---|---|---|"]
  for r in rows:
    lines.append(f"| {r['label']} | {r['samples']} x {r['max_length']} | {r['cached_nt_per_s']:,.0f} | "
                 f"{r['naive_nt_per_s']:,.0f} | **{r['speedup']:.1f}x** | {'yes' if r['same_tokens'] else 'no'} |")
  return "\n".join(lines) + "\n"


def main(argv):
  del argv
  from dnagen_jax import generation  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  rows = []
  todo = [(os.path.basename(c).removesuffix(".py"), lambda c=c: sampler_from_config(_load_config(c), FLAGS.seed))
          for c in FLAGS.configs]
  todo += [(w, lambda w=w: generation.load_sampler(w)) for w in FLAGS.workdirs]
  for label, make in todo:
    row = measure(make(), FLAGS.num_samples, FLAGS.max_length, FLAGS.seed)
    row["label"] = f"{label} ({row['model']})"
    rows.append(row)
    print(f"{row['label']}: cached {row['cached_nt_per_s']:,.0f} nt/s, naive {row['naive_nt_per_s']:,.0f} "
          f"nt/s, {row['speedup']:.1f}x, same samples: {row['same_tokens']}", flush=True)
  os.makedirs(FLAGS.out, exist_ok=True)
  result = {"devices": [str(d) for d in jax.devices()], "rows": rows}
  with open(os.path.join(FLAGS.out, "speed.json"), "w") as f:
    json.dump(result, f, indent=1)
  table = markdown(rows)
  with open(os.path.join(FLAGS.out, "speed.md"), "w") as f:
    f.write(table)
  print(table)


if __name__ == "__main__":
  define_flags()
  app.run(main)
