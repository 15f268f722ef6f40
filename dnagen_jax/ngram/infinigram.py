"""Unbounded-order N-grams ("infini-grams") over a suffix array: counts and smoothing.

Protocol (the project's): gene x_1..x_L is scored as sum_t ln p(x_t | BOS x_<t).
Position t's contexts are h_j = x_{t-j} .. x_{t-1} for depths j = 0, 1, ..., t
(x_0 = BOS; order k = j + 1), as long as h_j occurs in the training genes
followed by a nucleotide. For each such depth and every outcome w, the counts
come from the suffix array (suffix_array.py), for all positions at once, one
interval-narrowing step per depth:

  raw   c(h_j w)        occurrences of h_j w in the training genes
  cont  N1+(. h_j w)    distinct symbols (BOS or a nucleotide) left of them

With an order cap N (> 0) the depths stop at N - 1, and a context that
reaches BOS before that repeats its counts at every deeper order, exactly as
the N-gram family's BOS^(N-1) padding does: the counts at every order equal
NGramModel's of order N (tests/test_infinigram.py), and so do the
probabilities under the same discounts. Without a cap (0), the depths stop
at the longest context seen, and a context reaches BOS once (BOS x_1..x_{t-1}
is the whole history: no repeated gene-start levels).

Smoothing: interpolated modified Kneser-Ney, uniform over the outcomes O at
the bottom:

  p_k(w | h) = (c(hw) - D_k(c(hw)))+ / c(h) + gamma_k(h) p_{k-1}(w | h'),
  gamma_k(h) c(h) = D_k1 N1(h.) + D_k2 N2(h.) + D_k3 N3+(h.)

with continuation counts at orders k < R, raw counts at R (and for every
context that starts with BOS, as in NGramModel). R = the cap if it is at most
`raw_from`, else `raw_from` (21 by default). Orders 1..R are the KN R-gram's,
with its discounts (NGramModel's 'auto'). Above R (`above`):
  'longest'    one more order, the longest context seen (raw counts), D = s (1, 2, 3);
  'branching'  every order above R whose counts differ from the order below's
               (orders where the match grows without branching are skipped);
  'none'       nothing above R.
s is chosen on held-out training genes. p(. | h) sums to 1 over O at every
order, whatever the counts, since c(h) = sum_w c(hw) and gamma takes the mass
the discounts removed (tested to 1e-12).
"""

from __future__ import annotations

import numpy as np

from dnagen_jax.data import tokens
from dnagen_jax.errors import UserError
from dnagen_jax.ngram import codes as C
from dnagen_jax.ngram.model import golden_section
from dnagen_jax.ngram.suffix_array import SuffixIndex

BATCH_POSITIONS = 1 << 19  # positions scored per pass (bounds the [m, |O|, 8] row gathers)


def outcome_ids(with_n: bool) -> np.ndarray:
  """Token ids of the outcomes O: A, C, G, T (and N): int64 [|O|]."""
  return np.arange(tokens.A, tokens.A + 4 + int(with_n), dtype=np.int64)


def positions(seqs):
  """The scored positions of genes `seqs`.

  Returns:
    stream: uint8 [sum(L) + n] BOS + gene, end to end;
    pos: int64 [P] index of each x_t in stream (P = sum(L));
    t: int64 [P] its position in its gene (1-based), which is also the depth
      at which its context reaches BOS.
  """
  lengths = np.fromiter((len(s) for s in seqs), np.int64, len(seqs))
  stream, starts = C.padded_stream(seqs, 1, 0)
  pos = C.ranges(starts + 1, lengths)
  return stream, pos, pos - np.repeat(starts, lengths)


def context_levels(index: SuffixIndex, stream, pos, t, outs, cap: int = 0, repeat_bos: int = 0,
                   cont_until: int = 0):
  """Yields, depth by depth, the counts after each position's context of that depth.

  Args:
    index: the training genes' suffix index.
    stream, pos, t: from `positions` (pos and t [m] may be any subset).
    outs: int64 [O] outcome token ids (consecutive: A, C, G, T[, N]).
    cap: order cap N (depths 0..N-1); 0 = none.
    repeat_bos: a context that reached BOS repeats its counts up to this
      order (BOS BOS x.. as under BOS^(N-1) padding); 0 = cap.
    cont_until: continuation counts only below this order (0 = at every order).
  Yields (j, idx, raw, cont, at_bos): idx int64 [m_j] indices into pos of the
  positions whose depth-j context is seen (nested: each a subsequence of the
  one before), raw and cont int64 [m_j, O] (see the module docstring; cont
  None from order cont_until up), at_bos bool [m_j] (the context starts with BOS).

  The suffixes that start with h w for w = A, C, G, T (N) are adjacent in the
  suffix array (sorted by the symbol after h), so the O intervals of one
  context are O + 1 boundaries: bounds [m, O + 1], raw = their differences.
  """
  num_out = outs.size
  repeat_bos = repeat_bos or cap
  lo0, hi0 = index.single(outs)
  idx = np.arange(pos.size, dtype=np.int64)
  bounds = np.broadcast_to(np.append(lo0, hi0[-1]), (pos.size, num_out + 1))
  j = 0
  while idx.size:
    raw = np.diff(bounds, axis=1)
    cont = rows = None
    if not cont_until or j + 1 < cont_until:
      rows = index.occ[bounds]  # [m, O + 1, 8]
      # Distinct left neighbours: columns that differ between consecutive boundaries,
      # counted 8 at a time as the set bytes of one uint64.
      diff = np.ascontiguousarray(rows[:, 1:] != rows[:, :-1]).view(np.uint64)[..., 0]
      cont = np.bitwise_count(diff).astype(np.int64)
    tj = t[idx]
    at_bos = tj <= j
    yield j, idx, raw, cont, at_bos
    if cap and j + 1 >= cap:
      return
    # One symbol more on the left: a = x_{t-j-1}; past BOS (up to order
    # repeat_bos) the context is BOS BOS ..., whose counts are those at BOS.
    grow = tj > j
    stay = ~grow & (j + 2 <= repeat_bos)
    a = stream[pos[idx] - (j + 1) * grow].astype(np.int64)  # BOS rows read their own x_t: unused
    if rows is None:
      ranks = index.occ[bounds, a[:, None]]
    else:  # column a of the rows already read (a second random read is slower)
      flat = rows.reshape(rows.shape[0], -1)
      ranks = np.take_along_axis(flat, np.arange(0, flat.shape[1], rows.shape[2]) + a[:, None], 1)
    new = index.first[a][:, None] + ranks
    new = np.where(stay[:, None], bounds, new)
    keep = (grow | stay) & (new[:, -1] > new[:, 0])
    idx, bounds = idx[keep], new[keep]
    j += 1


def kn_update(p, counts, d3):
  """One interpolated KN order: p [m, O] (order below), counts [m, O], d3 [m, 3] or [3] -> p [m, O]."""
  d3 = np.asarray(d3, np.float64)
  ci = np.clip(counts, 1, 3) - 1
  d = np.where(counts > 0, np.take_along_axis(d3, ci, -1) if d3.ndim == 2 else d3[ci], 0.0)
  tot = counts.sum(1, keepdims=True)
  extra = d.sum(1, keepdims=True)
  return np.divide(counts - d + extra * p, tot, out=p.copy(), where=tot > 0)


def distributions(index: SuffixIndex, seqs, with_n: bool, cap: int, discounts, raw_from: int,
                  above: str = "longest", batch: int = BATCH_POSITIONS, terms: list | None = None):
  """p(. | BOS x_<t) of every position, and its longest context seen.

  Args:
    discounts: float64 [K, 3], (D1, D2, D3+) of orders 1..K; orders above K use row K.
    raw_from: R, the first order with raw counts (cap > 0: at most the cap).
    above: what the orders above R add: 'longest', 'branching' or 'none' (module docstring).
    terms: if a list, it receives what the target's probability at the orders
      above R depends on, for discount searches (`high_order_perplexity_fn`).
  Returns:
    probs float64 [P, O], targets int64 [P] (x_t's outcome index), longest int64 [P]
    (depth of the longest context seen, = match length).
  """
  outs = outcome_ids(with_n)
  stream, pos, t = positions(seqs)
  check_outcomes(stream, with_n)
  discounts = np.asarray(discounts, np.float64)
  top = min(cap, raw_from) if cap else raw_from
  targets = np.searchsorted(outs, stream[pos])
  probs = np.full((pos.size, outs.size), 1.0 / outs.size)
  longest = np.zeros(pos.size, np.int64)
  for b in range(0, pos.size, batch):
    sl = slice(b, b + batch)
    p = probs[sl]
    prev = None
    deep = np.zeros(p.shape, np.int64) if above == "longest" else None
    for j, idx, raw, cont, at_bos in context_levels(index, stream, pos[sl], t[sl], outs, cap,
                                                    cont_until=top):
      k = j + 1
      counts = raw if k >= top else np.where(at_bos[:, None], raw, cont)
      d3 = discounts[min(k, discounts.shape[0]) - 1]
      upd = slice(None)
      if k > top and above != "branching":  # 'longest': only the deepest counts, after the loop
        if deep is not None:
          deep[idx] = raw
        longest[b + idx] = j
        continue
      if k > top:
        # Skip orders whose counts equal the order below's (the match grew without branching).
        pidx, praw = prev
        upd = np.any(praw[np.searchsorted(pidx, idx)] != raw, axis=1)
        if terms is not None:
          _append_terms(terms, counts[upd], b + idx[upd], targets)
      p[idx[upd]] = kn_update(p[idx[upd]], counts[upd], d3)
      longest[b + idx] = j
      prev = (idx, raw)
    if deep is not None:
      di = np.flatnonzero(longest[sl] >= top)
      if terms is not None:
        _append_terms(terms, deep[di], b + di, targets)
      p[di] = kn_update(p[di], deep[di], discounts[min(top + 1, discounts.shape[0]) - 1])
  return probs, targets, longest


def _append_terms(terms: list, c, gi, targets):
  """Target-only terms of one order: p_x <- a - s (b - g p_x) with D = s (1, 2, 3)."""
  base = np.array([0.0, 1.0, 2.0, 3.0])
  tot = c.sum(1).astype(np.float64)
  cx = c[np.arange(c.shape[0]), targets[gi]]
  terms.append((gi, cx / tot, base[np.minimum(cx, 3)] / tot, base[np.minimum(c, 3)].sum(1) / tot))


def high_order_perplexity_fn(index, seqs, with_n, cap, discounts, raw_from, above):
  """Perplexity on `seqs` as a function of s, with (D1, D2, D3+) = s (1, 2, 3) above order R.

  The counts are read once; f(s) replays the orders above R on the target's
  probability (a few vector operations per order).
  """
  terms = []
  probs, targets, _ = distributions(index, seqs, with_n, cap, discounts, raw_from, above,
                                    terms=terms)
  del probs
  # The probability before the orders above R.
  below, _, _ = distributions(index, seqs, with_n, cap, discounts, raw_from, "none")
  px0 = below[np.arange(targets.size), targets]

  def perplexity(s: float) -> float:
    px = px0.copy()
    for gi, a, bb, g in terms:
      px[gi] = a - s * (bb - g * px[gi])
    return float(np.exp(-np.log(px).mean()))

  return perplexity


def check_outcomes(stream: np.ndarray, with_n: bool, what: str = "scored data"):
  """UserError if a gene holds N but the model has no N outcome."""
  if not with_n and np.any(stream == tokens.N):
    raise UserError(f"{what} holds N, but this infinigram has no N outcome (it was built with "
                    "data.unknown_policy other than 'n'); use --config.data.unknown_policy=n")


# ------------------------------------------------------------------ the model
FORMAT = "dnagen_jax.infinigram"
FORMAT_VERSION = 1
HELDOUT_MAX_WINDOWS = 200_000  # held-out training windows scored by the search above order R


class InfiniGram:
  """An unbounded-order (or capped) Kneser-Ney model over a suffix array (module docstring)."""

  def __init__(self, index: SuffixIndex, with_n: bool, cap: int, raw_from: int,
               discounts, discount_search: dict | None = None, above: str = "longest"):
    self.index, self.with_n, self.above = index, bool(with_n), check_above(above)
    self.cap, self.raw_from = int(cap), int(raw_from)
    self.discounts = np.asarray(discounts, np.float64)  # [K, 3]: orders 1..K, row K above
    self.discount_search = discount_search
    self.outcomes = tokens.NUCLEOTIDES + ("N" if with_n else "")
    self.nucleotides_seen = index.num_nucleotides

  @property
  def top(self) -> int:
    """R: the order from which counts are raw (the KN R-gram's top order)."""
    return min(self.cap, self.raw_from) if self.cap else self.raw_from

  @property
  def name(self) -> str:
    return f"infinigram-kn-{self.cap if self.cap else 'inf'}"

  @property
  def num_params(self) -> int:
    """Symbols indexed (one suffix-array entry each)."""
    return int(self.index.text.size)

  @classmethod
  def fit(cls, seqs, cap: int = 0, raw_from: int = 21, with_n: bool = False,
          lower_discounts="auto", above: str = "longest") -> "InfiniGram":
    """Indexes `seqs` and chooses the discounts from them alone.

    Orders 1..R (R = min(cap, raw_from), or raw_from without a cap) get the KN
    R-gram's discounts (`lower_discounts` as in NGramModel.fit: 'auto', ''
    or 'D1,D2,D3' below R; the closed form at R). Orders above R share
    (D1, D2, D3+) = s (1, 2, 3), with s chosen on held-out training genes
    (even genes indexed, odd genes scored; golden-section search).
    """
    from dnagen_jax.ngram import model as ngram_model  # pylint: disable=g-import-not-at-top
    seqs = [s for s in seqs if len(s)]
    cap, raw_from = check_cap(cap), check_raw_from(raw_from)
    index = SuffixIndex.build(seqs)
    stream, _ = C.padded_stream(seqs, 1, 0)
    check_outcomes(stream, with_n, "training data")
    del stream
    top = min(cap, raw_from) if cap else raw_from
    if top > 1 and ngram_model._is_auto(lower_discounts):  # pylint: disable=protected-access
      lower, search = ngram_model.choose_lower_discounts(seqs, top, with_n)
    else:
      lower, search = ngram_model.check_discounts(lower_discounts), None
    rows = _lower_rows(lower, seqs, top, with_n)
    rows.append(ngram_model.kn_discounts(_top_counts(seqs, top)))
    model = cls(index, with_n, cap, raw_from, np.array(rows), {"lower": search}, above)
    if (not cap or cap > top) and model.above != "none":
      s, summary = model.choose_high_scale(seqs)
      model.discounts = np.vstack([model.discounts, s * np.array([[1.0, 2.0, 3.0]])])
      model.discount_search["above_top"] = summary
    return model

  def choose_high_scale(self, seqs) -> tuple[float, dict]:
    """s for the orders above R, on held-out training genes (never validation or test)."""
    part, held = seqs[0::2], seqs[1::2]
    if not part or not held:
      return 1.0, {"method": "none (fewer than 2 genes): s = 1"}
    stride = max(1, -(-sum(map(len, held)) // HELDOUT_MAX_WINDOWS))
    held = held[::stride]
    f = high_order_perplexity_fn(SuffixIndex.build(part), held, self.with_n, self.cap,
                                 self.discounts, self.raw_from, self.above)
    s = round(golden_section(f, 0.05, 1.0, 20), 4)
    return s, {"method": "held-out scale above the top order", "scale": s,
               "heldout_perplexity": f(s), "heldout_perplexity_s1": f(1.0),
               "fit_genes": len(part), "heldout_genes": len(held),
               "heldout_nucleotides": int(sum(map(len, held)))}

  # ---------------------------------------------------------------- scoring
  def distributions(self, seqs):
    """(probs [P, |O|], targets [P], longest match [P]) over the concatenated genes.

    The last result is kept: a mixture asks for the probabilities and then the
    longest matches of the same genes.
    """
    key = tuple(seqs)
    if getattr(self, "_last", (None,))[0] != key:
      self._last = (key, distributions(self.index, list(seqs), self.with_n, self.cap,
                                       self.discounts, self.raw_from, self.above))
    return self._last[1]

  def log_probs(self, seqs) -> list[np.ndarray]:
    """ln p(x_t | BOS x_<t) of every nucleotide: n float64 arrays [L_i]."""
    seqs = list(seqs)
    if not seqs:
      return []
    probs, targets, _ = self.distributions(seqs)
    lp = np.log(probs[np.arange(targets.size), targets])
    return np.split(lp, np.cumsum([len(s) for s in seqs])[:-1])

  def longest_match(self, seqs) -> list[np.ndarray]:
    """Length of the longest context of each x_t seen in training: n int64 arrays [L_i]."""
    seqs = list(seqs)
    if not seqs:
      return []
    _, _, longest = self.distributions(seqs)
    return np.split(longest, np.cumsum([len(s) for s in seqs])[:-1])

  def next_log_probs(self, prefixes) -> np.ndarray:
    """[n, |O|] ln p(o | BOS + prefix) for every outcome o of each prefix."""
    seqs = [p + self.outcomes[0] for p in prefixes]
    probs, _, _ = self.distributions(seqs)
    ends = np.cumsum([len(s) for s in seqs]) - 1
    return np.log(probs[ends])

  # ---------------------------------------------------------------- storage
  def header(self) -> dict:
    return {"format": FORMAT, "version": FORMAT_VERSION, "cap": self.cap,
            "raw_from": self.raw_from, "above": self.above, "with_n": self.with_n, "outcomes": self.outcomes,
            "nucleotides_seen": self.nucleotides_seen, "num_params": self.num_params,
            "discounts": self.discounts.tolist(), "discount_search": self.discount_search}

  def save(self, workdir: str, stem: str = "infinigram"):
    """Writes <stem>_text.npy, <stem>_sa.npy (suffix_array.py) and <stem>.json."""
    import json  # pylint: disable=g-import-not-at-top
    import os  # pylint: disable=g-import-not-at-top
    os.makedirs(workdir, exist_ok=True)
    self.index.save(workdir, stem)
    with open(os.path.join(workdir, stem + ".json"), "w") as f:
      json.dump(self.header(), f, indent=1)

  @classmethod
  def load(cls, workdir: str, stem: str = "infinigram") -> "InfiniGram":
    import json  # pylint: disable=g-import-not-at-top
    import os  # pylint: disable=g-import-not-at-top
    path = os.path.join(workdir, stem + ".json")
    if not os.path.exists(path):
      raise UserError(f"{workdir}: no saved infinigram ({stem}.json missing)")
    with open(path) as f:
      h = json.load(f)
    if h.get("format") != FORMAT or h.get("version") != FORMAT_VERSION:
      raise UserError(f"{path}: not an infinigram of format {FORMAT} version {FORMAT_VERSION}")
    return cls(SuffixIndex.load(workdir, stem), h["with_n"], h["cap"], h["raw_from"],
               h["discounts"], h.get("discount_search"), h.get("above", "longest"))


def _lower_rows(lower, seqs, top: int, with_n: bool) -> list:
  """Discount triples of orders 1..R-1: given, or the closed form of a KN R-gram's counts."""
  if top == 1:
    return []
  if lower is not None:
    return [list(d) for d in lower] if isinstance(lower[0], list) else [list(lower)] * (top - 1)
  from dnagen_jax.ngram import model as ngram_model  # pylint: disable=g-import-not-at-top
  ref = ngram_model.NGramModel.fit(seqs, top, "kneser_ney", with_n=with_n, lower_discounts=None)
  return [ref.levels[k].discounts.tolist() for k in range(1, top)]


def _top_counts(seqs, order: int) -> np.ndarray:
  """Raw counts of the distinct order-R windows (BOS-padded), for R's closed-form discounts."""
  lengths = np.fromiter((len(s) for s in seqs), np.int64, len(seqs))
  stream, starts = C.padded_stream(seqs, order - 1, 0)
  return C.unique_counts(C.window_codes(stream, order, C.ranges(starts, lengths)), order)[1]


ABOVE = ("longest", "branching", "none")


def check_above(above: str) -> str:
  if above not in ABOVE:
    raise UserError(f"infinigram_above={above!r} must be one of {', '.join(ABOVE)}")
  return above


def check_cap(cap) -> int:
  if int(cap) < 0:
    raise UserError(f"infinigram_max_order={cap} must be >= 0 (0 = no order cap)")
  return int(cap)


def check_raw_from(raw_from) -> int:
  if not 1 <= int(raw_from) <= C.MAX_ORDER:
    raise UserError(f"infinigram_raw_from={raw_from} must be in 1..{C.MAX_ORDER} (the orders "
                    f"up to it are a Kneser-Ney N-gram's, whose discounts need 64-bit codes)")
  return int(raw_from)
