"""Data: tokens, sequence files, the synthetic source, the TFDS data set (storage) and batching."""
