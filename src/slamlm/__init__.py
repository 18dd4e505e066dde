"""slamlm: train and evaluate Speech Language Models on one GPU in a day (the Slam recipe)."""

__version__ = "0.1.0"
