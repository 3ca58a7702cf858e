"""Dataset registry: every module in this folder is imported on first use."""
from utils.registry import Registry

DATASETS = Registry("dataset", "datasets")
register_dataset = DATASETS.register


def get_dataset_names():
    return DATASETS.names()


def get_dataset_class(name):
    return DATASETS.get(name)
