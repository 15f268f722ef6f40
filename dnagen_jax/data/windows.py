"""Records -> segments -> windows: where windows start, pure numpy, no files.

A record is cut into *segments*: the intervals of one split (`splits`), cut
again at long runs of N (`n_runs`). Windows never cross a segment's ends, so
a window never holds nucleotides of two splits.

Training windows (`train_tiles`): starts a, a+s, a+2s, ... (s = data.stride)
of windows of w = data.window nucleotides, the last one moved back to end at
the segment's end; each has a *jitter* range j: in epoch e it starts at
start + u with u drawn in [0, j] from (seed, epoch, window) (`jittered`), so
the model does not see the same cut every epoch, and the window still lies in
its segment. Validation and test windows (`eval_tiles`) tile each segment
once without overlap (the last may be shorter), so every held-out nucleotide
is scored exactly once. A segment shorter than w is one window, whole (the
gene case: window 0 means every segment whole).
"""

from __future__ import annotations

import numpy as np

from dnagen_jax.data import tokens


def n_positions(toks: np.ndarray) -> np.ndarray:
  """Sorted positions [k] of N in uint8 tokens [L] (LOWER bit allowed)."""
  return np.flatnonzero((toks & 7) == (tokens.N & 7))


def n_runs(n_pos: np.ndarray, min_run: int) -> np.ndarray:
  """[r, 2] (start, end) of the runs of consecutive N at least `min_run` long."""
  if n_pos.size == 0 or min_run <= 0:
    return np.zeros((0, 2), np.int64)
  breaks = np.flatnonzero(np.diff(n_pos) != 1)
  starts = np.concatenate([[n_pos[0]], n_pos[breaks + 1]])
  ends = np.concatenate([n_pos[breaks], [n_pos[-1]]]) + 1
  keep = ends - starts >= min_run
  return np.stack([starts[keep], ends[keep]], 1).astype(np.int64)


def subtract(intervals: np.ndarray, holes: np.ndarray) -> np.ndarray:
  """[m, 2] sorted, disjoint intervals minus sorted, disjoint `holes` [r, 2]: [k, 2]."""
  out = []
  for a, b in intervals:
    lo = np.searchsorted(holes[:, 1], a, side="right")   # first hole ending after a
    for h0, h1 in holes[lo:]:
      if h0 >= b:
        break
      if h0 > a:
        out.append((a, h0))
      a = max(a, h1)
    if a < b:
      out.append((a, b))
  return np.asarray(out, np.int64).reshape(-1, 2)


def train_tiles(a: int, b: int, window: int, stride: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Training windows of segment [a, b): starts [n], lengths [n], jitter ranges [n] (int64).

  window 0: the segment whole. Start + jitter + length <= b always.
  """
  length = b - a
  if window <= 0 or length <= window:
    return np.asarray([a]), np.asarray([length]), np.asarray([0])
  starts = np.arange(a, b - window + stride, stride, dtype=np.int64)
  starts = np.minimum(starts, b - window)
  starts = np.unique(starts)
  jitter = np.minimum(stride - 1, (b - window) - starts)
  return starts, np.full(starts.shape, window, np.int64), jitter


def eval_tiles(a: int, b: int, window: int) -> tuple[np.ndarray, np.ndarray]:
  """Validation/test windows of [a, b): starts [n], lengths [n]; disjoint, covering [a, b)."""
  if window <= 0 or b - a <= window:
    return np.asarray([a]), np.asarray([b - a])
  starts = np.arange(a, b, window, dtype=np.int64)
  return starts, np.minimum(window, b - starts)


def n_counts(n_pos: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
  """Number of N inside each window [n] (n_pos sorted)."""
  return np.searchsorted(n_pos, starts + lengths) - np.searchsorted(n_pos, starts)


def _mix(x: np.ndarray) -> np.ndarray:
  """splitmix64 finaliser on uint64 [n]: a fixed, well-spread hash."""
  with np.errstate(over="ignore"):
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def draws(seed: int, epoch: int, index, salt: int) -> np.ndarray:
  """uint64 [n]: a pure function of (seed, epoch, window index, salt); no state."""
  with np.errstate(over="ignore"):
    key = np.uint64((seed * 1000003 + epoch * 7919 + salt * 104729) % (1 << 63))
    return _mix(np.asarray(index, np.uint64) * np.uint64(0x9E3779B97F4A7C15) + key)


def jittered(starts: np.ndarray, jitter: np.ndarray, seed: int, epoch: int, index) -> np.ndarray:
  """Epoch `epoch`'s starts of training windows `index`: start + u, u uniform in [0, jitter]."""
  u = draws(seed, epoch, index, salt=1) % (np.asarray(jitter, np.uint64) + np.uint64(1))
  return np.asarray(starts, np.int64) + u.astype(np.int64)


def flipped(seed: int, epoch: int, index) -> np.ndarray:
  """bool [n]: which training windows are read reverse-complemented in `epoch` (probability 1/2)."""
  return (draws(seed, epoch, index, salt=2) >> np.uint64(11)) % np.uint64(2) == 1
