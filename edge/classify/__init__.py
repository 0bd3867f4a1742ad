"""Classifier stage: a TFLite image classifier on garment crops, with an optional label map."""

from .classifier import Classification, GarmentClassifier

__all__ = ["Classification", "GarmentClassifier"]
