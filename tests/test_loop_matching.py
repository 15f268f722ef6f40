"""bench --loop's comparison of two validation curves at equal nucleotides and at equal time."""

import pytest

from dnagen_jax.bench import loop_speed


def _side(points):
  return {"points": [{"step": i, "nucleotides_seen": n, "time_s": t, "perplexity": p}
                     for i, (n, t, p) in enumerate(points)]}


def test_equal_nucleotides_reads_the_other_curve_between_its_points():
  ours = _side([(100, 10.0, 4.0), (300, 30.0, 3.5), (500, 50.0, 3.2)])
  theirs = _side([(90, 20.0, 4.2), (110, 22.0, 4.0), (290, 60.0, 3.6), (310, 61.0, 3.4), (490, 90.0, 3.3)])
  by_nt, by_time = loop_speed.matched_points(ours, theirs)
  assert [r["other_nucleotides"] for r in by_nt] == [[90, 110], [290, 310], [490, 490]]
  assert by_nt[0]["other_perplexity"] == pytest.approx(4.1)      # halfway between 4.2 and 4.0
  assert by_nt[1]["difference"] == pytest.approx(0.0)            # 3.5 against 3.5
  assert by_nt[2]["other_perplexity"] == 3.3                     # nothing beyond: the nearest
  # At their times 20, 22, 60, 61, 90 s we had reached the points at 10, 10, 50, 50, 50 s.
  assert [r["time_s_ours"] for r in by_time] == [10.0, 10.0, 50.0, 50.0, 50.0]
  assert by_time[-1]["difference"] == pytest.approx(3.2 - 3.3)
