"""Data-scaling studies: nested subsets x tokenizations x families, fits and plots (--mode=study)."""
