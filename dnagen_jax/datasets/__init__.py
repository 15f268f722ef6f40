"""TFDS data set builders of dnagen_jax (importing registers them)."""

from dnagen_jax.datasets.gene_dataset.gene_dataset_dataset_builder import Builder as GeneDataset
from dnagen_jax.datasets.gene_dataset.gene_dataset_dataset_builder import GeneDatasetConfig
