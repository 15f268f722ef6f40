"""Training FLOPs and parameter counts of the neural families, from their configs alone.

What one optimizer step of this code computes, counted as 2 FLOPs per
multiply-add of every matrix product (forward and backward), the formulas of
docs/studies.md "Compute". Symbols: V vocabulary, E embedding width, H
recurrent units, G gates (LSTM 4, GRU 3), n layers, d = E (transformer width),
a = heads x head_dim, F = mlp_dim, B sequences per step, T tokens of a sequence.

Per token, training (forward 2 x, backward 4 x the multiply-adds of a
product whose weight and input both get gradients):
  LSTM/GRU   4 V G H                  one-hot x (Emb W_ih) table, its gradient
           + 6 G H^2 n                h W_hh, dh, dW_hh in every layer
           + 6 H G H (n - 1)          input projections of layers 2..n
           + 6 H V                    head
  transformer 6 n d (3a + a + 2F) + 6 d V
Per sequence of T tokens (transformer): attention over the S(T) query-key
pairs its block tiling computes (S = T^2 with one block; query block [s, e)
meets keys 0..e-1): forward 2 products (q k^T, p v), backward 5 (the scores
recomputed, dv, dp, dq, dk): 14 a S(T) per layer.
Per step (recurrent): the table Emb W_ih, 6 V E G H; with learned positions
also their projection, 6 T E G H. Element-wise work (gates, layer norms,
softmax, Adam) is left out: it is what the XLA check's tolerance covers.
Embedding lookups (a gather) cost no FLOPs here.
"""

from __future__ import annotations

import numpy as np

GATES = {"lstm": 4, "gru": 3}
NEURAL = ("lstm", "gru", "transformer")


def _head_dim(m) -> int:
  return m.head_dim or m.embed_dim // m.num_heads


def params(model_config, vocab_size: int) -> tuple[int, int]:
  """(all parameters, parameters without the embedding tables) of a neural model.

  The embedding tables are the token embedding and the learned positions; the
  head (the output projection) counts as a non-embedding parameter.
  """
  m, v = model_config, vocab_size
  e = m.embed_dim
  if m.name in GATES:
    g, h, n = GATES[m.name], m.hidden_dim, m.num_layers
    embed = v * e + (m.max_len * e if m.position_embedding else 0)
    pair = (g if m.name == "lstm" else 2) * h if m.get("bias_pair", False) else 0  # PyTorch's b_hh apart
    layers = sum((i_dim + h) * g * h + g * h + (h if m.name == "gru" else 0) + pair
                 for i_dim in [e] + [h] * (n - 1))
    rest = layers + h * v + v
  elif m.name == "transformer":
    a, f = m.num_heads * _head_dim(m), m.mlp_dim
    embed = v * e + m.max_len * e
    block = (e * 3 * a + 3 * a) + (a * e + e) + (e * f + f) + (f * e + e) + 4 * e  # 2 layer norms
    rest = m.num_layers * block + 2 * e + e * v + v
  else:
    raise ValueError(f"no FLOP count for model {m.name!r}")
  return int(embed + rest), int(rest)


def _attention_pairs(t: int, block: int) -> int:
  """Query-key pairs the causal attention computes for one sequence of t tokens (per head)."""
  block = block if 0 < block < t else t
  return sum((min(s + block, t) - s) * min(s + block, t) for s in range(0, t, block))


def token_flops(model_config, vocab_size: int) -> float:
  """Training FLOPs per token that do not depend on the sequence length."""
  m, v = model_config, vocab_size
  if m.name in GATES:
    g, h, n = GATES[m.name], m.hidden_dim, m.num_layers
    first = 4 * v * g * h if v <= 256 else 0  # one-hot product (k-mer vocabularies: a gather)
    return float(first + 6 * g * h * h * n + 6 * h * g * h * (n - 1) + 6 * h * v)
  d, a, f = m.embed_dim, m.num_heads * _head_dim(m), m.mlp_dim
  return float(6 * m.num_layers * d * (3 * a + a + 2 * f) + 6 * d * v)


def sequence_flops(model_config, t: int) -> float:
  """Training FLOPs of one sequence of t tokens that grow faster than t (attention)."""
  m = model_config
  if m.name != "transformer":
    return 0.0
  a = m.num_heads * _head_dim(m)
  return 14.0 * a * m.num_layers * _attention_pairs(int(t), m.attention_block)


def step_extra_flops(model_config, vocab_size: int, t: int) -> float:
  """Training FLOPs paid once per step whatever the batch (the recurrent models' tables)."""
  m = model_config
  if m.name not in GATES:
    return 0.0
  gh = GATES[m.name] * m.hidden_dim
  return 6.0 * vocab_size * m.embed_dim * gh + (6.0 * t * m.embed_dim * gh if m.position_embedding else 0.0)


def step_flops(model_config, vocab_size: int, batch: int, t: int) -> float:
  """Training FLOPs of one step on a [batch, t] batch with no padding (what the XLA check compiles)."""
  return (batch * t * token_flops(model_config, vocab_size) + batch * sequence_flops(model_config, t)
          + step_extra_flops(model_config, vocab_size, t))


def flops_per_nucleotide(model_config, vocab_size: int, kmer: int, gene_lengths, batch_size: int) -> float:
  """Mean training FLOPs per nucleotide over genes of `gene_lengths` nucleotides (int [n]).

  Each gene is one sequence of ceil(L / k) tokens; padding to the batch's
  bucket is not counted; the per-step terms are shared by `batch_size` genes
  of the mean length.
  """
  lengths = np.asarray(gene_lengths, np.int64)
  tokens = -(-lengths // kmer)
  per_token = token_flops(model_config, vocab_size)
  attention = 0.0
  if model_config.name == "transformer":  # per distinct length: genes share few lengths
    values, counts = np.unique(tokens, return_counts=True)
    attention = sum(c * sequence_flops(model_config, t) for t, c in zip(values, counts))
  extra = step_extra_flops(model_config, vocab_size, int(round(tokens.mean())))
  total = per_token * tokens.sum() + attention + extra * len(lengths) / batch_size
  return float(total / lengths.sum())
