"""`train --init-from`: a run starts from a trained model folder's weights, also at another input size."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from brainscan.errors import RunError  # noqa: E402
from brainscan.training.architectures import build_model  # noqa: E402
from brainscan.training.run import start_from  # noqa: E402

CLASSES = ["glioma", "notumor"]


@pytest.fixture
def trained(tmp_path):
    model = build_model("compact", 16, 2)
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(size=w.shape).astype(np.float32) for w in model.get_weights()])
    model.save(tmp_path / "model.keras")
    (tmp_path / "card.json").write_text(json.dumps({"name": "tiny", "classes": CLASSES}))
    return tmp_path, model


def test_weights_are_copied_into_a_larger_input(trained):
    folder, source = trained
    fresh = build_model("compact", 24, 2)
    start_from(fresh, str(folder), CLASSES)
    for a, b in zip(fresh.get_weights(), source.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert fresh.input_shape[1:3] == (24, 24)


def test_other_classes_or_layers_are_refused(trained):
    folder, _ = trained
    with pytest.raises(RunError, match="classes"):
        start_from(build_model("compact", 16, 2), str(folder), ["glioma", "tumour-free"])
    with pytest.raises(RunError, match="layers do not match"):
        start_from(build_model("compact", 16, 3), str(folder / "model.keras"), CLASSES)
    with pytest.raises(RunError, match="no model.keras"):
        start_from(build_model("compact", 16, 2), str(folder / "missing"), CLASSES)
