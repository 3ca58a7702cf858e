"""Model registry: every module in this folder is imported on first use."""
from utils.plumbing.registry import Registry

MODELS = Registry("model", "models")
register_model = MODELS.register

