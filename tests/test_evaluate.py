"""Metrics against hand-computed values."""

import numpy as np
import pytest

from brainscan.evaluation.metrics import binary_metrics, classification_metrics, expected_calibration_error


def test_ece_hand_computed():
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]])
    y = np.array([0, 1, 0, 0])
    # bin 0.9: accuracy 0.5 vs confidence 0.9; bin 0.6: accuracy 1.0 vs 0.6 -> 0.5*0.4 + 0.5*0.4
    assert expected_calibration_error(probs, y, n_bins=10) == pytest.approx(0.4)


def test_binary_metrics_sensitivity_at_specificity():
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    p = np.array([0.1, 0.2, 0.3, 0.8, 0.7, 0.9, 0.95, 0.6])
    m = binary_metrics(y, p)
    assert m["roc_auc"] == pytest.approx(14 / 16)  # 14 of 16 (tumor, no tumor) pairs ranked right
    assert m["at_95_specificity"]["specificity"] == 1.0
    assert m["at_95_specificity"]["sensitivity"] == pytest.approx(0.5)  # only 0.9 and 0.95 exceed 0.8
    assert m["accuracy"] == pytest.approx(7 / 8) and m["confusion_matrix"] == [[3, 1], [0, 4]]


def test_classification_metrics_confusion_and_tumor_view():
    classes = ["glioma", "notumor"]
    probs = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    y = np.array([0, 1, 1])
    m = classification_metrics(y, probs, classes)
    assert m["confusion_matrix"] == [[1, 0], [1, 1]]
    assert m["per_class"]["glioma"]["precision"] == pytest.approx(0.5)
    assert m["tumor_vs_notumor"]["roc_auc"] == pytest.approx(1.0)
