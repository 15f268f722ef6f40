"""Reference and alternative windows around a variant, with the same flanks.

A variant replaces REF (the reference's [s, e), e = s + len(REF)) by ALT. Its
windows are
    reference window    = flank_left + REF + flank_right
    alternative window  = flank_left + ALT + flank_right
with the same flanks from the genome, so an indel's two windows differ only
in the middle and by len(ALT) - len(REF) in length; neither is longer than
`width` (the flanks share width - max(len(REF), len(ALT)) nucleotides, half on
each side). Windows stay inside the stretch of A/C/G/T that holds the variant:
at a chromosome's end or at a run of N (or any other non-ACGT letter, treated
as a scaffold edge) the window shifts to the other side so it keeps `width`
nucleotides where the stretch allows; a stretch shorter than that gives a
shorter window. So no window ever holds N, and every model scores the same
nucleotides.

On the reverse strand both windows are reverse-complemented: the right flank
comes first.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from dnagen_jax.errors import UserError
from dnagen_jax.variants.inputs import Variant
from dnagen_jax.variants.reference import Reference

_COMPLEMENT = str.maketrans("ACGT", "TGCA")
_ACGT = np.frombuffer(b"ACGT", np.uint8)


class BadVariant(UserError):
  """A variant that cannot be scored (REF differs from the genome, an allele that is not
  A/C/G/T, longer than the window): an error, or skipped and counted with --skip_mismatches."""


def reverse_complement(seq: str) -> str:
  return seq.translate(_COMPLEMENT)[::-1]


@dataclasses.dataclass(frozen=True)
class Window:
  """A variant's windows on the forward strand.

  chrom: the reference's name; [start, end): 0-based span of the reference
  window; left / right: flank lengths before / after the variant; ref / alt:
  the two windows (len(ref) = left + len(REF) + right).
  """
  chrom: str
  start: int
  end: int
  left: int
  right: int
  ref: str
  alt: str

  def strand(self, strand: str) -> tuple[str, str, int]:
    """(reference window, alternative window, shared prefix length) on strand '+' or '-'.

    The prefix (the flank read before the variant) is the same in both
    windows, so a causal model gives it the same log-probabilities in both.
    """
    if strand == "+":
      return self.ref, self.alt, self.left
    return reverse_complement(self.ref), reverse_complement(self.alt), self.right


def _check_allele(allele: str, what: str, variant: Variant):
  if not allele or allele.strip("ACGT"):
    raise BadVariant(f"variant {variant.name()}: {what} allele {allele!r} is not A/C/G/T "
                     f"(symbolic, missing or ambiguous alleles are not scored)")


def make_window(variant: Variant, reference: Reference, width: int) -> Window:
  """The windows of `variant` (see the module docstring).

  Raises UserError for a chromosome missing from the reference and a position
  past its end; BadVariant for a REF that differs from the genome, an allele
  that is not A/C/G/T and an allele longer than `width`.
  """
  name = reference.resolve(variant.chrom)
  if name is None:
    names = list(reference.lengths)
    shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
    raise UserError(f"variant {variant.name()}: chromosome {variant.chrom!r} is not in "
                    f"{reference.path} (its sequences: {shown})")
  ref, alt = variant.ref.upper(), variant.alt.upper()
  _check_allele(ref, "REF", variant)
  _check_allele(alt, "ALT", variant)
  length = reference.lengths[name]
  s, e = variant.pos - 1, variant.pos - 1 + len(ref)
  if e > length:
    raise UserError(f"variant {variant.name()}: position past the end of {name} "
                    f"({length:,} nt) in {reference.path}")
  lo, hi = max(0, s - width), min(length, e + width)
  region = reference.fetch(name, lo, hi)
  genome = region[s - lo:e - lo]
  if genome != ref:
    raise BadVariant(f"variant {variant.name()}: REF {ref} does not match the reference "
                     f"({genome} at {name}:{variant.pos} in {reference.path})")
  flanks = width - max(len(ref), len(alt))
  if flanks < 0:
    raise BadVariant(f"variant {variant.name()}: an allele of {max(len(ref), len(alt))} nt "
                     f"does not fit a window of {width}")
  bad = ~np.isin(np.frombuffer(region.encode(), np.uint8), _ACGT)  # N and other letters end a stretch
  before, after = np.flatnonzero(bad[:s - lo]), np.flatnonzero(bad[e - lo:])
  left_room = s - (lo + before[-1] + 1 if before.size else lo)
  right_room = (e + after[0] if after.size else hi) - e
  left, right = flanks // 2, flanks - flanks // 2
  if left > left_room:  # at an edge: shift the window towards the other side
    left, right = left_room, right + left - left_room
  if right > right_room:
    left, right = min(left_room, left + right - right_room), right_room
  start, end = s - left, e + right
  ref_window = region[start - lo:end - lo]
  alt_window = region[start - lo:s - lo] + alt + region[e - lo:end - lo]
  return Window(name, start, end, left, right, ref_window, alt_window)
