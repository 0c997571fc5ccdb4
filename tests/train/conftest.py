"""Registers the training fixtures (defined in training_fixtures.py, importable by the tests)."""

from training_fixtures import classifier_split, train_dir, trained_tiny

__all__ = ["classifier_split", "train_dir", "trained_tiny"]
