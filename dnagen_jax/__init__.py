"""dnagen_jax: autoregressive next-nucleotide language models on DNA, in JAX."""

__version__ = "0.1.0"
