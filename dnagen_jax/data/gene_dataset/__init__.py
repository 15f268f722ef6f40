"""The `gene_dataset` TFDS builder."""
