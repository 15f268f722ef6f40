"""What a trained workdir offers, whichever model family trained it.

`load_scorer` gives its model (best checkpoint) as a `scoring.Scorer`;
`evaluate_file` is --mode=eval, the perplexity of that model on any CSV or
FASTA file. This module sits above both implementations (`scoring.neural`,
`ngram.scorer`), which import only the interface, so the arrows point one way.
"""

from __future__ import annotations

import json
import os

from dnagen_jax import config_check
from dnagen_jax.data import sequence_io
from dnagen_jax.scoring import Scorer


def load_scorer(workdir: str) -> Scorer:
  """The trained model of `workdir` (its best checkpoint), as a Scorer."""
  cfg = config_check.read_workdir_config(workdir)
  if cfg["model"]["name"] == "ngram":
    from dnagen_jax.ngram import scorer as ngram_scorer  # pylint: disable=g-import-not-at-top
    return ngram_scorer.load(workdir)
  if cfg["model"]["name"] == "infinigram":
    from dnagen_jax.ngram import scorer as ngram_scorer  # pylint: disable=g-import-not-at-top
    return ngram_scorer.load_infinigram(workdir)
  if cfg["model"]["name"] == "mixture":
    from dnagen_jax.mixture import train as mixture_train  # pylint: disable=g-import-not-at-top
    return mixture_train.load(workdir, load_scorer)
  from dnagen_jax.scoring import neural  # pylint: disable=g-import-not-at-top
  return neural.NeuralScorer.load(workdir)


def evaluate_file(workdir: str, path: str, window: int = 0, stride: int = 0,
                  carry_state: bool = False) -> dict:
  """--mode=eval: perplexity and bits/nt of the workdir's model on one file, and per record.

  Records longer than the window are scored in strided windows (or, with
  carry_state, by an LSTM/GRU carrying its state from window to window); see
  scoring/strided.py. Writes eval_<name>.json (totals, settings, records) and
  eval_<name>_records.tsv (one line per record) into the workdir.
  """
  from dnagen_jax.scoring import strided  # pylint: disable=g-import-not-at-top
  scorer = load_scorer(workdir)
  plan = strided.resolve_plan(scorer, window, stride)
  config = config_check.read_workdir_config(workdir)
  carried = None
  if carry_state:
    from dnagen_jax.scoring import carry  # pylint: disable=g-import-not-at-top
    carried = carry.CarriedScorer(scorer, plan.window, segments=int(config["train"]["eval_batch_size"]),
                                  warmup=plan.window)
  how = "state carried across windows" if carried else f"stride {plan.stride}, context {plan.context}"
  print(f"{path}: records longer than {plan.window} nt are scored in windows of {plan.window} "
        f"({how})", flush=True)
  records = sequence_io.iter_records(path, config["data"]["unknown_policy"])  # one record in memory at a time
  progress = strided.Progress(None)
  scores = strided.score_records(scorer, records, plan, progress=progress, carried=carried)
  total = sum(r.length for r in scores)
  seconds = progress.seconds
  result = strided.totals(scores)
  result.update(file=os.path.abspath(path), genes=len(scores), model=scorer.name,
                records=len(scores), window=plan.window, stride=plan.stride, context=plan.context,
                carry_state=bool(carried), seconds=seconds,
                nucleotides_per_second=total / max(seconds, 1e-9),
                window_nucleotides=int(sum(r.window_nucleotides for r in scores)),
                per_record=[r.row() for r in scores])
  name = os.path.basename(path).split(".")[0]
  out = os.path.join(workdir, f"eval_{name}.json")
  with open(out, "w") as f:
    json.dump(result, f, indent=2)
  tsv = os.path.join(workdir, f"eval_{name}_records.tsv")
  strided.write_tsv(tsv, scores)
  print(f"{path}: {len(scores)} records, {result['nucleotides']} nt | perplexity "
        f"{result['perplexity']:.4f} | {result['bits_per_nucleotide']:.4f} bits/nt | {seconds:.1f} s, "
        f"{result['nucleotides_per_second']:,.0f} nt/s -> {out}, {tsv}")
  return result
