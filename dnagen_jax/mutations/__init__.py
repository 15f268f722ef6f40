"""Synthetic mutation detection: tell a real gene from a mutated copy of it.

The study's "real-life task" (paper section on mutation detection):
  * `edits`: the mutation process (insertion, deletion, substitution, optional
    adjacent swap) and the alignment between a gene and its mutated copy;
  * `mutation_csv`: the study's CSV format
    (`NCBIGeneID,RealNucleotideSequence,MutatedNucleotideSequence`) plus a side
    JSON file with the edit positions;
  * `generate`: seeded mutation sets drawn from a split (`--mode=mutate`);
  * `rules`: the decision rules (perplexity, probability, windowed log-odds);
  * `detect`: scores a set with a trained model (`--mode=detect`).
"""
