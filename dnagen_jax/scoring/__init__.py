"""Scoring: per-nucleotide log-likelihoods from any model, and what derives from them.

The package re-exports the interface (`Scorer` and the perplexity helpers),
which imports nothing of the project; `neural` (neural models) is imported
by name where needed, and a workdir's model of any family comes from
`dnagen_jax.workdir.load_scorer`.
"""

from dnagen_jax.scoring.interface import OracleScorer
from dnagen_jax.scoring.interface import Scorer
from dnagen_jax.scoring.interface import perplexity_from_totals
from dnagen_jax.scoring.interface import safe_exp

__all__ = ["OracleScorer", "Scorer", "perplexity_from_totals", "safe_exp"]
