"""Statistics of a set of sequences, each against a plain reference in tests/test_generation.py.

  kmer_counts / js_divergence: k-mer spectra and the Jensen-Shannon divergence between two of them
  gc_fraction: G + C share of the A/C/G/T letters
  longest_orf: the longest ATG ... stop open reading frame on the given strand
  codon_counts: codon usage of a set of reading frames
  longest_matches: for each query, its longest exact substring match in a corpus (suffix array)
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

_LUT = np.full(256, 255, np.uint8)   # A C G T -> 0..3, anything else 255
for _i, _ch in enumerate("ACGT"):
  _LUT[ord(_ch)] = _i
STOPS = ("TAA", "TAG", "TGA")
CODONS = [a + b + c for a in "ACGT" for b in "ACGT" for c in "ACGT"]  # index = base-4 code


def _symbols(seqs: Sequence[str]) -> np.ndarray:
  """All sequences end to end with a 255 between them: uint8 [sum(len) + n]."""
  return _LUT[np.frombuffer("#".join(seqs).encode("latin-1") + b"#", np.uint8)]


def kmer_counts(seqs: Sequence[str], k: int) -> np.ndarray:
  """Counts of the 4^k k-mers over A, C, G, T (windows across N or gene ends skipped): int64 [4^k]."""
  sym = _symbols(seqs)
  m = sym.size - k + 1
  if m <= 0:
    return np.zeros(4 ** k, np.int64)
  bad = np.concatenate([[0], np.cumsum(sym == 255)])
  ok = bad[k:k + m] - bad[:m] == 0
  code = np.zeros(m, np.int64)
  for j in range(k):
    code = code * 4 + sym[j:j + m].astype(np.int64)
  return np.bincount(code[ok], minlength=4 ** k)


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
  """Jensen-Shannon divergence in bits (0 .. 1) between two count vectors of the same shape."""
  p = np.asarray(p, np.float64) / max(np.sum(p), 1)
  q = np.asarray(q, np.float64) / max(np.sum(q), 1)
  m = (p + q) / 2

  def kl(a):
    nz = a > 0
    return float(np.sum(a[nz] * np.log2(a[nz] / m[nz])))

  return 0.5 * kl(p) + 0.5 * kl(q)


def gc_fraction(seq: str) -> float:
  """(G + C) / (A + C + G + T); nan for a sequence without any of them."""
  sym = _LUT[np.frombuffer(seq.encode("latin-1"), np.uint8)]
  acgt = np.count_nonzero(sym < 4)
  return float(np.count_nonzero((sym == 1) | (sym == 2)) / acgt) if acgt else float("nan")


def longest_orf(seq: str) -> tuple[int, int]:
  """(start, length in nt) of the longest ATG ... stop frame (stop included) on this strand; (0, 0) if none."""
  starts = {f: [] for f in range(3)}
  stops = {f: [] for f in range(3)}
  for i in range(len(seq) - 2):
    codon = seq[i:i + 3]
    if codon == "ATG":
      starts[i % 3].append(i)
    elif codon in STOPS:
      stops[i % 3].append(i)
  best = (0, 0)
  for f in range(3):
    if not starts[f] or not stops[f]:
      continue
    st, sp = np.asarray(starts[f]), np.asarray(stops[f])
    nxt = np.searchsorted(sp, st)          # the first in-frame stop after each ATG
    has = nxt < sp.size
    if has.any():
      lengths = sp[nxt[has]] + 3 - st[has]
      i = int(np.argmax(lengths))
      if lengths[i] > best[1]:
        best = (int(st[has][i]), int(lengths[i]))
  return best


def codon_counts(frames: Sequence[str]) -> np.ndarray:
  """Codon usage of reading frames (each read from its first letter; codons with N skipped): int64 [64]."""
  out = np.zeros(64, np.int64)
  for f in frames:
    sym = _LUT[np.frombuffer(f[:len(f) // 3 * 3].encode("latin-1"), np.uint8)].reshape(-1, 3)
    sym = sym[(sym < 4).all(axis=1)].astype(np.int64)
    out += np.bincount(sym[:, 0] * 16 + sym[:, 1] * 4 + sym[:, 2], minlength=64)
  return out


def _since_last(e: np.ndarray, reset: np.ndarray) -> np.ndarray:
  """r[i] = min(e[p..i]) for p the last index <= i with reset[p] (0 before the first reset)."""
  seg = np.cumsum(reset).astype(np.int64)
  big = int(e.max(initial=0)) + 1
  # Each new segment starts `big` lower, so the running minimum restarts there.
  r = np.minimum.accumulate(e.astype(np.int64) - seg * big) + seg * big
  return np.where(seg > 0, r, 0)


def longest_matches(queries: Sequence[str], corpus: Sequence[str]) -> np.ndarray:
  """For each query, the length of its longest substring that occurs in some corpus sequence: int64 [n].

  One suffix array (divsufsort) over corpus#...#queries#, with its LCP array
  (Kasai). A query suffix's longest match in the corpus is its longest common
  prefix with the nearest corpus suffix above or below it in suffix order,
  the minimum LCP in between; matches are cut at the '#' separators.
  """
  import pydivsufsort  # pylint: disable=g-import-not-at-top
  text = ("#".join(corpus) + "#" + "#".join(queries) + "#").encode("latin-1")
  arr = np.frombuffer(text, np.uint8).copy()
  owner = np.full(arr.size, -1, np.int64)                       # -1: corpus (or separator)
  lengths = np.fromiter((len(q) + 1 for q in queries), np.int64, len(queries))
  q0 = sum(len(c) + 1 for c in corpus)
  owner[q0:] = np.repeat(np.arange(len(queries)), lengths)
  seps = np.flatnonzero(arr == ord("#"))
  dist = seps[np.searchsorted(seps, np.arange(arr.size))] - np.arange(arr.size)  # letters before the next '#'
  sa = pydivsufsort.divsufsort(arr).astype(np.int64)
  lcp = pydivsufsort.kasai(arr, sa).astype(np.int64)[:-1]       # lcp[i] = LCP(sa[i], sa[i + 1])
  e = np.minimum(lcp, np.minimum(dist[sa[:-1]], dist[sa[1:]]))
  in_corpus = (owner[sa] == -1) & (arr[sa] != ord("#"))
  # Above: the nearest corpus suffix at an index p < j: min(e[p .. j-1]).
  above = np.concatenate([[0], _since_last(e, in_corpus[:-1])])
  # Below: the same on the reversed order.
  below = np.concatenate([_since_last(e[::-1], in_corpus[:0:-1])[::-1], [0]])
  best = np.zeros(len(queries), np.int64)
  is_query = owner[sa] >= 0
  np.maximum.at(best, owner[sa][is_query], np.maximum(above, below)[is_query])
  return best
