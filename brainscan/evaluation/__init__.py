"""Evaluation: scikit-learn metrics and calibration of a model on a folder (evaluation.metrics), other sources
and the pointing game (evaluation.external)."""
