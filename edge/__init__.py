"""fashion-edge: the in-store apparel analytics daemon (edge side, no tensorflow/torch)."""

__version__ = "0.1.0"
