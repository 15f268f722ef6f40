"""Sampling from an N-gram model's tables.

The cached path keeps each sample's context (its last n-1 symbols, BOS-padded,
packed as the tables' codes) and looks up the |O| windows context + o of
every sample at once per step (`NGramModel.window_probs`); the draw is
`sampler.choose`, the one every family uses. The naive path
(cache=False) rescores the whole prefix + o for every token
(`NGramModel.next_log_probs`). The infinigram's context has no bound, so
`InfiniGramSampler` always takes that path: each step looks up every
prefix whole in the suffix array (its cost grows with the prefix).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from dnagen_jax.data import tokens
from dnagen_jax.generation import sampler as sampler_lib
from dnagen_jax.ngram import codes as C
from dnagen_jax.ngram.model import NGramModel


class NGramSampler(sampler_lib.Sampler):
  """Samples from an `NGramModel` (outcomes A, C, G, T, and N when it has N)."""

  def __init__(self, model: NGramModel, batch_size: int = 1024):
    self.model, self.name, self.outcomes = model, model.name, model.outcomes
    self.batch_size = batch_size
    self._outcome_tokens = tokens.encode(self.outcomes).astype(np.uint64)   # [|O|]

  def _start(self, prefixes: Sequence[str]) -> np.ndarray:
    """Packed contexts [n] uint64 after BOS^(n-1) + prefix."""
    ctx = np.zeros(len(prefixes), np.uint64)
    for i, p in enumerate(prefixes):
      for tok in np.concatenate([np.full(self.model.order - 1, tokens.BOS), tokens.encode(p)]):
        ctx[i] = self._push(ctx[i], tok)
    return ctx

  def _push(self, ctx, tok):
    """ctx with `tok` appended, keeping the last n-1 symbols."""
    return ((ctx << np.uint64(C.BITS)) | np.uint64(tok)) & C.mask(self.model.order - 1)

  def _log_probs(self, ctx: np.ndarray) -> np.ndarray:
    """Contexts [n] -> [n, V] ln p over the vocabulary (-inf outside the outcomes)."""
    windows = (ctx[:, None] << np.uint64(C.BITS)) | self._outcome_tokens[None, :]
    p = self.model.window_probs(windows.ravel()).reshape(windows.shape)
    out = np.full((ctx.size, tokens.VOCAB_SIZE), -np.inf)
    with np.errstate(divide="ignore"):
      out[:, self._outcome_tokens.astype(np.int64)] = np.log(p)
    return out

  def _naive(self, prefixes: Sequence[str]) -> np.ndarray:
    out = np.full((len(prefixes), tokens.VOCAB_SIZE), -np.inf)
    out[:, self._outcome_tokens.astype(np.int64)] = self.model.next_log_probs(list(prefixes))
    return out

  def next_log_probs(self, prefixes: Sequence[str], cache: bool = True) -> np.ndarray:
    prefixes = [self.check_prompt(p, "prefix") for p in prefixes]
    return self._log_probs(self._start(prefixes)) if cache else self._naive(prefixes)

  def _generate(self, prompt, keys, max_length, controls, cache, record):
    n = keys.shape[0]
    choose = sampler_lib.jitted_choose(tuple(self.allowed), controls)
    ctx = np.repeat(self._start([prompt]), n) if cache else None
    texts = [prompt] * n
    toks, logps = np.zeros((n, max_length), np.int32), []
    for t in range(max_length):
      logp = self._log_probs(ctx) if cache else self._naive(texts)
      nxt = np.asarray(choose(keys, t, logp.astype(np.float32)))
      toks[:, t] = nxt
      if cache:
        ctx = self._push(ctx, nxt.astype(np.uint64))
      else:
        texts = [s + tokens.ID_TO_CHAR[int(x)] for s, x in zip(texts, nxt)]
      if record:
        logps.append(logp)
    return sampler_lib.Samples(toks, np.stack(logps, axis=1) if record else None)


class InfiniGramSampler(NGramSampler):
  """Samples from an `InfiniGram`: every step scores the whole prefix + o (no bounded context to cache)."""

  def next_log_probs(self, prefixes: Sequence[str], cache: bool = True) -> np.ndarray:
    return self._naive([self.check_prompt(p, "prefix") for p in prefixes])

  def _generate(self, prompt, keys, max_length, controls, cache, record):
    return super()._generate(prompt, keys, max_length, controls, False, record)
