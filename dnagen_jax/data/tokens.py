"""Nucleotide vocabulary and the one policy for non-ACGT characters.

Token ids (shared by every model, N-grams included):

  PAD=0  BOS=1  EOS=2  A=3  C=4  G=5  T=6  N=7

Policy, applied the same way by every reader (CSV, FASTA, mutation sets):
  * lowercase (soft-masked) bases are upper-cased: soft-masking is an
    annotation, not a different nucleotide;
  * U is read as T;
  * IUPAC ambiguity codes (N R Y S W K M B D H V) and any other character are
    handled by `unknown_policy`:
      - 'error' (default): raise a `UserError` naming the record and position;
      - 'n': IUPAC codes become N (token 7); characters that are not IUPAC
        codes at all (digits, '*', '-', ...) still raise;
      - 'skip': drop the whole record, counting it in the reader's report.
"""

from __future__ import annotations

import numpy as np

from dnagen_jax.errors import UserError

PAD, BOS, EOS = 0, 1, 2
NUCLEOTIDES = "ACGT"
A, C, G, T, N = 3, 4, 5, 6, 7
VOCAB_SIZE = 8
ID_TO_CHAR = {PAD: "_", BOS: "^", EOS: "$", A: "A", C: "C", G: "G", T: "T", N: "N"}
IUPAC_AMBIGUOUS = frozenset("NRYSWKMBDHV")
POLICIES = ("error", "n", "skip")

# Byte -> token lookup table; 255 marks "not ACGT".
_LUT = np.full(256, 255, dtype=np.uint8)
for _i, _ch in enumerate("ACGT"):
  _LUT[ord(_ch)] = A + _i
  _LUT[ord(_ch.lower())] = A + _i
_LUT[ord("U")] = T
_LUT[ord("u")] = T


def check_policy(policy: str) -> str:
  if policy not in POLICIES:
    raise UserError(
        f"unknown_policy={policy!r} is not one of {', '.join(POLICIES)}")
  return policy


def normalize(seq: str, policy: str = "error", where: str = "sequence") -> str | None:
  """Returns `seq` upper-cased as a string over A, C, G, T, N.

  Returns None when `policy == 'skip'` and the sequence holds a non-ACGT
  character. Raises `UserError` naming `where` and the 1-based position of the
  first bad character otherwise.
  """
  codes = np.frombuffer(seq.encode("latin-1", "replace"), dtype=np.uint8)
  toks = _LUT[codes]
  bad = np.flatnonzero(toks == 255)
  if bad.size == 0:
    return seq.upper().replace("U", "T")
  if policy == "skip":
    return None
  if policy == "n":
    upper = seq.upper().replace("U", "T")
    not_iupac = [i for i in bad if upper[i] not in IUPAC_AMBIGUOUS]
    if not not_iupac:
      chars = np.frombuffer(upper.encode("latin-1"), dtype=np.uint8).copy()
      chars[bad] = ord("N")
      return chars.tobytes().decode("latin-1")
    bad = np.asarray(not_iupac)
  pos = int(bad[0])
  raise UserError(
      f"{where}: invalid character {seq[pos]!r} at position {pos + 1} "
      f"(set data.unknown_policy='n' to read IUPAC codes as N, or 'skip' to "
      f"drop such records)")


def encode(seq: str) -> np.ndarray:
  """Encodes a normalized sequence (A, C, G, T, N) as int32 tokens, shape [L]."""
  codes = np.frombuffer(seq.encode("ascii"), dtype=np.uint8)
  toks = _LUT[codes].astype(np.int32)
  toks[codes == ord("N")] = N
  return toks


def decode(tokens) -> str:
  """Inverse of `encode`; PAD/BOS/EOS print as _ ^ $."""
  return "".join(ID_TO_CHAR[int(t)] for t in tokens)


# Streamed genomes (`sources.encode_record`): byte -> token, with LOWER set on
# soft-masked (lowercase) bases so that the case survives as one bit.
LOWER = 8          # bit set on the token of a lowercase base
BAD = 255          # a byte the policy refuses (or skips the record for)


def _byte_tokens(policy: str) -> np.ndarray:
  lut = np.full(256, BAD, np.uint8)
  letters = {**{c: A + i for i, c in enumerate("ACGT")}, "U": T}
  if policy == "n":
    letters.update({c: N for c in IUPAC_AMBIGUOUS})
  for ch, tok in letters.items():
    lut[ord(ch)] = tok
    lut[ord(ch.lower())] = tok | LOWER
  return lut


BYTE_TOKENS = {p: _byte_tokens(p) for p in POLICIES}
_TOKEN_CHARS = np.frombuffer(b"_^$ACGTN" * 2, np.uint8)  # token (with or without LOWER) -> upper-case letter


def token_string(toks: np.ndarray) -> str:
  """uint8 tokens [L] (LOWER bit allowed) -> the upper-case string over ACGTN."""
  return _TOKEN_CHARS[toks].tobytes().decode("ascii")
