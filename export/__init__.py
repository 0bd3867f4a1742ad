"""Export pipelines of fashion-edge."""
