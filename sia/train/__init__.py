"""Quantisation-aware training (two stages: with BN, then BN folded) and its CLI."""

from sia.train.config import TrainConfig, load_config
from sia.train.trainer import TrainResult, evaluate, load_trained, train

__all__ = ["TrainConfig", "load_config", "TrainResult", "evaluate", "load_trained", "train"]
