r"""A demo VCF: variants placed on a real genome, with a known (made-up) label.

  python -m dnagen_jax.variants.demo --reference=../shared/data/genomes/human_chrX_grch37_first70Mb.fa.gz \
    --chrom=chrX --start=60000001 --end=70000000 --num=2000 --out=/tmp/demo.vcf.gz

Half the variants are drawn as germline mutations arise (`spectrum`: a C>T or
G>A transition at a CpG ten times as often as another transition, a
transition twice as often as a transversion, some 1-3 nt indels) and labeled
benign; the other half uniformly over positions and alternative bases
(`uniform`, SNVs only) and labeled damaging: the proxy-neutral versus
simulated design of CADD, on a genome whose damage nobody annotated here. So
the labels say how a variant was drawn, not what it does: the demo exercises
the pipeline and shows the mutability confound (a model that finds CpG
transitions likely ranks the `spectrum` draws as benign), it measures no
biology. INFO: LABEL (benign/damaging), CONSEQUENCE (cpg_transition,
transition, transversion, insertion, deletion). The VCF is bgzip-compressed.
Records use `--chrom` as written (chrX finds X in the reference).
"""

from __future__ import annotations

import os

import numpy as np
from absl import app
from absl import flags

from dnagen_jax.variants.reference import Reference

_TRANSITION = {"A": "G", "G": "A", "C": "T", "T": "C"}


def classify(seq: str, i: int, alt: str) -> str:
  """The class of an SNV at seq[i] -> alt (seq: the genome around it)."""
  ref = seq[i]
  if _TRANSITION[ref] != alt:
    return "transversion"
  cpg = (ref == "C" and seq[i + 1:i + 2] == "G") or (ref == "G" and seq[i - 1:i] == "C")
  return "cpg_transition" if cpg else "transition"


def draw(seq: str, offset: int, num: int, seed: int) -> list[tuple[int, str, str, str, str]]:
  """(1-based pos, ref, alt, consequence, label) records on `seq` (starts at 0-based `offset`).

  Only positions inside A/C/G/T stretches (and 10 nt away from any N) are used.
  """
  rng = np.random.default_rng(seed)
  arr = np.frombuffer(seq.encode(), np.uint8)
  ok = np.isin(arr, np.frombuffer(b"ACGT", np.uint8))
  ok = np.convolve(~ok, np.ones(21), "same") == 0  # 10 nt clear of N on both sides
  ok[:10] = ok[-10:] = False
  positions = np.flatnonzero(ok)
  out, seen = [], set()
  while len(out) < num:
    i = int(rng.choice(positions))
    ref = seq[i]
    if len(out) % 2:  # uniform: any other base, labeled damaging
      alt = str(rng.choice([b for b in "ACGT" if b != ref]))
      rec = (offset + i + 1, ref, alt, classify(seq, i, alt), "damaging")
    else:  # spectrum: as mutations arise, labeled benign
      kind = rng.random()
      if kind < 0.08:  # deletion of 1-3 nt after the anchor base
        k = int(rng.integers(1, 4))
        rec = (offset + i + 1, seq[i:i + k + 1], ref, "deletion", "benign")
      elif kind < 0.16:
        ins = "".join(rng.choice(list("ACGT"), size=int(rng.integers(1, 4))))
        rec = (offset + i + 1, ref, ref + ins, "insertion", "benign")
      else:
        alts = [b for b in "ACGT" if b != ref]
        weight = np.array([(10.0 if classify(seq, i, b) == "cpg_transition" else 2.0)
                           if b == _TRANSITION[ref] else 1.0 for b in alts])
        alt = str(rng.choice(alts, p=weight / weight.sum()))
        rec = (offset + i + 1, ref, alt, classify(seq, i, alt), "benign")
    if rec[:3] not in seen:
      seen.add(rec[:3])
      out.append(rec)
  return sorted(out)


def write_vcf(path: str, chrom: str, length: int, records) -> None:
  """A VCF 4.2 of `records` (pos, ref, alt, consequence, label); bgzip when `path` ends in .gz."""
  import pysam  # pylint: disable=g-import-not-at-top
  lines = ["##fileformat=VCFv4.2", f"##contig=<ID={chrom},length={length}>",
           '##INFO=<ID=LABEL,Number=1,Type=String,Description="benign or damaging (demo)">',
           '##INFO=<ID=CONSEQUENCE,Number=1,Type=String,Description="variant class">',
           "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"]
  for pos, ref, alt, cons, label in records:
    lines.append(f"{chrom}\t{pos}\t.\t{ref}\t{alt}\t.\tPASS\tLABEL={label};CONSEQUENCE={cons}")
  text = "\n".join(lines) + "\n"
  plain = path[:-3] if path.endswith(".gz") else path
  with open(plain, "w") as f:
    f.write(text)
  if path.endswith(".gz"):
    pysam.tabix_compress(plain, path, force=True)
    os.remove(plain)


_REFERENCE = flags.DEFINE_string("reference", None, "Genome FASTA (plain, gzip or bgzip).")
_CHROM = flags.DEFINE_string("chrom", None, "Chromosome, as written into the VCF.")
_START = flags.DEFINE_integer("start", 1, "First position (1-based) variants may take.")
_END = flags.DEFINE_integer("end", 0, "Last position (0 = the chromosome's end).")
_NUM = flags.DEFINE_integer("num", 2000, "Variants.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the draw.")
_OUT = flags.DEFINE_string("out", None, "Output VCF (.vcf or .vcf.gz).")


def main(argv):
  del argv
  out = os.path.abspath(_OUT.value)
  ref = Reference(_REFERENCE.value, os.path.join(os.path.dirname(out), "reference_cache"))
  name = ref.resolve(_CHROM.value)
  end = _END.value or ref.lengths[name]
  seq = ref.fetch(name, _START.value - 1, end)
  records = draw(seq, _START.value - 1, _NUM.value, _SEED.value)
  write_vcf(out, _CHROM.value, ref.lengths[name], records)
  print(f"{out}: {len(records)} variants on {_CHROM.value}:{_START.value}-{end}")


if __name__ == "__main__":
  flags.mark_flags_as_required(["reference", "chrom", "out"])
  app.run(main)
