"""The re-identification head (``python -m training.reid``): a linear map of the person-attribute
model's pooled features in which one person seen from another side stays close (edge/identity/head.py)."""
