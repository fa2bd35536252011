"""`python -m brainscan quantize`: a full-integer LiteRT copy of a model folder that the runtime runs unchanged."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

pytest.importorskip("tensorflow")


def test_int8_copy_runs_through_the_runtime_and_says_what_it_is(tiny_model, tiny_dataset, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    from brainscan.runtime.inference import load_model, predict_batch
    from brainscan.training.quantize import quantize_folder

    source = tmp_path / "float"
    shutil.copytree(tiny_model, source)
    card = json.loads((source / "card.json").read_text())
    (source / "card.json").write_text(json.dumps({**card, "external": {"brats_flair": {}}}))
    out = tmp_path / "int8"
    info = quantize_folder(str(source), str(out), tiny_dataset, samples=16)
    assert info["bytes"] == (out / "model.tflite").stat().st_size
    new_card = json.loads((out / "card.json").read_text())
    assert new_card["lite_runtime"] == info and "external" not in new_card  # float figures do not carry over
    interpreter = Interpreter(model_path=str(out / "model.tflite"))
    kinds = {d["dtype"] for d in interpreter.get_tensor_details()}
    assert np.int8 in kinds  # weights and activations in int8 ...
    assert interpreter.get_input_details()[0]["dtype"] == np.float32  # ... float in and out
    model, reference = load_model(out), load_model(tiny_model)
    x = np.random.default_rng(0).random((4, model.size, model.size, 1)).astype(np.float32)
    preds = predict_batch(model, x)
    assert all(sum(p.probabilities.values()) == pytest.approx(1.0) for p in preds)
    assert model.features_and_logits(x)[0].shape == reference.features_and_logits(x)[0].shape
