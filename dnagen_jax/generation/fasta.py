"""Samples as FASTA: one record per sample, the model, settings and seed in its header.

A header reads (one line):
  >p0_s3 model=lstm workdir=/abs/run prompt=p0 prompt_length=12 max_length=1000 temperature=1 top_k=None top_p=1 greedy=False seed=0
The record's sequence is the prompt followed by the generated nucleotides;
`prompt_length` says where the generated part starts (the report reads it).
"""

from __future__ import annotations

import os
import re

from dnagen_jax.data import sequence_io

LINE_WIDTH = 80


def read_prompts(spec: str | None) -> list[tuple[str, str]]:
  """--prompts: None (one empty prompt), a FASTA file of prefixes, or one prefix string -> [(name, text)]."""
  if not spec:
    return [("p0", "")]
  name = spec[:-3] if spec.endswith(".gz") else spec
  if os.path.exists(spec) or name.lower().endswith(sequence_io.FASTA_SUFFIXES):
    return [(rid, seq) for rid, _, seq in sequence_io.fasta_entries(spec)] or [("p0", "")]
  return [("p0", spec)]


def format_records(records) -> str:
  """[(header line without '>', sequence)] -> FASTA text, LINE_WIDTH letters a line."""
  out = []
  for header, seq in records:
    out.append(">" + header + "\n")
    out.extend(seq[i:i + LINE_WIDTH] + "\n" for i in range(0, len(seq), LINE_WIDTH))
    if not seq:
      out.append("\n")
  return "".join(out)


def write(path: str, records) -> None:
  """Writes the FASTA whole or not at all (a temporary file renamed into place)."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    f.write(format_records(records))
  os.replace(tmp, path)


def read_samples(path: str) -> list[tuple[str, str, str]]:
  """A samples FASTA -> [(id, generated part, prompt)], split at each header's prompt_length (0 if absent)."""
  out = []
  for rid, header, seq in sequence_io.fasta_entries(path):
    seq = seq.upper()
    m = re.search(r"\bprompt_length=(\d+)\b", header)
    cut = int(m.group(1)) if m else 0
    out.append((rid, seq[cut:], seq[:cut]))
  return out
