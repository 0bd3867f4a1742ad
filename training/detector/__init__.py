"""Garment detector training: ``python -m training.detector --config configs/detector.yaml``."""
