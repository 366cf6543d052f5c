"""Accuracy and speed evaluation: pairs, galleries, metrics. Not on the runtime path."""
