"""Mutation sets on disk: the study's CSV, plus a side file with the edits.

The CSV is exactly the study's format, one pair per row:

  NCBIGeneID,RealNucleotideSequence,MutatedNucleotideSequence
  442,<GTGTGTGACATT...>,<GTGTGAGACATT...>

The edits (kind, position, base; see `edits.py`) and the settings that made
the set go to `<name>.edits.json` next to `<name>.csv`, so the CSV stays
exchangeable with the study's. A CSV made elsewhere has no side file; the
edited region is then recovered by diffing real against mutated.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import os

from dnagen_jax.data import sequence_io
from dnagen_jax.errors import UserError
from dnagen_jax.mutations import edits as edits_lib

ID_COLUMN = "NCBIGeneID"
REAL_COLUMN = "RealNucleotideSequence"
MUTATED_COLUMN = "MutatedNucleotideSequence"
COLUMNS = (ID_COLUMN, REAL_COLUMN, MUTATED_COLUMN)


@dataclasses.dataclass(frozen=True)
class MutationPair:
  gene_id: str
  real: str
  mutated: str
  edits: tuple | None = None  # ((kind, pos, base), ...) when known


def set_name(path: str) -> str:
  """'dir/mutations_max5_seed0.csv' -> 'mutations_max5_seed0'."""
  name = os.path.basename(path)
  return name[:-4] if name.lower().endswith(".csv") else name


def edits_path(csv_path: str) -> str:
  base = csv_path[:-4] if csv_path.lower().endswith(".csv") else csv_path
  return base + ".edits.json"


def file_digest(path: str) -> str:
  """sha256 of a file's bytes: identifies a set in caches."""
  with open(path, "rb") as f:
    return hashlib.sha256(f.read()).hexdigest()


def write(path: str, pairs: list[MutationPair], settings: dict) -> None:
  """Writes the study CSV and the side file of edits and `settings`."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, "w", newline="") as f:
    w = csv.writer(f, lineterminator="\n")
    w.writerow(COLUMNS)
    for p in pairs:
      w.writerow([p.gene_id, f"<{p.real}>", f"<{p.mutated}>"])
  side = {"settings": settings, "csv_sha256": file_digest(path),
          "edits": [[list(e) for e in p.edits or ()] for p in pairs]}
  with open(edits_path(path), "w") as f:
    json.dump(side, f, separators=(",", ":"))
    f.write("\n")


def _read_side(path: str, pairs: list[MutationPair]) -> list[MutationPair]:
  """Attaches recorded edits when the side file belongs to this exact CSV."""
  side_path = edits_path(path)
  if not os.path.exists(side_path):
    return pairs
  try:
    with open(side_path) as f:
      side = json.load(f)
  except (OSError, ValueError) as e:
    raise UserError(f"{side_path}: unreadable edits file ({e}); delete it to fall back to diffing") from None
  if side.get("csv_sha256") != file_digest(path) or len(side.get("edits", ())) != len(pairs):
    return pairs  # the CSV was changed after the edits were written: diff instead
  out = []
  for p, raw in zip(pairs, side["edits"]):
    ed = tuple((str(k), int(pos), str(b)) for k, pos, b in raw)
    if edits_lib.apply_edits(p.real, ed)[0] != p.mutated:
      return pairs
    out.append(dataclasses.replace(p, edits=ed))
  return out


def _checked(raw: str, where: str) -> str:
  """Upper-cases `raw` (U read as T); any character but A, C, G, T is an error."""
  seq = raw.upper().replace("U", "T")
  bad = seq.strip("ACGT")  # non-empty iff some character is not A, C, G or T
  if bad:
    pos = next(i for i, ch in enumerate(seq) if ch not in "ACGT")
    raise UserError(f"{where}: invalid character {raw[pos]!r} at position {pos + 1} "
                    f"(mutation sets hold only A, C, G, T)")
  return seq


def read(path: str) -> list[MutationPair]:
  """Reads a mutation set (the study's CSV), with its edits when recorded.

  Raises a one-line `UserError` for a missing file or column, an empty set, or
  a sequence that is empty or holds a character other than A, C, G, T
  (lower case and U are accepted, as everywhere in the project).
  """
  _, rows = sequence_io.read_csv_table(path, COLUMNS)
  pairs = []
  for i, row in enumerate(rows, start=1):
    gid = (row[ID_COLUMN] or "").strip()
    seqs = []
    for col in (REAL_COLUMN, MUTATED_COLUMN):
      where = f"{path}: row {i} (NCBIGeneID {gid or '?'}), column {col}"
      raw = sequence_io.strip_brackets(row[col] or "")
      if not raw:
        raise UserError(f"{where}: empty sequence")
      seq = _checked(raw, where)
      seqs.append(seq)
    pairs.append(MutationPair(gid, seqs[0], seqs[1]))
  if not pairs:
    raise UserError(f"{path}: no pairs found (the file has a header but no rows)")
  return _read_side(path, pairs)


def read_settings(path: str) -> dict | None:
  """The settings recorded with a set made by `generate`, or None."""
  try:
    with open(edits_path(path)) as f:
      return json.load(f).get("settings")
  except (OSError, ValueError):
    return None
