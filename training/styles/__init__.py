"""Style clusters: k-means on outfit embeddings -> models/styles.json (see docs/styles.md).

    python -m training.styles --config configs/styles.yaml
"""
