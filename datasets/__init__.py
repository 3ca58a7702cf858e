"""Dataset registry: every module in this folder is imported on first use."""
from utils.plumbing.registry import Registry

DATASETS = Registry("dataset", "datasets")
register_dataset = DATASETS.register

