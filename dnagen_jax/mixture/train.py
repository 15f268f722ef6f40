"""Fitting a mixture's weights on the validation split (`model.name='mixture'`).

  python -m dnagen_jax.main --config=configs/mixture.py --workdir=/tmp/mix \\
    --config.model.mixture_workdirs=/tmp/infinigram,/tmp/gru

`train_and_evaluate(config, workdir, load_scorer)` checks the components
(trained workdirs of the same data set as the config, each with a model),
scores the validation split with each, fits the weights by EM (model.py) and
writes into `workdir`:
  config.json   the resolved config;
  mixture.json  components (absolute workdirs), feature, bucket edges, weights [B, K];
  results.json  validation and test perplexity of the mixture and of each component,
                the weights, fit and scoring seconds.
`load_scorer` (workdir.load_scorer) is passed in, so this room imports no room above it.
"""

from __future__ import annotations

import json
import os
import time

import ml_collections
import numpy as np

from dnagen_jax import config_check
from dnagen_jax import scoring
from dnagen_jax.data import storage
from dnagen_jax.errors import UserError
from dnagen_jax.mixture import model as mix

FORMAT = "dnagen_jax.mixture"
FORMAT_VERSION = 1


def component_workdirs(config) -> list[str]:
  raw = config.model.mixture_workdirs
  dirs = [d.strip() for d in (raw.split(",") if isinstance(raw, str) else raw) if d.strip()]
  if len(dirs) < 2:
    raise UserError(f"config.model.mixture_workdirs={raw!r}: a mixture needs at least two "
                    f"trained workdirs, comma-separated")
  return [os.path.abspath(os.path.expanduser(d)) for d in dirs]


TOKEN_WORDS = ("token", "kmer")  # fields named so decide what one prediction is


def _data_key(data: dict, other: dict) -> dict:
  """The data fields that decide the data set and its tokens (RESUME_FIELDS, plus *token* / *kmer*
  fields of either config)."""
  keys = set(config_check.RESUME_FIELDS["data"]) | {
      k for k in list(data) + list(other) if any(w in k for w in TOKEN_WORDS)}
  return {k: config_check._norm(data.get(k)) for k in sorted(keys)}  # pylint: disable=protected-access


def check_components(config, dirs: list[str], workdir: str) -> list[dict]:
  """Each component's config.json; one-line UserErrors for what cannot be mixed."""
  own_data = json.loads(config.data.to_json_best_effort())
  cfgs = []
  for d in dirs:
    if os.path.abspath(d) == os.path.abspath(workdir):
      raise UserError(f"mixture component {d} is the mixture's own workdir")
    if not os.path.isdir(d):
      raise UserError(f"mixture component {d}: no such workdir")
    try:
      cfg = config_check.read_workdir_config(d)
    except UserError as e:
      raise UserError(f"mixture component {e}") from None
    own, theirs = _data_key(own_data, cfg["data"]), _data_key(cfg["data"], own_data)
    diffs = [f"data.{k}: {own[k]!r} (mixture) vs {theirs[k]!r}" for k in own if own[k] != theirs.get(k)]
    if diffs:
      raise UserError(f"mixture component {d} was trained on a different data set or tokenization "
                      f"({'; '.join(diffs[:3])}); mix models of one data set, with the same data flags")
    cfgs.append(cfg)
  tok = [{k: v for k, v in c["model"].items() if any(w in k for w in TOKEN_WORDS)} for c in cfgs]
  for d, t in zip(dirs[1:], tok[1:]):
    if t != tok[0]:
      raise UserError(f"mixture component {d} was trained on a different tokenization "
                      f"(model {t} vs {tok[0]} in {dirs[0]}); mix models of one tokenization")
  return cfgs


def _load(d: str, load_scorer):
  try:
    return load_scorer(d)
  except UserError as e:
    raise UserError(f"mixture component {d} has no model to load: {e}") from None


def _feature_model(feature: str, components: list, cfgs: list[dict]):
  if not feature:
    return None
  for c, cfg in zip(components, cfgs):
    if cfg["model"]["name"] == "infinigram":
      return c.model
  raise UserError("mixture_feature='longest_match' needs an infinigram among "
                  "config.model.mixture_workdirs (it reads the longest match from it)")


def build(config, workdir: str, load_scorer, weights=None):
  """(MixtureScorer with uniform or given weights, component dirs, component configs)."""
  dirs = component_workdirs(config)
  feature = str(config.model.mixture_feature)
  if feature not in mix.FEATURES:
    raise UserError(f"config.model.mixture_feature={feature!r} must be '' or 'longest_match'")
  edges = mix.parse_edges(config.model.mixture_buckets) if feature else np.zeros(0, np.int64)
  cfgs = check_components(config, dirs, workdir)
  components = [_load(d, load_scorer) for d in dirs]
  labels = [f"{c.name} ({os.path.basename(d)})" for c, d in zip(components, dirs)]
  if weights is None:
    weights = np.full((edges.size + 1, len(dirs)), 1.0 / len(dirs))
  return mix.MixtureScorer(components, weights, edges, feature,
                           _feature_model(feature, components, cfgs), labels), dirs, cfgs


def train_and_evaluate(config, workdir: str, load_scorer) -> dict:
  """Fits the mixture's weights on validation, saves it, scores test; returns results.json's dict."""
  config_check.validate(config)
  scorer, dirs, _ = build(config, workdir, load_scorer)  # every check before anything is written
  val_seqs = [r.sequence for r in storage.load_records(config.data, "validation")]
  if not val_seqs:
    raise UserError("the mixture fits its weights on the validation split, but this data set "
                    f"has none (data.val_fraction={config.data.get('val_fraction')}); "
                    f"give it a validation split")
  os.makedirs(workdir, exist_ok=True)
  config_check.write_or_check_workdir_config(config, workdir)
  t0 = time.perf_counter()
  lp_val = scorer.component_log_probs(val_seqs)
  b_val = scorer.buckets(val_seqs)
  score_seconds = time.perf_counter() - t0
  t0 = time.perf_counter()
  weights, iters = mix.fit_weights(lp_val, b_val, scorer.weights.shape[0])
  fit_seconds = time.perf_counter() - t0
  scorer.weights = weights
  with open(os.path.join(workdir, "mixture.json"), "w") as f:
    json.dump({"format": FORMAT, "version": FORMAT_VERSION, "components": dirs,
               "feature": scorer.feature, "edges": scorer.edges.tolist(),
               "weights": weights.tolist(), "em_iterations": iters}, f, indent=1)
  test_seqs = [r.sequence for r in storage.load_records(config.data, "test")]
  lp_test = scorer.component_log_probs(test_seqs)
  b_test = scorer.buckets(test_seqs)

  def ppl(lp, b, w):
    with np.errstate(divide="ignore"):
      mixed = np.log((np.exp(lp) * w[b]).sum(1))
    return scoring.perplexity_from_totals(float(mixed.sum()), mixed.size)

  val, test = ppl(lp_val, b_val, weights), ppl(lp_test, b_test, weights)
  comps = [{"workdir": d, "model": scorer.labels[k],
            "val_perplexity": scoring.perplexity_from_totals(float(lp_val[:, k].sum()), lp_val.shape[0])["perplexity"],
            "test_perplexity": scoring.perplexity_from_totals(float(lp_test[:, k].sum()), lp_test.shape[0])["perplexity"]}
           for k, d in enumerate(dirs)]
  bucket_sizes = np.bincount(b_val, minlength=weights.shape[0]).tolist()
  results = {
      "model": scorer.name, "components": comps, "feature": scorer.feature,
      "edges": scorer.edges.tolist(), "weights": weights.tolist(),
      "validation_positions_per_bucket": bucket_sizes, "em_iterations": iters,
      "val_perplexity": val["perplexity"], "val_bits_per_nucleotide": val["bits_per_nucleotide"],
      "test_perplexity": test["perplexity"], "test_bits_per_nucleotide": test["bits_per_nucleotide"],
      "test_nucleotides": test["nucleotides"],
      "oracle_test_perplexity": storage.oracle_perplexity(config.data, "test"),
      "fit_seconds": fit_seconds, "validation_scoring_seconds": score_seconds,
  }
  with open(os.path.join(workdir, "results.json"), "w") as f:
    json.dump(results, f, indent=2)
  for c in comps:
    print(f"component {c['model']}: val {c['val_perplexity']:.4f} test {c['test_perplexity']:.4f}")
  print(f"mixture: val {val['perplexity']:.4f} test {test['perplexity']:.4f} "
        f"({weights.shape[0]} bucket(s), EM {iters} iterations in {fit_seconds:.2f} s)", flush=True)
  return results


def load(workdir: str, load_scorer) -> mix.MixtureScorer:
  """The mixture saved in `workdir`, its components loaded with `load_scorer`."""
  path = os.path.join(workdir, "mixture.json")
  if not os.path.exists(path):
    raise UserError(f"{workdir}: no fitted mixture (mixture.json missing); train it with --mode=train")
  with open(path) as f:
    h = json.load(f)
  if h.get("format") != FORMAT or h.get("version") != FORMAT_VERSION:
    raise UserError(f"{path}: not a mixture of format {FORMAT} version {FORMAT_VERSION}")
  config = ml_collections.ConfigDict(config_check.read_workdir_config(workdir))
  config.model.mixture_workdirs = ",".join(h["components"])
  scorer, _, _ = build(config, workdir, load_scorer, np.asarray(h["weights"]))
  return scorer
