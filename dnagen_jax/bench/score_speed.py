r"""Scoring real genes, forward only: the project's `NeuralScorer` against a PyTorch forward loop.

  python -m dnagen_jax.bench --score --config=configs/paper_lstm.py \
      --config.data.source=files --config.data.files=../shared/data/human_genes/genes.csv \
      --config.model.hidden_dim=256 --config.model.num_layers=3 --config.model.position_embedding=False

Both score the validation and test genes of the config's data with freshly
initialised weights of the same model (speed does not depend on their values),
in length-sorted batches of `train.eval_batch_size`, as `--mode=eval/detect`
and a hand-written loop do: the project padding each batch to one of its
fitted bucket lengths, PyTorch trimming each batch to its longest gene
(`torch_loop.score_batches`). The project's programs are compiled first
(reported, not timed); then one untimed round of each and `repeats` timed
rounds, the two alternating so that load from elsewhere falls on both alike.
Reported: the median nucleotides/s of each and their ratio (WORKDIR/score.json).
A second trainer-free way to see the scoring column of the loop benchmark.
"""

from __future__ import annotations

import json
import os
import time

from dnagen_jax.data import storage
from dnagen_jax.errors import UserError


def run(config, workdir: str | None = None, repeats: int = 3, with_torch: bool = True) -> dict:
  """Times both scorers on the config's validation + test genes; prints the table; returns score.json's dict."""
  from flax import nnx  # pylint: disable=g-import-not-at-top
  from dnagen_jax import models  # pylint: disable=g-import-not-at-top
  from dnagen_jax.bench import step_speed  # pylint: disable=g-import-not-at-top
  from dnagen_jax.runtime import mesh_utils  # pylint: disable=g-import-not-at-top
  from dnagen_jax.scoring import neural  # pylint: disable=g-import-not-at-top
  if config.model.name not in ("lstm", "gru", "transformer"):
    raise UserError(f"bench --score times the neural scorers, not model.name={config.model.name!r}")
  if int(config.data.get("kmer", 1)) != 1:
    raise UserError("bench --score compares nucleotide tokens (the PyTorch twins have no k-mer vocabulary)")
  seqs = [r.sequence for split in ("validation", "test")
          for r in storage.load_records(config.data, split)]
  if not seqs:
    raise UserError(f"bench --score: no validation or test genes in {config.data.files or config.data.source}")
  nucleotides = sum(map(len, seqs))
  batch = config.train.eval_batch_size
  mesh = mesh_utils.make_mesh()
  model = models.create_model(config.model, config.train.seed)
  n_params = models.param_count(model)
  graphdef, params = nnx.split(model)
  scorer = neural.NeuralScorer(config, graphdef, params, mesh)
  t0 = time.perf_counter()
  scorer.precompile(seqs, threads=os.cpu_count() or 1)
  compile_s = time.perf_counter() - t0
  sides = {"dnagen_jax": lambda: scorer.token_log_probs(seqs)}
  if with_torch and step_speed.torch_available():
    from dnagen_jax.bench import torch_loop  # pylint: disable=g-import-not-at-top
    from dnagen_jax.bench import torch_twins  # pylint: disable=g-import-not-at-top
    from dnagen_jax.data import tokens  # pylint: disable=g-import-not-at-top
    twin = torch_twins.create_model(config.model, config.train.seed)
    genes = [tokens.encode(s) for s in seqs]
    cut = config.data.length_buckets[-1]
    sides["PyTorch"] = lambda: torch_loop.score_batches(twin, genes, batch, cut)
  elif with_torch:
    print("torch is not installed (pip install -e .[bench]): dnagen_jax only", flush=True)
  print(f"scoring {len(seqs):,} genes ({nucleotides:,} nt) in batches of {batch}: "
        f"{config.model.name}, {n_params:,} parameters | compiled in {compile_s:.1f} s", flush=True)

  times = {name: [] for name in sides}
  for i in range(1 + repeats):  # round 0 is a warm-up
    for name, score in sides.items():
      t0 = time.perf_counter()
      score()
      if i:
        times[name].append(time.perf_counter() - t0)
  rates = {name: step_speed._median_rate(ts, nucleotides) for name, ts in times.items()}  # pylint: disable=protected-access
  result = {"model": config.model.to_dict(), "genes": len(seqs), "nucleotides": nucleotides,
            "eval_batch_size": batch, "compile_s": compile_s, "seconds": times,
            "nt_per_s": rates}
  line = " | ".join(f"{name} {rate:,.0f} nt/s" for name, rate in rates.items())
  if len(rates) == 2:
    result["ratio"] = rates["dnagen_jax"] / rates["PyTorch"]
    line += f" | ratio {result['ratio']:.2f}x"
  print(f"median of {repeats} round(s): {line}", flush=True)
  if workdir:
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, "score.json"), "w") as f:
      json.dump(result, f, indent=2)
  return result
