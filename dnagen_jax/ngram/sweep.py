"""Order sweep: N-gram orders 1..K for each smoothing, one table and one plot.

  python -m dnagen_jax.main --mode=sweep --config=configs/ngram.py --workdir=/tmp/sweep \
      --max_order=14 --smoothings=mle,laplace,kneser_ney

Writes into `workdir`: sweep.csv and sweep.md (one row per smoothing and
order), sweep.json (rows plus the best order of each smoothing, chosen on
validation perplexity) and sweep.png (test perplexity against N, one line per
smoothing; infinite perplexities are gaps, marked with an x on the top edge).
The data are loaded once; each fit is independent.
"""

from __future__ import annotations

import csv
import json
import math
import os

from dnagen_jax.data import storage
from dnagen_jax.errors import UserError
from dnagen_jax.ngram import codes
from dnagen_jax.ngram.model import SMOOTHINGS
from dnagen_jax.ngram.train import fit_and_score, load_splits, model_settings

COLUMNS = ("smoothing", "order", "val_perplexity", "test_perplexity", "test_bits_per_nucleotide",
           "nltk_test_perplexity", "oracle_test_perplexity", "params", "nucleotides_seen",
           "fit_seconds", "score_seconds")


def run(config, workdir: str, max_order: int, smoothings) -> dict:
  """Fits orders 1..max_order for each smoothing; returns sweep.json's dict."""
  codes.check_order(max_order)
  smoothings = [s.strip() for s in smoothings if s.strip()]
  bad = [s for s in smoothings if s not in SMOOTHINGS]
  if bad or not smoothings:
    raise UserError(f"--smoothings={','.join(smoothings)}: each must be one of {', '.join(SMOOTHINGS)}")
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, "config.json"), "w") as f:
    f.write(config.to_json_best_effort(indent=2))
  splits = load_splits(config)
  oracle = storage.oracle_perplexity(config.data, "test")
  print(f"[sweep] {len(splits['train'])} train genes ({sum(map(len, splits['train'])):,} nt), "
        f"orders 1..{max_order}, smoothings {', '.join(smoothings)}", flush=True)
  rows = []
  for smoothing in smoothings:
    for order in range(1, max_order + 1):
      settings = dict(model_settings(config), order=order, smoothing=smoothing)
      _, r = fit_and_score(settings, splits, oracle)
      rows.append({c: r.get(c) for c in COLUMNS} | {"smoothing": smoothing, "order": order})
      print(f"[sweep] {smoothing:>11} N={order:<2d} val {_f(r['val_perplexity'])}  "
            f"test {_f(r['test_perplexity'])}  counts {r['params']:>10,}  "
            f"fit {r['fit_seconds']:.2f}s", flush=True)
  best = {}
  for s in smoothings:
    mine = [r for r in rows if r["smoothing"] == s]
    b = min(mine, key=lambda r: r["val_perplexity"])
    best[s] = {"order": b["order"], "val_perplexity": b["val_perplexity"],
               "test_perplexity": b["test_perplexity"]}
  out = {"rows": rows, "best_by_validation": best, "oracle_test_perplexity": oracle}
  _write(workdir, out, smoothings)
  for s, b in best.items():
    print(f"[sweep] best {s}: N={b['order']} (val {_f(b['val_perplexity'])}, "
          f"test {_f(b['test_perplexity'])})", flush=True)
  return out


def _f(x) -> str:
  return "-" if x is None else ("inf" if math.isinf(x) else f"{x:.4f}")


def _write(workdir: str, out: dict, smoothings):
  rows = out["rows"]
  with open(os.path.join(workdir, "sweep.json"), "w") as f:
    json.dump(out, f, indent=1)
  with open(os.path.join(workdir, "sweep.csv"), "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=COLUMNS)
    w.writeheader()
    w.writerows(rows)
  md = ["| smoothing | N | val ppl | test ppl | test bits/nt | NLTK-protocol test ppl | counts | fit s |",
        "|---|---|---|---|---|---|---|---|"]
  for r in rows:
    star = " *" if out["best_by_validation"][r["smoothing"]]["order"] == r["order"] else ""
    md.append(f"| {r['smoothing']} | {r['order']}{star} | {_f(r['val_perplexity'])} | "
              f"{_f(r['test_perplexity'])} | {_f(r['test_bits_per_nucleotide'])} | "
              f"{_f(r['nltk_test_perplexity'])} | {r['params']:,} | {r['fit_seconds']:.2f} |")
  if out["oracle_test_perplexity"]:
    md.append(f"\nOracle test perplexity: {out['oracle_test_perplexity']:.4f}.")
  md.append("\n`*` best order of each smoothing by validation perplexity.")
  with open(os.path.join(workdir, "sweep.md"), "w") as f:
    f.write("\n".join(md) + "\n")
  _plot(os.path.join(workdir, "sweep.png"), rows, smoothings, out["oracle_test_perplexity"])


def _plot(path: str, rows, smoothings, oracle):
  import matplotlib  # pylint: disable=g-import-not-at-top
  import matplotlib.ticker  # pylint: disable=g-import-not-at-top,unused-import
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, ax = plt.subplots(figsize=(6.5, 4))
  finite = [r["test_perplexity"] for r in rows if math.isfinite(r["test_perplexity"])]
  top = max(finite) if finite else 4.0
  for s in smoothings:
    mine = [r for r in rows if r["smoothing"] == s]
    xs = [r["order"] for r in mine]
    ys = [r["test_perplexity"] if math.isfinite(r["test_perplexity"]) else float("nan") for r in mine]
    line, = ax.plot(xs, ys, marker="o", ms=3, label=s)  # NaN leaves a gap
    inf_x = [r["order"] for r in mine if not math.isfinite(r["test_perplexity"])]
    if inf_x:
      ax.plot(inf_x, [top] * len(inf_x), "x", color=line.get_color(), ms=7,
              label=f"{s}: inf")
  if oracle:
    ax.axhline(oracle, color="k", ls="--", lw=1, label="oracle")
  ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
  ax.set_xlabel("order N")
  ax.set_ylabel("test perplexity per nucleotide")
  ax.legend(fontsize=8)
  ax.grid(alpha=0.3)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)
