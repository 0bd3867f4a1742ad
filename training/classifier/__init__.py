"""Garment classifier training: ``python -m training.classifier --config configs/classifier.yaml``."""
