"""langan: train and evaluate language GANs against honest maximum-likelihood baselines."""

__version__ = "0.1.0"
