"""N-gram models over nucleotides: count tables, smoothing, scoring, save/load.

Protocol (the project's, shared with the neural models): a gene x_1..x_L is
scored as sum_t ln p(x_t | BOS^(n-1) x_1..x_{t-1}), i.e. the context of an
order-n model is the previous n-1 symbols with BOS padding on the left. Training
counts exactly the windows scored that way: L windows per gene, each ending in
a nucleotide (no EOS is ever predicted).

Outcome set O: {A, C, G, T}, plus N when the model is trained with N support
(`with_n=True`, i.e. data.unknown_policy='n'). For add-k, Kneser-Ney and
Witten-Bell, p(. | context) sums to exactly one over O for every context, seen
or not. MLE gives p = 0 to unseen n-grams and unseen contexts (perplexity inf).

Smoothing at order n, with c(h w) the count of context h followed by w and
c(h) = sum_w c(h w):
  mle          c(hw) / c(h)
  laplace      (c(hw) + 1) / (c(h) + |O|)
  add_k        (c(hw) + k) / (c(h) + k |O|)
  kneser_ney   interpolated modified Kneser-Ney (Chen & Goodman 1998): per
               order, discounts D1, D2, D3+ from the count-of-counts n1..n4 of
               that order's counts, Y = n1 / (n1 + 2 n2), D1 = 1 - 2Y n2/n1,
               D2 = 2 - 3Y n3/n2, D3+ = 3 - 4Y n4/n3;
               p(w|h) = (c(hw) - D(c(hw)))+ / c(h) + gamma(h) p(w|h'),
               gamma(h) = (D1 N1(h.) + D2 N2(h.) + D3+ N3+(h.)) / c(h);
               the highest order uses raw counts, lower orders continuation
               counts N1+(. h'w) (raw counts for n-grams that start with BOS,
               whose only left neighbour is padding, as KenLM does); the bottom
               is uniform over O; an unseen context passes p(w|h') through.
  witten_bell  interpolated: p(w|h) = (c(hw) + u(h) p(w|h')) / (c(h) + u(h)),
               u(h) = number of distinct w after h; raw counts at every order.
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np

from dnagen_jax.data import tokens
from dnagen_jax.errors import UserError
from dnagen_jax.ngram import codes as C

SMOOTHINGS = ("mle", "laplace", "add_k", "kneser_ney", "witten_bell")
INTERPOLATED = ("kneser_ney", "witten_bell")  # these store every order 1..n
FORMAT = "dnagen_jax.ngram"
FORMAT_VERSION = 1
FALLBACK_DISCOUNTS = np.array([0.5, 1.0, 1.5])  # KenLM --discount_fallback defaults
AUTO = "auto"  # lower_discounts: (D1, D2, D3+) = s_k (1, 2, 3), s_k chosen on held-out training genes
HELDOUT_MAX_WINDOWS = 400_000  # held-out windows scored per candidate s (a deterministic subset)
# Smallest scale the search keeps: s = 0 gives an order no back-off mass, so an outcome that the
# held-out genes never needed there (N in a genome's test split but not in its training
# windows) gets probability 0 and the perplexity is infinite.
MIN_SCALE = 0.01


def check_smoothing(smoothing: str) -> str:
  if smoothing not in SMOOTHINGS:
    raise UserError(f"ngram_smoothing={smoothing!r} is not one of {', '.join(SMOOTHINGS)}")
  return smoothing


def kn_discounts(counts: np.ndarray) -> np.ndarray:
  """Modified Kneser-Ney discounts [D1, D2, D3+] from count-of-counts of `counts`.

  The closed form needs n1..n4 > 0 and gives D_i in (0, i) only for Zipf-like
  counts; continuation counts over a 4-letter alphabet saturate (a k-gram has
  at most 5 distinct left neighbours) and break it. Where it fails, the order
  falls back to KenLM's default discounts (0.5, 1, 1.5), as KenLM's
  --discount_fallback does.
  """
  n1, n2, n3, n4 = np.bincount(np.minimum(counts, 5), minlength=6)[1:5].astype(np.float64)
  if min(n1, n2, n3, n4) > 0:
    y = n1 / (n1 + 2 * n2)
    d = np.array([1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3])
    if np.all((d > 0) & (d < [1.0, 2.0, 3.0])):
      return d
  return FALLBACK_DISCOUNTS.copy()


@dataclasses.dataclass
class Level:
  """The table of one order k: sorted k-gram codes and their counts.

  keys: uint64 [U] sorted codes (see codes.py); counts: int64 [U] > 0.
  The context statistics are derived (not saved): ctx_keys uint64 [H] sorted
  contexts (keys >> 3), ctx_total int64 [H] = c(h), ctx_extra float64 [H] =
  gamma(h) * c(h) for Kneser-Ney, u(h) for Witten-Bell.
  """
  k: int
  keys: np.ndarray
  counts: np.ndarray
  ctx_keys: np.ndarray = None
  ctx_total: np.ndarray = None
  ctx_extra: np.ndarray = None
  discounts: np.ndarray = None
  unit: int = C.BITS  # bits per token: 3 per nucleotide, 3k for k-mer tokens

  def derive(self, smoothing: str, discounts=None):
    ctx = self.keys >> np.uint64(self.unit)
    starts = C.group_starts(ctx)
    self.ctx_keys = ctx[starts]
    self.ctx_total = C.group_sums(self.counts, starts)
    if smoothing == "kneser_ney":
      self.discounts = kn_discounts(self.counts) if discounts is None else np.asarray(discounts, np.float64)
      # gamma(h) c(h) = D1 N1(h.) + D2 N2(h.) + D3+ N3+(h.), from exact integer counts.
      self.ctx_extra = sum(self.discounts[i] * C.group_sums(np.minimum(self.counts, 3) == i + 1, starts)
                           for i in range(3))
    elif smoothing == "witten_bell":
      self.ctx_extra = np.diff(np.append(starts, self.keys.size)).astype(np.float64)
    return self


def _level_lookup(lv, q: np.ndarray):
  """One order's counts for the windows q [m] (codes masked to that order).

  Looked up in ascending query order (cache-friendly), then scattered back.
  Returns (context total, count, context extra) [m] float64 each, and the
  lookup (order, context index, context seen) for further context arrays.
  """
  order = np.argsort(q)
  qs = q[order]
  hi, seen = C.sorted_positions(lv.ctx_keys, qs >> np.uint64(lv.unit))
  ki, found = C.sorted_positions(lv.keys, qs)
  tot, c, extra = np.zeros(q.shape), np.zeros(q.shape), np.zeros(q.shape)
  tot[order] = np.where(seen, lv.ctx_total[hi], 0)
  c[order] = np.where(found, lv.counts[ki], 0)
  extra[order] = np.where(seen, lv.ctx_extra[hi], 0.0)
  return tot, c, extra, (order, hi, seen)


class NGramModel:
  """An order-n nucleotide model (see the module docstring for the maths)."""

  def __init__(self, order: int, smoothing: str, k: float, with_n: bool,
               levels: dict[int, Level], nucleotides_seen: int, lower_discounts=None,
               discount_search: dict | None = None, kmer: int = 1):
    self.order, self.smoothing, self.k = order, smoothing, float(k)
    self.with_n, self.nucleotides_seen = bool(with_n), int(nucleotides_seen)
    self.outcomes = tokens.NUCLEOTIDES + ("N" if with_n else "")
    # k-mer tokens (data.kmer): a token is k nucleotide symbols, 3k bits of a code; 4^k outcomes.
    self.kmer, self.unit = int(kmer), C.BITS * int(kmer)
    self.num_outcomes = len(self.outcomes) if self.kmer == 1 else 4 ** self.kmer
    for lv in levels.values():
      lv.unit = self.unit
    self.lower_discounts = check_discounts(lower_discounts) if smoothing == "kneser_ney" else None
    self.discount_search = discount_search  # how 'auto' chose lower_discounts (None otherwise)
    ld = self.lower_discounts
    per_order = ld is not None and isinstance(ld[0], list)
    if per_order and len(ld) != order - 1:
      raise UserError(f"lower_discounts: {len(ld)} triples for the {order - 1} orders below {order}")
    self.levels = {kk: lv.derive(smoothing, None if kk == order or ld is None else
                                 (ld[kk - 1] if per_order else ld))
                   for kk, lv in levels.items()}

  @property
  def name(self) -> str:
    return f"ngram-{self.smoothing}-{self.order}" + (f"-{self.kmer}mer" if self.kmer > 1 else "")

  @property
  def num_params(self) -> int:
    """Number of stored counts (all orders kept)."""
    return int(sum(lv.keys.size for lv in self.levels.values()))

  # ---------------------------------------------------------------- fitting
  @classmethod
  def fit(cls, seqs, order: int, smoothing: str = "kneser_ney", k: float = 1.0,
          with_n: bool = False, max_memory_bytes: int | None = None,
          lower_discounts="auto", kmer: int = 1) -> "NGramModel":
    """Counts the windows of `seqs` (genes over ACGT, and N if `with_n`).

    `lower_discounts`: Kneser-Ney only (ignored otherwise); the highest order
    always uses D1, D2, D3+ estimated from its count-of-counts. For the orders
    below n: 'auto' (the default) uses (D1, D2, D3+) = s_k (1, 2, 3) with a
    scale s_k per order chosen on the training genes alone (see
    choose_lower_discounts);
    None or '' estimates them per order from count-of-counts (the textbook
    closed form); a triple 'D1,D2,D3' fixes them.

    Raises UserError for an order out of range, an unknown smoothing, N in the
    data of a model without N, or a fit that would not fit in memory (checked
    before allocating: see codes.check_memory).

    `kmer` = k > 1: tokens are non-overlapping k-mers from each gene's start
    (order counts tokens; order * k <= codes.MAX_ORDER); only full k-mers are
    counted, a gene's last L mod k nucleotides are scored (log_probs) as the
    probability that the next k-mer starts with them (docs/studies.md).
    """
    order = C.check_order(order, kmer)
    if kmer > 1 and with_n:
      raise UserError(f"k-mer tokens (data.kmer={kmer}) read A, C, G, T only: no N outcome")
    check_smoothing(smoothing)
    if not _is_auto(lower_discounts):
      check_discounts(lower_discounts)  # a bad triple fails before any counting
    if smoothing == "add_k" and not k > 0:
      raise UserError(f"ngram_k={k} must be > 0 for add_k smoothing")
    seqs = list(seqs)
    lengths = np.fromiter((len(s) for s in seqs), np.int64, len(seqs))
    ntok = lengths // kmer  # full tokens (all nucleotides when kmer = 1)
    num_windows = int(ntok.sum())
    if num_windows == 0:
      raise UserError("no training nucleotides: the N-gram model needs at least one gene")
    levels_needed = order if smoothing in INTERPOLATED else 1
    C.check_memory(num_windows, order * kmer, levels_needed, smoothing, max_memory_bytes)

    stream, starts = C.padded_stream(seqs, (order - 1) * kmer, 0)
    check_symbols(stream, starts, (order - 1) * kmer, with_n, "training data")
    top = C.window_codes(stream, order * kmer, token_starts(starts, ntok, kmer))
    del stream
    keys, counts, _ = C.unique_counts(top, order * kmer)
    del top
    levels = {order: Level(order, keys, counts)}
    if smoothing in INTERPOLATED:
      raw = counts
      for kk in range(order - 1, 0, -1):
        # Group the (k+1)-grams by their last k symbols: sums give raw counts,
        # group sizes give N1+(. g), the number of distinct left neighbours.
        suffix = keys & C.mask(kk * kmer)
        keys, raw, distinct = C.unique_counts(suffix, kk * kmer, weights=raw, few_runs=True)
        if smoothing == "kneser_ney":
          starts_bos = (keys >> np.uint64(C.BITS * kmer * (kk - 1))) == bos_code(kmer)
          levels[kk] = Level(kk, keys, np.where(starts_bos, raw, distinct))
        else:
          levels[kk] = Level(kk, keys, raw)
    search = None
    if smoothing == "kneser_ney" and _is_auto(lower_discounts):
      lower_discounts, search = choose_lower_discounts(seqs, order, with_n, kmer)
    return cls(order, smoothing, k, with_n, levels, num_windows * kmer, lower_discounts, search, kmer)

  # ---------------------------------------------------------------- scoring
  def window_probs(self, codes: np.ndarray) -> np.ndarray:
    """p(w | h) for packed order-n windows: uint64 [W] -> float64 [W]."""
    n, num_out = self.order, self.num_outcomes
    if self.smoothing not in INTERPOLATED:
      lv = self.levels[n]
      c = C.lookup(lv.keys, lv.counts, codes).astype(np.float64)
      tot = C.lookup(lv.ctx_keys, lv.ctx_total, codes >> np.uint64(self.unit)).astype(np.float64)
      if self.smoothing == "mle":
        return np.divide(c, tot, out=np.zeros_like(c), where=tot > 0)
      k = 1.0 if self.smoothing == "laplace" else self.k
      return (c + k) / (tot + k * num_out)
    p = np.full(codes.shape, 1.0 / num_out)
    for kk in range(1, n + 1):
      lv = self.levels[kk]
      tot, c, extra, _ = _level_lookup(lv, codes & C.mask(kk * self.kmer))
      seen = tot > 0
      if self.smoothing == "kneser_ney":
        d = np.where(c > 0, lv.discounts[np.clip(c, 1, 3).astype(np.int64) - 1], 0.0)
        p = np.divide(c - d + extra * p, tot, out=p.copy(), where=seen)
      else:
        p = np.divide(c + extra * p, tot + extra, out=p.copy(), where=seen)
    return p

  def scale_perplexity_fn(self, seqs):
    """Perplexity on `seqs` as a function of s, with (D1, D2, D3+) = s (1, 2, 3) below the top order.

    Kneser-Ney only. Every lookup is done once: at order k < n,
    p_k = (c - s u(c) + s v(h) p_{k-1}) / c(h) with u = (1, 2, 3)[min(c, 3)]
    (0 if c = 0) and v(h) = N1(h.) + 2 N2(h.) + 3 N3+(h.); the top order keeps
    its own discounts. Windows are sorted by how many orders have their
    context seen (seen at k implies seen below k), so each order updates a
    prefix. The returned f(s) costs a few vector operations per order;
    f(None) is the perplexity with this model's own discounts.
    """
    n, num_out, kmer = self.order, self.num_outcomes, self.kmer
    lengths = np.fromiter((len(x) for x in seqs), np.int64, len(seqs))
    stream, starts = C.padded_stream(seqs, (n - 1) * kmer, 0)
    check_symbols(stream, starts, (n - 1) * kmer, self.with_n, "held-out data")
    codes = C.window_codes(stream, n * kmer, token_starts(starts, lengths // kmer, kmer))
    base = np.array([1.0, 2.0, 3.0])
    per_order = []
    depth = np.zeros(codes.size, np.int64)
    for kk in range(1, n + 1):
      lv = self.levels[kk]
      tot, c, extra, (srt, hi, seen) = _level_lookup(lv, codes & C.mask(kk * kmer))
      v = np.zeros(codes.shape)
      cls3 = np.minimum(lv.counts, 3)
      ctx_starts = C.group_starts(lv.keys >> np.uint64(self.unit))
      ctx_v = sum(base[i] * C.group_sums(cls3 == i + 1, ctx_starts) for i in range(3))
      v[srt] = np.where(seen, ctx_v[hi], 0.0)
      depth += tot > 0
      per_order.append((tot, c, v, extra, lv.discounts))
    rank = np.argsort(-depth, kind="stable")
    terms = []
    for kk, (tot, c, v, extra, own) in enumerate(per_order, start=1):
      m = int(np.count_nonzero(depth >= kk))
      tot, c, v, extra = tot[rank[:m]], c[rank[:m]], v[rank[:m]], extra[rank[:m]]
      ci = np.clip(c, 1, 3).astype(np.int64) - 1
      u = np.where(c > 0, base[ci], 0.0)
      d_own = np.where(c > 0, own[ci], 0.0)
      terms.append((m, c / tot, u / tot, v / tot, (c - d_own) / tot, extra / tot))

    def perplexity(s, start: int = 1, p=None, cache: dict | None = None):
      """s: None, a scale, or [n-1] scales (one per order). Starts at order `start` from p
      (the probabilities before that order; uniform at 1); cache[k] <- p before order k."""
      p = np.full(codes.size, 1.0 / num_out) if p is None else p.copy()
      for kk, (m, a, b, g, a_own, g_own) in enumerate(terms[start - 1:], start=start):
        if cache is not None:
          cache[kk] = p.copy()
        if s is None or kk == n:
          p[:m] = a_own + g_own * p[:m]
        else:
          p[:m] = a - (s if np.ndim(s) == 0 else s[kk - 1]) * (b - g * p[:m])
      with np.errstate(divide="ignore"):
        return float(np.exp(-np.log(p).mean()))

    return perplexity

  def log_probs(self, seqs) -> list[np.ndarray]:
    """ln p(x_t | BOS^(n-1) x_<t) of every nucleotide: n float64 arrays [L_i]."""
    seqs = list(seqs)
    if not seqs:
      return []
    if self.kmer > 1:
      return self._kmer_log_probs(seqs)
    lengths = np.fromiter((len(s) for s in seqs), np.int64, len(seqs))
    stream, starts = C.padded_stream(seqs, self.order - 1, 0)
    check_symbols(stream, starts, self.order - 1, self.with_n, "scored data")
    codes = C.window_codes(stream, self.order, C.ranges(starts, lengths))
    with np.errstate(divide="ignore"):
      lp = np.log(self.window_probs(codes))
    return np.split(lp, np.cumsum(lengths)[:-1])

  def _kmer_log_probs(self, seqs) -> list[np.ndarray]:
    """log_probs for k-mer tokens: each token's ln p at its last nucleotide (0 elsewhere).

    A gene's tail (its last r = L mod k nucleotides) is scored as
    ln sum_c p(tail + c | context) over the 4^(k-r) completions c.
    """
    k, n = self.kmer, self.order
    lengths = np.fromiter((len(s) for s in seqs), np.int64, len(seqs))
    ntok, tail = lengths // k, lengths % k
    stream, starts = C.padded_stream(seqs, (n - 1) * k, k - 1)  # right pad: tail windows stay in the stream
    check_symbols(stream, starts, (n - 1) * k, False, "scored data")
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    out = np.zeros(int(lengths.sum()))
    codes = C.window_codes(stream, n * k, token_starts(starts, ntok, k))
    with np.errstate(divide="ignore"):
      out[np.repeat(offsets, ntok) + k * (C.ranges(np.zeros(len(seqs), np.int64), ntok) + 1) - 1] = (
          np.log(self.window_probs(codes)))
      for r in range(1, k):
        genes = np.flatnonzero(tail == r)
        if not genes.size:
          continue
        m = k - r  # completed symbols
        windows = C.window_codes(stream, n * k, starts[genes] + k * ntok[genes])
        prefix = (windows >> np.uint64(C.BITS * m)) << np.uint64(C.BITS * m)
        completions = completion_codes(m)
        probs = self.window_probs((prefix[:, None] | completions[None, :]).ravel())
        out[offsets[genes] + lengths[genes] - 1] = np.log(probs.reshape(genes.size, -1).sum(axis=1))
    return np.split(out, np.cumsum(lengths)[:-1])

  def next_log_probs(self, prefixes) -> np.ndarray:
    """[n, |O|] ln p(o | BOS + prefix) for every outcome o of each prefix."""
    if self.kmer > 1:
      raise UserError("next-nucleotide probabilities of a k-mer N-gram are not defined here (data.kmer=1)")
    seqs = [p + o for p in prefixes for o in self.outcomes]
    last = np.array([lp[-1] for lp in self.log_probs(seqs)])
    return last.reshape(len(prefixes), len(self.outcomes))

  # ---------------------------------------------------------------- storage
  def header(self) -> dict:
    return {"format": FORMAT, "version": FORMAT_VERSION, "order": self.order,
            "smoothing": self.smoothing, "k": self.k, "with_n": self.with_n,
            "outcomes": self.outcomes, "nucleotides_seen": self.nucleotides_seen, "kmer": self.kmer,
            "levels": sorted(self.levels), "num_params": self.num_params,
            "lower_discounts": self.lower_discounts, "discount_search": self.discount_search,
            "discounts": {str(kk): lv.discounts.tolist() for kk, lv in self.levels.items()
                          if lv.discounts is not None}}

  def save(self, workdir: str, stem: str = "ngram"):
    """Writes <stem>.npz (keys_k uint64 [U_k], counts_k uint8..uint64 [U_k] per order k) and <stem>.json."""
    os.makedirs(workdir, exist_ok=True)
    arrays = {}
    for kk, lv in self.levels.items():
      # Counts are stored in the smallest unsigned type that holds them (read back as int64).
      dtype = np.min_scalar_type(int(lv.counts.max()) if lv.counts.size else 0)
      arrays[f"keys_{kk}"], arrays[f"counts_{kk}"] = lv.keys, lv.counts.astype(dtype)
    np.savez(os.path.join(workdir, stem + ".npz"), **arrays)
    with open(os.path.join(workdir, stem + ".json"), "w") as f:
      json.dump(self.header(), f, indent=1)

  @classmethod
  def load(cls, workdir: str, stem: str = "ngram") -> "NGramModel":
    hpath, apath = os.path.join(workdir, stem + ".json"), os.path.join(workdir, stem + ".npz")
    if not (os.path.exists(hpath) and os.path.exists(apath)):
      raise UserError(f"{workdir}: no saved N-gram model ({stem}.json / {stem}.npz missing)")
    with open(hpath) as f:
      h = json.load(f)
    if h.get("format") != FORMAT or h.get("version") != FORMAT_VERSION:
      raise UserError(f"{hpath}: not an N-gram model of format {FORMAT} version {FORMAT_VERSION}")
    with np.load(apath, allow_pickle=False) as z:
      levels = {kk: Level(kk, z[f"keys_{kk}"], z[f"counts_{kk}"].astype(np.int64)) for kk in h["levels"]}
    return cls(h["order"], h["smoothing"], h["k"], h["with_n"], levels, h["nucleotides_seen"],
               h.get("lower_discounts"), h.get("discount_search"), h.get("kmer", 1))


def _is_auto(discounts) -> bool:
  return isinstance(discounts, str) and discounts.strip().lower() == AUTO



def golden_section(f, lo: float, hi: float, iterations: int) -> float:
  """The minimiser of a unimodal `f` on [lo, hi]; the bracket shrinks by 0.618 per iteration."""
  g = (np.sqrt(5.0) - 1) / 2
  a, b = hi - g * (hi - lo), lo + g * (hi - lo)
  fa, fb = f(a), f(b)
  for _ in range(iterations):
    if fa <= fb:
      hi, b, fb = b, a, fa
      a = hi - g * (hi - lo)
      fa = f(a)
    else:
      lo, a, fa = a, b, fb
      b = lo + g * (hi - lo)
      fb = f(b)
  return float(a if fa <= fb else b)

def choose_lower_discounts(seqs, order: int, with_n: bool, kmer: int = 1) -> tuple[list | None, dict | None]:
  """Kneser-Ney discounts of the orders below `order`, from the training genes alone.

  Over a 4-letter alphabet the continuation counts of the lower orders
  saturate (at most 4-5 distinct left neighbours), and the count-of-counts
  closed form gives poor discounts there (docs/ngram.md, 'Kneser-Ney discounts'). Instead, held-out
  estimation on the training data: the genes are split deterministically
  (even positions: fit; odd positions: held out, at most HELDOUT_MAX_WINDOWS
  windows of them, every m-th gene), a model is fitted on the first half with
  (D1, D2, D3+) = s (1, 2, 3) below the top order, and s in [0, 1] minimises
  the held-out perplexity (golden-section search; the perplexity is unimodal
  in s); then each order k < n gets its own s_k, by coordinate descent from s
  (steps 0.1, 0.05, 0.02). The half model's lookups are done once, so each
  candidate costs a few vector operations (scale_perplexity_fn). Validation
  and test data are never used.

  Returns ([[D1, D2, D3+] per order 1..n-1], a summary dict) or (None, None) (textbook closed
  form) where there is nothing to choose: order 1, or fewer than 2 genes.
  """
  seqs = [s for s in seqs if len(s) >= kmer]
  if order < 2 or len(seqs) < 2:
    return None, None
  part, held = seqs[0::2], seqs[1::2]
  held_windows = sum(map(len, held)) // kmer
  stride = max(1, -(-held_windows // HELDOUT_MAX_WINDOWS))
  held = held[::stride]
  half = NGramModel.fit(part, order, "kneser_ney", with_n=with_n, lower_discounts=None, kmer=kmer)
  heldout = half.scale_perplexity_fn(held)
  s = max(golden_section(heldout, 0.0, 1.0, 24), MIN_SCALE)  # bracket width 0.618^24 < 1e-4
  # Then one scale per order, by coordinate descent from the common one (orders
  # above k are recomputed from the cached probabilities below k).
  scales = np.full(order - 1, s)
  cache = {}
  best = heldout(scales, cache=cache)
  for step in (0.1, 0.05, 0.02):
    for kk in range(1, order):
      for cand in (scales[kk - 1] - step, scales[kk - 1] + step):
        cand = min(max(cand, MIN_SCALE), 1.0)
        if cand == scales[kk - 1]:
          continue
        trial = scales.copy()
        trial[kk - 1] = cand
        ppl = heldout(trial, start=kk, p=cache[kk])
        if ppl < best:
          best, scales = ppl, trial
          heldout(scales, start=kk, p=cache[kk], cache=cache)
  scales = np.round(scales, 4)
  summary = {"method": "held-out per-order scale", "common_scale": round(s, 4),
             "scales": scales.tolist(), "heldout_perplexity": heldout(scales),
             "common_scale_heldout_perplexity": heldout(s),
             "textbook_heldout_perplexity": heldout(None),
             "fit_genes": len(part), "heldout_genes": len(held),
             "heldout_nucleotides": int(sum(map(len, held)))}
  return [[round(x * i, 4) for i in (1, 2, 3)] for x in scales.tolist()], summary


def bos_code(kmer: int) -> int:
  """The code of one BOS token: `kmer` BOS symbols."""
  return sum(tokens.BOS << (C.BITS * i) for i in range(kmer))


def token_starts(starts: np.ndarray, ntok: np.ndarray, kmer: int) -> np.ndarray:
  """int64 [sum(ntok)] stream offsets of every token window: starts[g] + kmer * j, j < ntok[g]."""
  return np.repeat(starts, ntok) + kmer * C.ranges(np.zeros(len(starts), np.int64), ntok)


def completion_codes(m: int) -> np.ndarray:
  """uint64 [4^m] codes of every m-nucleotide string (A, C, G, T symbols), in base-4 order."""
  sym = np.array([tokens.A, tokens.C, tokens.G, tokens.T], np.uint64)
  out = np.zeros(1, np.uint64)
  for _ in range(m):
    out = ((out[:, None] << np.uint64(C.BITS)) | sym[None, :]).ravel()
  return out


def check_discounts(discounts):
  """None, a list [D1, D2, D3+] with 0 <= D_i <= i (parsed from '0.9,1.8,2.7'),
  or a list of such triples, one per order from 1 (what 'auto' chooses)."""
  if discounts is None or discounts == "" or discounts == ():
    return None
  if not isinstance(discounts, str) and len(discounts) and np.ndim(discounts[0]) == 1:
    return [check_discounts(d) for d in discounts]
  if isinstance(discounts, str):
    try:
      discounts = [float(x) for x in discounts.split(",")]
    except ValueError:
      discounts = None
  d = list(map(float, discounts)) if discounts is not None else []
  if len(d) != 3 or not all(0 <= x <= i for i, x in enumerate(d, start=1)):
    raise UserError(f"ngram_kn_lower_discounts={discounts!r} must be 'D1,D2,D3' with "
                    f"0 <= D1 <= 1, 0 <= D2 <= 2, 0 <= D3 <= 3, 'auto' (chosen on held-out training "
                    f"genes) or '' (closed form from count-of-counts)")
  return d


def check_symbols(stream: np.ndarray, starts: np.ndarray, left: int, with_n: bool, what: str):
  """UserError if `stream` holds N but the model has no N outcome."""
  if with_n:
    return
  hits = np.flatnonzero(stream == tokens.N)
  if hits.size:
    gene = int(np.searchsorted(starts, hits[0], side="right") - 1)
    pos = int(hits[0] - starts[gene]) - left + 1
    raise UserError(
        f"{what}: sequence {gene} holds N at position {pos}, but this N-gram model has no N "
        f"outcome (it was built with data.unknown_policy other than 'n'); use "
        f"--config.data.unknown_policy=n for both training and scoring, or 'skip' to drop such genes")
