"""Generation from the neural models: recurrent state stepping and the transformer's KV cache.

The cached path is one jitted program per (prompt length, sample length):
prefill BOS + prompt once (the recurrent models step through it, the
transformer runs it as one block into its KV cache), then a `lax.scan` of one
token a step, the draw included (`sampler.choose`), so nothing returns to the
host until the samples are done. The batch of samples is split over every
local device along the mesh's 'data' axis; the parameters are replicated
(`runtime.mesh_utils`, as for training and scoring).

The naive path (cache=False) is what users write by hand: every token runs
the model's training forward over the whole prefix (padded to the next power
of two, so few programs compile) and keeps the last position's logits. It is
the speed baseline and the reference the cached path is tested against.
"""

from __future__ import annotations

import functools
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from dnagen_jax.data import tokens
from dnagen_jax.generation import sampler as sampler_lib
from dnagen_jax.runtime import mesh_utils
from dnagen_jax.scoring.neural import NeuralScorer


def _prompt_tokens(prompt: str, batch: int) -> np.ndarray:
  """BOS + prompt for every row: [batch, 1 + len(prompt)] int32."""
  row = np.concatenate([[tokens.BOS], tokens.encode(prompt)]).astype(np.int32)
  return np.tile(row, (batch, 1))


def _bucket(length: int, cap: int | None) -> int:
  """The padded length the naive loop runs at: the next power of two >= length (>= 16), <= cap."""
  b = max(16, 1 << (length - 1).bit_length())
  return min(b, cap) if cap else b


class NeuralSampler(sampler_lib.Sampler):
  """Samples from an LSTM, GRU or transformer (a `NeuralScorer`'s parameters and mesh)."""

  def __init__(self, scorer: NeuralScorer, batch_size: int = 128):
    self.config, self.graphdef, self.params, self.mesh = (scorer.config, scorer.graphdef,
                                                          scorer.params, scorer.mesh)
    model_config = self.config.model
    self.name = model_config.name
    self.outcomes = tokens.NUCLEOTIDES + ("N" if self.config.data.unknown_policy == "n" else "")
    self.recurrent = model_config.name in ("lstm", "gru")
    limited = not self.recurrent or model_config.position_embedding
    self.max_tokens = int(model_config.max_len) if limited else None
    self.batch_size = mesh_utils.round_to_devices(batch_size, self.mesh)
    self._rep = mesh_utils.replicated(self.mesh)
    self.params = jax.device_put(self.params, self._rep)  # whole on every device (train.fsdp > 1 splits them)
    self._shard = mesh_utils.batch_sharded(self.mesh)

  # ---------------------------------------------------------------- the cached path
  def _prefill(self, model, prompt: jax.Array, length: int):
    """prompt [b, P] (BOS first) -> (state with room for `length` positions, logits [b, V] after its last token)."""
    b, p = prompt.shape
    if self.recurrent:
      def step(carry, xs):
        token, position = xs
        carry, logits = model.decode_step(carry, token, position)
        return carry, logits
      carry, logits = jax.lax.scan(step, model.initial_carry(b), (prompt.T, jnp.arange(p)))
      return carry, logits[-1]
    cache = model.init_cache(b, length)
    logits, cache = model.decode(prompt, 0, cache)
    return cache, logits[:, -1]

  def _step(self, model, state, token: jax.Array, position):
    """token [b] at input `position` -> (state, logits [b, V])."""
    if self.recurrent:
      return model.decode_step(state, token, position)
    logits, state = model.decode(token[:, None], position, state)
    return state, logits[:, 0]

  @functools.lru_cache(maxsize=None)
  def _program(self, prompt_len: int, max_length: int, controls: sampler_lib.Controls, record: bool):
    """The jitted generation: (params, prompt [b, P], keys [b]) -> (tokens [b, L], log-probs [b, L, V] or None)."""
    allowed = self.allowed

    def run(params, prompt, keys):
      model = nnx.merge(self.graphdef, params)
      state, logits = self._prefill(model, prompt, prompt_len + max_length)
      logp = jax.nn.log_softmax(logits, axis=-1)
      first = sampler_lib.choose(keys, 0, logp, allowed, controls)
      done = first == tokens.EOS

      def body(carry, t):
        state, token, done = carry
        state, logits = self._step(model, state, token, prompt_len + t - 1)
        logp = jax.nn.log_softmax(logits, axis=-1)
        nxt = jnp.where(done, tokens.PAD, sampler_lib.choose(keys, t, logp, allowed, controls))
        return (state, nxt, done | (nxt == tokens.EOS)), (nxt, logp if record else None)

      _, (rest, rest_logp) = jax.lax.scan(body, (state, first, done), jnp.arange(1, max_length))
      toks = jnp.concatenate([first[:, None], rest.T], axis=1)
      if not record:
        return toks, None
      return toks, jnp.concatenate([logp[:, None], jnp.swapaxes(rest_logp, 0, 1)], axis=1)

    return jax.jit(run, in_shardings=(self._rep, self._shard, self._shard),
                   out_shardings=(self._shard, self._shard))

  @functools.lru_cache(maxsize=None)
  def _prefill_program(self):
    """(params, prefixes [b, P]) -> log-probabilities [b, V] after them, by the cached path."""
    def run(params, prompt):
      model = nnx.merge(self.graphdef, params)
      return jax.nn.log_softmax(self._prefill(model, prompt, prompt.shape[1])[1], axis=-1)
    return jax.jit(run, in_shardings=(self._rep, self._shard), out_shardings=self._shard)

  # ---------------------------------------------------------------- the naive path
  @functools.lru_cache(maxsize=None)
  def _forward(self):
    """(params, inputs [b, T], last [b]) -> log-probabilities [b, V] at position last, by the full forward."""
    def run(params, inputs, last):
      logits = nnx.merge(self.graphdef, params)(inputs)
      return jax.nn.log_softmax(jnp.take_along_axis(logits, last[:, None, None], axis=1)[:, 0], axis=-1)
    return jax.jit(run, in_shardings=(self._rep, self._shard, self._shard), out_shardings=self._shard)

  def _naive_log_probs(self, inputs: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """inputs [b, T] (BOS first, right-padded), lengths [b] tokens used -> [b, V] after each row's last."""
    width = _bucket(int(lengths.max()), self.max_tokens)
    padded = np.zeros((inputs.shape[0], width), np.int32)
    padded[:, :min(width, inputs.shape[1])] = inputs[:, :width]
    put = lambda x: jax.device_put(x, self._shard)
    return np.asarray(self._forward()(self.params, put(padded), put(lengths.astype(np.int32) - 1)))

  def warm_up_naive(self, num_samples: int, max_length: int, controls: sampler_lib.Controls,
                    prompt_len: int = 0) -> None:
    """Compiles every padded length the naive loop will run at (so that timing it leaves compilation out)."""
    b = mesh_utils.round_to_devices(min(num_samples, self.batch_size), self.mesh)
    widths = sorted({_bucket(1 + prompt_len + t, self.max_tokens) for t in range(max_length)})
    for w in widths:
      logp = self._naive_log_probs(np.full((b, w), tokens.A, np.int32), np.full(b, w))
    keys = sampler_lib.sample_keys(0, 0, 0, b)
    sampler_lib.jitted_choose(tuple(self.allowed), controls)(keys, 0, logp)

  # ---------------------------------------------------------------- the interface
  def _padded(self, rows: np.ndarray) -> tuple[np.ndarray, int]:
    """Rows [n, ...] padded (repeating row 0) to a multiple of the device count."""
    n = rows.shape[0]
    b = mesh_utils.round_to_devices(n, self.mesh)
    return np.concatenate([rows, np.repeat(rows[:1], b - n, axis=0)]), n

  def next_log_probs(self, prefixes: Sequence[str], cache: bool = True) -> np.ndarray:
    prefixes = [self.check_prompt(p, "prefix") for p in prefixes]
    out = []
    for p in prefixes:  # one program per prefix length; tests and small checks only
      rows, n = self._padded(_prompt_tokens(p, 1))
      if cache:
        lp = self._prefill_program()(self.params, jax.device_put(rows, self._shard))
      else:
        lp = self._naive_log_probs(rows, np.full(rows.shape[0], rows.shape[1]))
      out.append(np.asarray(lp, np.float64)[0])
    return np.stack(out)

  def _generate(self, prompt, keys, max_length, controls, cache, record):
    n = keys.shape[0]
    b = mesh_utils.round_to_devices(n, self.mesh)
    # Extra rows (to fill every device) reuse the first sample's key; they are dropped.
    keys = jnp.concatenate([keys, jnp.repeat(keys[:1], b - n)])
    prompt_rows = _prompt_tokens(prompt, b)
    if cache:
      program = self._program(prompt_rows.shape[1], max_length, controls, record)
      toks, logp = program(self.params, jax.device_put(prompt_rows, self._shard),
                           jax.device_put(keys, self._shard))
      return sampler_lib.Samples(np.asarray(toks)[:n], None if logp is None else np.asarray(logp)[:n])
    return self._generate_naive(prompt_rows, keys, max_length, controls, record, n)

  def _generate_naive(self, prompt_rows, keys, max_length, controls, record, n):
    """The baseline: every token recomputes the whole prefix (host loop, one forward a token)."""
    b, p = prompt_rows.shape
    inputs = np.zeros((b, p + max_length), np.int32)
    inputs[:, :p] = prompt_rows
    choose = sampler_lib.jitted_choose(tuple(self.allowed), controls)
    done = np.zeros(b, bool)
    toks, logps = np.zeros((b, max_length), np.int32), []
    for t in range(max_length):
      logp = self._naive_log_probs(inputs, np.full(b, p + t))
      nxt = np.where(done, tokens.PAD, np.asarray(choose(keys, t, logp)))
      done |= nxt == tokens.EOS
      toks[:, t] = inputs[:, p + t] = nxt
      if record:
        logps.append(logp)
    return sampler_lib.Samples(toks[:n], np.stack(logps, axis=1)[:n] if record else None)
