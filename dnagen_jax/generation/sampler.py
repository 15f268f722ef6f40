"""One sampling interface for every model family, and the controls they share.

`Sampler` is to generation what `scoring.Scorer` is to scoring: each family
(LSTM/GRU carrying their state, the transformer with a KV cache, N-grams
reading their tables) implements two things, the model's next-token
log-probabilities after a prefix and a batched generation loop; the controls
(temperature, top-k, top-p, greedy) and the random draws are here, once.

What a sampler draws from at each step, for the model's log-probabilities
logp [V] over the whole vocabulary (PAD BOS EOS A C G T N):
  1. keep the outcomes this model may emit (`allowed`: A C G T, N when it was
     trained with N, EOS when it was trained with EOS); specials never come out;
  2. divide by the temperature and renormalise;
  3. top-k: keep the k most likely (ties at the k-th are kept too);
  4. top-p: keep the smallest most-likely set whose mass reaches p;
  5. renormalise and draw; greedy takes the most likely allowed outcome.
At temperature 1 without top-k/top-p this is exp(logp) over the allowed
outcomes, renormalised: the scorer's probabilities (tests/test_generation.py).

Randomness: sample i of prompt j draws its step t with
fold_in(fold_in(fold_in(key(seed), j), i), t), so a sample does not depend on
the batch size, the device count or the other samples: the same seed gives
the same FASTA, byte for byte.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from dnagen_jax.data import tokens
from dnagen_jax.errors import UserError


@dataclasses.dataclass(frozen=True)
class Controls:
  """How the next token is chosen from the model's distribution (hashable: static under jit)."""
  temperature: float = 1.0  # > 0 unless greedy; < 1 sharpens, > 1 flattens
  top_k: int | None = None  # keep the k most likely outcomes (None = all)
  top_p: float = 1.0        # keep the smallest set with this much mass, in (0, 1]
  greedy: bool = False      # always the most likely outcome (temperature, top-k and top-p unused)
  seed: int = 0             # the same seed gives the same samples

  def check(self) -> "Controls":
    """Raises a one-line UserError for a control out of range."""
    if not 0.0 < self.top_p <= 1.0:
      raise UserError(f"--top_p={self.top_p} must be in (0, 1]")
    if self.top_k is not None and self.top_k < 1:
      raise UserError(f"--top_k={self.top_k} must be >= 1 (leave it out for no top-k filter)")
    if not self.greedy and not (self.temperature > 0 and math.isfinite(self.temperature)):
      raise UserError(f"--temperature={self.temperature} must be > 0 (or use --greedy)")
    return self

  def describe(self) -> str:
    if self.greedy:
      return f"greedy=True seed={self.seed}"
    return (f"temperature={self.temperature:g} top_k={self.top_k} top_p={self.top_p:g} "
            f"greedy=False seed={self.seed}")


def sampling_log_probs(logp: jax.Array, allowed: np.ndarray, controls: Controls) -> jax.Array:
  """The distribution drawn from: logp [..., V] (the model's) -> log-probabilities [..., V].

  allowed [V] bool (numpy, static). Entries outside the kept set are -inf.
  """
  x = jnp.where(allowed, logp.astype(jnp.float32), -jnp.inf)
  # A model may give every allowed outcome probability 0 (an MLE N-gram after an
  # unseen context): draw uniformly over the allowed outcomes then.
  x = jnp.where(jnp.all(x == -jnp.inf, axis=-1, keepdims=True), jnp.where(allowed, 0.0, -jnp.inf), x)
  x = jax.nn.log_softmax(x / controls.temperature, axis=-1)
  if controls.top_k is not None and controls.top_k < int(allowed.sum()):
    kth = jnp.sort(x, axis=-1)[..., -controls.top_k][..., None]
    x = jnp.where(x >= kth, x, -jnp.inf)
    x = jax.nn.log_softmax(x, axis=-1)
  if controls.top_p < 1.0:
    desc = -jnp.sort(-x, axis=-1)
    mass_before = jnp.cumsum(jnp.exp(desc), axis=-1) - jnp.exp(desc)
    # The kept set: every outcome whose more-likely predecessors hold < p of the mass.
    cut = jnp.min(jnp.where(mass_before < controls.top_p, desc, jnp.inf), axis=-1, keepdims=True)
    x = jax.nn.log_softmax(jnp.where(x >= cut, x, -jnp.inf), axis=-1)
  return x


def choose(keys: jax.Array, step, logp: jax.Array, allowed: np.ndarray, controls: Controls) -> jax.Array:
  """The next token of each sample: keys [n] (one per sample), logp [n, V] -> tokens [n] int32."""
  if controls.greedy:
    return jnp.argmax(jnp.where(allowed, logp, -jnp.inf), axis=-1).astype(jnp.int32)
  x = sampling_log_probs(logp, allowed, controls)
  draw = lambda key, row: jax.random.categorical(jax.random.fold_in(key, step), row)
  return jax.vmap(draw)(keys, x).astype(jnp.int32)


@functools.lru_cache(maxsize=None)
def jitted_choose(allowed: tuple, controls: Controls):
  """`choose` jitted for host loops (the N-gram sampler, the naive loops): (keys, step, logp) -> tokens."""
  mask = np.asarray(allowed, bool)
  return jax.jit(lambda keys, step, logp: choose(keys, step, logp, mask, controls))


def sample_keys(seed: int, stream: int, first: int, n: int) -> jax.Array:
  """[n] keys of samples first .. first + n - 1 of prompt `stream`."""
  base = jax.random.fold_in(jax.random.key(seed), stream)
  return jax.vmap(lambda i: jax.random.fold_in(base, i))(jnp.arange(first, first + n))


@dataclasses.dataclass
class Samples:
  """Generated continuations of one prompt.

  tokens: int [n, max_length] (PAD after an EOS); log_probs: float [n, max_length, V],
  the model's log-probabilities at each step before the controls (only when recorded).
  """
  tokens: np.ndarray
  log_probs: np.ndarray | None = None

  def sequences(self) -> list[str]:
    """The continuations as strings over A, C, G, T (N), cut at EOS."""
    out = []
    for row in self.tokens:
      stop = np.flatnonzero(row < tokens.A)
      out.append(tokens.decode(row[:stop[0]] if stop.size else row))
    return out


class Sampler:
  """Base class: subclasses implement `next_log_probs` and `_generate`.

  Attributes: name (the model), outcomes ('ACGT' or 'ACGTN'), eos (whether
  EOS is an outcome, which ends a sample), max_tokens (the longest BOS +
  prompt + sample the model takes, None for no limit), batch_size (samples
  generated at once).
  """

  name: str = "sampler"
  outcomes: str = tokens.NUCLEOTIDES
  eos: bool = False
  max_tokens: int | None = None
  batch_size: int = 128

  @property
  def allowed(self) -> np.ndarray:
    """[V] bool: the tokens this sampler may emit."""
    mask = np.zeros(tokens.VOCAB_SIZE, bool)
    mask[tokens.encode(self.outcomes)] = True
    mask[tokens.EOS] = self.eos
    return mask

  def check_prompt(self, prompt: str, where: str = "--prompts") -> str:
    """The prompt upper-cased (U read as T); UserError naming the first character this model cannot take."""
    text = prompt.upper().replace("U", "T")
    for i, ch in enumerate(text):
      if ch not in self.outcomes:
        raise UserError(f"{where}: invalid character {prompt[i]!r} at position {i + 1} "
                        f"(prompts for this model hold only {', '.join(self.outcomes)})")
    return text

  def check_length(self, prompt: str, max_length: int) -> None:
    if max_length < 1:
      raise UserError(f"--max_length={max_length} must be >= 1")
    # BOS + prompt + all but the last sampled token are inputs at positions < max_tokens.
    if self.max_tokens is not None and 1 + len(prompt) + max_length - 1 > self.max_tokens:
      raise UserError(f"--max_length={max_length} after a prompt of {len(prompt)} nt needs "
                      f"{len(prompt) + max_length} positions; {self.name} has {self.max_tokens} "
                      f"(model.max_len)")

  def next_log_probs(self, prefixes: Sequence[str], cache: bool = True) -> np.ndarray:
    """ln p(next token | BOS + prefix) over the whole vocabulary: [n, V] float64.

    cache=True takes the generation path (state / KV cache / table context);
    cache=False recomputes the full prefix. Tokens the model cannot give are -inf.
    """
    raise NotImplementedError

  def _generate(self, prompt: str, keys: jax.Array, max_length: int, controls: Controls,
                cache: bool, record: bool) -> Samples:
    """One batch: keys [b] -> Samples of b continuations of `prompt`."""
    raise NotImplementedError

  def generate(self, prompt: str, num_samples: int, max_length: int, controls: Controls,
               stream: int = 0, cache: bool = True, record: bool = False) -> Samples:
    """num_samples continuations of `prompt` (a normalized string, '' for none), batch_size at a time.

    cache=False is the naive loop that recomputes the whole prefix for every
    token (the speed baseline and the reference of the cached path).
    record=True keeps the model's log-probabilities of every step.
    """
    controls.check()
    prompt = self.check_prompt(prompt)
    self.check_length(prompt, max_length)
    parts = []
    for first in range(0, num_samples, self.batch_size):
      n = min(self.batch_size, num_samples - first)
      parts.append(self._generate(prompt, sample_keys(controls.seed, stream, first, n), max_length,
                                  controls, cache, record))
    return Samples(np.concatenate([p.tokens for p in parts]),
                   np.concatenate([p.log_probs for p in parts]) if record else None)
