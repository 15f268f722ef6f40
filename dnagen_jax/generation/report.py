"""--mode=sample_report: do the samples look like genes? Measured against real genes.

For a samples FASTA (from --mode=generate; only the generated part of each
record counts, after its prompt_length) and real reference genes (the
workdir's test split by default):
  * length distribution and GC content (per sequence);
  * k-mer spectra, k = 1..6: the Jensen-Shannon divergence (bits) between
    the samples' and the reference's, and, as the yardstick of what two real
    sets differ by, between the two halves of the reference (even / odd
    genes). Samples from a model of the source sit near the yardstick;
  * the longest open reading frame (ATG ... stop, this strand) and the codon
    usage within it (JS divergence against the reference, and halves);
  * memorisation: each sequence's longest exact match in the training split
    (suffix array), for the samples and, as a yardstick, the reference genes;
  * perplexity of the samples and of the reference under independent models:
    the --workdirs given, the true source on synthetic data, or else a
    Kneser-Ney 6-gram fitted on the training split.
Writes <stem>_report.md (table), <stem>_report.json (every number) and
<stem>_report.png (four panels) to --out (default: beside the samples).
"""

from __future__ import annotations

import json
import os
from typing import Sequence

import numpy as np

from dnagen_jax.errors import UserError
from dnagen_jax.generation import fasta
from dnagen_jax.generation import stats

KS = (1, 2, 3, 4, 5, 6)
MATCH_THRESHOLDS = (32, 100)   # nt: a sample copying a training gene over this many letters
JUDGE_ORDER = 6                # the fallback judge: Kneser-Ney of this order on the training split


def _summary(values: Sequence[float]) -> dict:
  v = np.asarray([x for x in values if np.isfinite(x)], np.float64)
  if not v.size:
    return {"n": 0}
  return {"n": int(v.size), "mean": float(v.mean()), "std": float(v.std()), "min": float(v.min()),
          "median": float(np.median(v)), "max": float(v.max())}


def _js_by_k(a: Sequence[str], b: Sequence[str]) -> list[float]:
  return [stats.js_divergence(stats.kmer_counts(a, k), stats.kmer_counts(b, k)) for k in KS]


def _orf_part(seqs: Sequence[str]) -> tuple[dict, np.ndarray]:
  orfs = [stats.longest_orf(s) for s in seqs]
  frames = [s[st:st + n] for s, (st, n) in zip(seqs, orfs) if n]
  return _summary([n for _, n in orfs]), stats.codon_counts(frames)


def _matches(seqs, train) -> dict:
  m = stats.longest_matches(seqs, train)
  out = _summary(m)
  out.update({f"fraction_at_least_{t}": float(np.mean(m >= t)) for t in MATCH_THRESHOLDS})
  return out


def compare(samples: Sequence[str], reference: Sequence[str], train: Sequence[str] | None,
            judges: dict) -> dict:
  """Every statistic of the module docstring; judges: {name: Scorer}. JSON-ready dict."""
  samples = [s for s in samples if s]
  if not samples:
    raise UserError("the samples hold no generated nucleotides")
  if len(reference) < 2:
    raise UserError(f"the reference holds {len(reference)} sequence(s); the report needs >= 2")
  halves = (reference[0::2], reference[1::2])
  orf_s, codon_s = _orf_part(samples)
  orf_r, codon_r = _orf_part(reference)
  codon_halves = [_orf_part(h)[1] for h in halves]
  out = {
      "sequences": {"samples": len(samples), "reference": len(reference),
                    "samples_nt": int(sum(map(len, samples))),
                    "reference_nt": int(sum(map(len, reference)))},
      "length": {"samples": _summary(list(map(len, samples))),
                 "reference": _summary(list(map(len, reference)))},
      "gc": {"samples": _summary([stats.gc_fraction(s) for s in samples]),
             "reference": _summary([stats.gc_fraction(s) for s in reference])},
      "kmer_js_bits": {"k": list(KS), "samples_vs_reference": _js_by_k(samples, reference),
                       "real_vs_real": _js_by_k(*halves)},
      "longest_orf_nt": {"samples": orf_s, "reference": orf_r},
      "codon_usage": {"js_bits_samples_vs_reference": stats.js_divergence(codon_s, codon_r),
                      "js_bits_real_vs_real": stats.js_divergence(*codon_halves),
                      "codons": stats.CODONS,
                      "samples": (codon_s / max(codon_s.sum(), 1)).tolist(),
                      "reference": (codon_r / max(codon_r.sum(), 1)).tolist()},
      "perplexity": {},
  }
  if train:
    out["longest_match_in_train_nt"] = {"samples": _matches(samples, train),
                                        "reference": _matches(reference, train)}
  for name, scorer in judges.items():
    out["perplexity"][name] = {"samples": scorer.perplexity(samples)["perplexity"],
                               "reference": scorer.perplexity(list(reference))["perplexity"]}
  return out


def _fmt(s: dict, digits: int = 1, scale: float = 1.0) -> str:
  if not s.get("n"):
    return "-"
  f = lambda x: f"{x * scale:.{digits}f}"
  return f"{f(s['mean'])} ± {f(s['std'])} (median {f(s['median'])}, {f(s['min'])}..{f(s['max'])})"


def markdown(r: dict) -> str:
  """The report's table."""
  rows = [("sequences (nt)", f"{r['sequences']['samples']} ({r['sequences']['samples_nt']:,})",
           f"{r['sequences']['reference']} ({r['sequences']['reference_nt']:,})", ""),
          ("length (nt)", _fmt(r["length"]["samples"], 0), _fmt(r["length"]["reference"], 0), ""),
          ("GC content (%)", _fmt(r["gc"]["samples"], 1, 100), _fmt(r["gc"]["reference"], 1, 100), "")]
  js = r["kmer_js_bits"]
  for k, a, b in zip(js["k"], js["samples_vs_reference"], js["real_vs_real"]):
    rows.append((f"{k}-mer JS divergence (bits)", f"{a:.3g} ({a / b:.2f}x the yardstick)"
                 if b > 0 else f"{a:.3g}", "", f"{b:.3g}"))
  rows.append(("longest ORF (nt)", _fmt(r["longest_orf_nt"]["samples"], 0),
               _fmt(r["longest_orf_nt"]["reference"], 0), ""))
  cu = r["codon_usage"]
  rows.append(("codon usage in that ORF: JS (bits)", f"{cu['js_bits_samples_vs_reference']:.3g}", "",
               f"{cu['js_bits_real_vs_real']:.3g}"))
  if "longest_match_in_train_nt" in r:
    m = r["longest_match_in_train_nt"]
    rows.append(("longest exact match in train (nt)", _fmt(m["samples"], 0), _fmt(m["reference"], 0), ""))
    for t in MATCH_THRESHOLDS:
      key = f"fraction_at_least_{t}"
      rows.append((f"share matching >= {t} nt of a train gene", f"{m['samples'][key]:.3f}",
                   f"{m['reference'][key]:.3f}", ""))
  for name, p in r["perplexity"].items():
    rows.append((f"perplexity under {name}", f"{p['samples']:.4f}", f"{p['reference']:.4f}", ""))
  lines = ["| statistic | samples | reference (real genes) | yardstick: real vs real halves |",
           "|---|---|---|---|"] + ["| " + " | ".join(row) + " |" for row in rows]
  return "\n".join(lines) + "\n"


def plot(r: dict, samples, reference, path: str) -> None:
  """Four panels: lengths, GC, k-mer JS against the yardstick, codon usage."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, ax = plt.subplots(2, 2, figsize=(10, 7.5))
  lengths = [[len(s) for s in seqs] for seqs in (samples, reference)]
  gcs = [[g for g in map(stats.gc_fraction, seqs) if np.isfinite(g)] for seqs in (samples, reference)]
  for a, values in ((ax[0, 0], lengths), (ax[0, 1], gcs)):
    bins = np.histogram_bin_edges(values[0] + values[1], bins=30)  # shared, so both sets show
    for v, label in zip(values, ("samples", "reference")):
      a.hist(v, bins=bins, alpha=0.5, density=True, label=label)
  ax[0, 0].set(xlabel="length (nt)", ylabel="density", title="length")
  ax[0, 1].set(xlabel="GC fraction", title="GC content")
  js = r["kmer_js_bits"]
  ax[1, 0].semilogy(js["k"], js["samples_vs_reference"], "o-", label="samples vs reference")
  ax[1, 0].semilogy(js["k"], js["real_vs_real"], "s--", label="real vs real (halves)")
  ax[1, 0].set(xlabel="k", ylabel="JS divergence (bits)", title="k-mer spectra")
  cu = r["codon_usage"]
  ax[1, 1].scatter(cu["reference"], cu["samples"], s=12)
  top = max(max(cu["reference"]), max(cu["samples"]), 1e-3)
  ax[1, 1].plot([0, top], [0, top], "k:", lw=1)
  ax[1, 1].set(xlabel="reference codon frequency", ylabel="samples codon frequency",
               title="codon usage (longest ORF)")
  for a in (ax[0, 0], ax[0, 1], ax[1, 0]):
    a.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def _judges(names: Sequence[str], data_config, train: Sequence[str]) -> dict:
  from dnagen_jax import workdir as workdir_lib  # pylint: disable=g-import-not-at-top
  from dnagen_jax.data import storage  # pylint: disable=g-import-not-at-top
  from dnagen_jax import scoring  # pylint: disable=g-import-not-at-top
  judges = {}
  for w in names:
    scorer = workdir_lib.load_scorer(w)
    judges[f"{scorer.name} ({w})"] = scorer
  source = storage.oracle_source(data_config)
  if source is not None:
    judges["the true source (oracle)"] = scoring.OracleScorer(source)
  if not judges:
    from dnagen_jax.ngram.model import NGramModel  # pylint: disable=g-import-not-at-top
    from dnagen_jax.ngram.scorer import NGramScorer  # pylint: disable=g-import-not-at-top
    model = NGramModel.fit(train, JUDGE_ORDER, "kneser_ney", with_n=data_config.unknown_policy == "n")
    judges[f"Kneser-Ney {JUDGE_ORDER}-gram fitted on the train split"] = NGramScorer(model)
  return judges


def run(workdir: str, samples_path: str | None, reference: str = "test", out: str | None = None,
        judges: Sequence[str] = ()) -> dict:
  """--mode=sample_report. Returns the report dict (also written as JSON)."""
  import ml_collections  # pylint: disable=g-import-not-at-top
  from dnagen_jax import config_check  # pylint: disable=g-import-not-at-top
  from dnagen_jax.data import sequence_io, storage  # pylint: disable=g-import-not-at-top
  if not samples_path:
    raise UserError("--mode=sample_report needs --samples=PATH.fa (from --mode=generate)")
  data_config = ml_collections.ConfigDict(config_check.read_workdir_config(workdir)["data"])
  samples = [gen for _, gen, _ in fasta.read_samples(samples_path)]
  if reference in storage.SPLITS:
    ref = [r.sequence for r in storage.load_records(data_config, reference)]
  else:
    ref = [r.sequence for r in sequence_io.read_sequences(reference, data_config.unknown_policy)]
  train = [r.sequence for r in storage.load_records(data_config, "train")]
  result = compare(samples, ref, train, _judges(judges, data_config, train))
  result["settings"] = {"samples": os.path.abspath(samples_path), "workdir": os.path.abspath(workdir),
                        "reference": reference if reference in storage.SPLITS else os.path.abspath(reference)}
  out = out or os.path.dirname(os.path.abspath(samples_path))
  os.makedirs(out, exist_ok=True)
  stem = os.path.join(out, os.path.basename(samples_path).split(".")[0] + "_report")
  table = markdown(result)
  with open(stem + ".md", "w") as f:
    f.write(f"# Samples {samples_path} against {reference} genes\n\n{table}")
  with open(stem + ".json", "w") as f:
    json.dump(result, f, indent=1)
  plot(result, [s for s in samples if s], ref, stem + ".png")
  print(table + f"-> {stem}.md, .json, .png")
  return result
