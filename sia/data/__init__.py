"""Datasets as in-memory uint8 tensors, augmentation and a batch iterator."""

from sia.data.augment import crop_flip
from sia.data.cifar import load_cifar10
from sia.data.digits import load_digits_split
from sia.data.loader import Batches

__all__ = ["crop_flip", "load_cifar10", "load_digits_split", "Batches"]
