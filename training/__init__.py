"""Training pipelines of fashion-edge."""
