"""Quantisation-aware CIFAR VGG-11 / ResNet-18 and the digits CNN."""

from sia.models.blocks import (BasicBlock, ConvUnit, LinearUnit, fold_all_bn, is_folded,
                               make_act)
from sia.models.zoo_arch import ARCHS, build_model, digits_cnn, resnet18, vgg11

__all__ = ["BasicBlock", "ConvUnit", "LinearUnit", "fold_all_bn", "is_folded", "make_act",
           "ARCHS", "build_model", "digits_cnn", "resnet18", "vgg11"]
