"""External evaluation on a tiny BRATS-like folder (phantoms with lesion masks) and a yes/no folder."""

import csv
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from brainscan.runtime.inference import make_prediction
from brainscan.scans.datasets import DatasetError
from brainscan.scans.synthetic import phantom, write_dataset


@pytest.fixture
def brats_like(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    rows = []
    for i in range(8):
        tumor = i % 2 == 0
        for seq in ("flair", "t1c"):
            img, centre = phantom(64, lesion=tumor, seed=i)
            name = f"images/p{i // 4}_{seq}_z{i:03d}.png"
            cv2.imwrite(str(tmp_path / name), np.rint(img * 255).astype(np.uint8))
            mask = np.zeros((64, 64), np.uint8)
            if centre:
                cv2.circle(mask, centre, 6, 255, -1)
            mname = f"masks/p{i // 4}_z{i:03d}_wt.png"
            cv2.imwrite(str(tmp_path / mname), mask)
            rows.append({"image": name, "mask_wt": mname, "label": "tumor" if tumor else "notumor",
                         "patient": f"p{i // 4}", "sequence": seq, "z": i})
    with open(tmp_path / "labels.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return tmp_path


@pytest.mark.slow
def test_brats_evaluation_per_sequence_with_pointing_game(tiny_model, brats_like):
    from brainscan.evaluation.external import evaluate_brats
    from brainscan.runtime.keras_model import load_model

    out = evaluate_brats(str(brats_like), load_model(tiny_model))
    assert set(out["sequences"]) == {"flair", "t1c"}
    for m in out["sequences"].values():
        assert m["n"] == 8 and m["n_tumor"] == 4 and 0 <= m["roc_auc"] <= 1
        pg = m["pointing_game"]
        assert pg["n"] == 4 and 0 <= pg["hit_rate"] <= pg["hit_rate_within_8px"] <= 1
        assert 0 <= pg["baseline_brightest_point"] <= 1
        assert set(m["roc_auc_per_patient"]) == {"p0", "p1"}

    held_out = evaluate_brats(str(brats_like), load_model(tiny_model), patients=["p1"])
    assert held_out["patients"] == ["p1"]
    for m in held_out["sequences"].values():
        assert m["n"] == 4 and set(m["roc_auc_per_patient"]) == {"p1"}
    with pytest.raises(DatasetError, match="p7"):
        evaluate_brats(str(brats_like), load_model(tiny_model), patients=["p7"])

    # Turned upside down, each outline turns with its slice: the model-free brightest spot still hits as often.
    turned = evaluate_brats(str(brats_like), load_model(tiny_model), upside_down=True)
    assert turned["upside_down"] and not out["upside_down"]
    for seq, m in turned["sequences"].items():
        before = out["sequences"][seq]["pointing_game"]
        assert m["pointing_game"]["baseline_brightest_point"] == before["baseline_brightest_point"] > 0
        assert m["pointing_game"]["baseline_random_point_in_head"] == pytest.approx(
            before["baseline_random_point_in_head"], abs=1e-6)


def test_limitations_say_when_the_answer_depends_on_which_way_up_a_slice_is():
    from brainscan.evaluation.external import measured_limitations

    summary = {"brats_flair": {"tumor_roc_auc": 0.80, "pointing_game_hit_rate": 0.2},
               "brats_flair_upside_down": {"tumor_roc_auc": 0.93},
               "brats_t1c": {"tumor_roc_auc": 0.95}, "brats_t1c_upside_down": {"tumor_roc_auc": 0.93}}
    text = " ".join(measured_limitations(summary))
    assert "on BRATS FLAIR slices ROC AUC is 0.80 as stored (back of the head at the top) and 0.93" in text
    assert "BRATS contrast T1" not in text  # 0.95 vs 0.93: neither weak nor orientation-dependent
    assert "FLAIR slices (another source, skull-stripped) tumor vs tumor-free ROC AUC is 0.80" in text


@pytest.mark.slow
def test_yes_no_evaluation_removes_near_duplicates_of_training(tiny_model, tmp_path):
    from brainscan.evaluation.external import evaluate_yes_no
    from brainscan.runtime.keras_model import load_model

    yes_no = write_dataset(tmp_path / "yn", per_class=5, size=48, classes=("no", "yes"), seed=0)
    training = write_dataset(tmp_path / "train", per_class=5, size=48, classes=("no", "yes"), seed=0)  # same images
    m = evaluate_yes_no(str(yes_no), load_model(tiny_model), dedup_against=str(training))
    assert (m["images"], m["removed_near_duplicates_of_training"], m["n"]) == (10, 10, 0)
    m = evaluate_yes_no(str(yes_no), load_model(tiny_model))
    assert m["n"] == 10 and m["removed_near_duplicates_of_training"] == 0 and 0 <= m["accuracy"] <= 1


def test_brightest_point_finds_a_bright_blob_not_a_single_hot_pixel():
    from brainscan.evaluation.pointing import brightest_point

    img = np.zeros((40, 60), np.float32)
    img[20:30, 40:50] = 0.8  # a bright lesion-sized blob
    img[5, 5] = 1.0  # one hot pixel, brighter but tiny: blurring removes it
    assert brightest_point(img) in {(44, 24), (45, 24), (44, 25), (45, 25)}


def test_attaching_one_set_keeps_the_other_sets_results(tmp_path):
    import json

    from brainscan.evaluation.external import attach_to_model

    (tmp_path / "card.json").write_text("{}")
    seq = {"n": 10, "roc_auc": 0.5, "pointing_game": {"hit_rate": 0.2}, "flagged_unfamiliar": 0.1}
    yes_no = {"n": 5, "accuracy": 0.6, "f1": 0.7, "roc_auc": 0.8, "removed_near_duplicates_of_training": 3,
              "flagged_unfamiliar": 0.0}
    attach_to_model(str(tmp_path), {"yes_no": yes_no})
    attach_to_model(str(tmp_path), {"brats": {"sequences": {"flair": seq}}})
    card = json.loads((tmp_path / "card.json").read_text())
    assert set(card["external"]) == {"brats_flair", "yes_no_dedup"}
    assert card["external"]["yes_no_dedup"]["accuracy"] == 0.6
    assert any("yes/no" in line for line in card["limitations"])
    assert "pointing_heatmap" not in card  # no pointing game measured yet

    seq["pointing_game"]["fell_back"] = 0.4
    attach_to_model(str(tmp_path), {"brats": {"cam_method": "gradcam", "sequences": {"flair": seq}}})
    card = json.loads((tmp_path / "card.json").read_text())
    assert card["pointing_heatmap"] == {"method": "gradcam", "label": "Grad-CAM", "when_empty": "cam",
                                        "when_empty_label": "CAM"}
    assert card["external"]["brats_flair"]["heatmap_fell_back"] == 0.4
    from brainscan.modelfolder import render_markdown

    assert ("the peak of the Grad-CAM heatmap of the likeliest tumour class, or of CAM where that map is "
            "empty") in render_markdown(card, [])


def test_near_duplicates_of_reads_the_reference_hashes_from_the_cache_and_keys_them_by_absolute_path(
        tmp_path, monkeypatch):
    from brainscan.evaluation.external import near_duplicates_of
    from brainscan.scans import near_duplicates
    from brainscan.scans.near_duplicates import HashCache

    train = write_dataset(tmp_path / "train", per_class=3, size=48, classes=("no", "yes"), seed=0)
    probe = write_dataset(tmp_path / "probe", per_class=3, size=48, classes=("no", "yes"), seed=0)  # same images
    ref = [str(p) for p in sorted(Path(train).rglob("*.png"))]
    paths = [str(p) for p in sorted(Path(probe).rglob("*.png"))]
    first = near_duplicates_of(paths, ref, cache_dir=tmp_path / "cache")
    assert first["confirmed"].all()
    cache = HashCache(tmp_path / "cache")
    assert len(cache.hashes) == len(ref) and len(cache.thumbs) == len(ref)
    monkeypatch.chdir(tmp_path)
    relative = [os.path.relpath(p, tmp_path) for p in ref]
    assert {HashCache.key(p) for p in relative} == set(cache.hashes)  # the same key from a relative path

    hash_probe, reference = near_duplicates.perceptual_hash, {os.path.abspath(p) for p in relative}

    def no_hashing(path):  # a second run must take every reference hash from the cache
        if os.path.abspath(path) in reference:
            raise AssertionError(f"hashed {path} again")
        return hash_probe(path)  # the probe images are hashed each time, as before

    monkeypatch.setattr("brainscan.scans.near_duplicates.perceptual_hash", no_hashing)
    again = near_duplicates_of(paths, relative, cache_dir=tmp_path / "cache")
    assert again["confirmed"].tolist() == first["confirmed"].tolist()


def test_an_empty_heatmap_never_counts_as_a_hit_and_is_counted_apart():
    from brainscan.evaluation.pointing import PointingTally
    from brainscan.scans.preprocess import prepare

    class FlatThenPeak:  # first call: no positive evidence anywhere; second: evidence in the top-left cell
        classes = ["glioma", "meningioma", "notumor", "pituitary"]
        calls = 0

        def cam(self, x, k, method, layer):
            FlatThenPeak.calls += 1
            cam = np.zeros((4, 4), np.float32)
            if FlatThenPeak.calls == 2:
                cam[0, 0] = 1.0
            return cam

    img = np.ones((32, 32), np.float32)  # the head fills the image, so the crop is the whole image
    mask = np.zeros((32, 32), bool)
    mask[:8, :8] = True  # the outline covers the top-left corner, where an empty map's peak (0, 0) falls
    tally = PointingTally()
    probs = {"glioma": 0.9, "meningioma": 0.05, "notumor": 0.03, "pituitary": 0.02}
    for _ in range(2):
        tally.add(FlatThenPeak(), img, prepare(img, 16), make_prediction(probs, None), mask, fallback=False)
    s = tally.summary()
    assert tally.hits == [False, True] and s["empty_heatmap"] == 0.5 and s["hit_rate"] == 0.5
    assert s["fell_back"] == 0


class SignedEvidence:
    """A model whose glioma evidence is negative everywhere, least so in the bottom-right cell: Grad-CAM (the
    evidence cut at zero) is empty, CAM (the evidence shifted to a minimum of 0) peaks bottom-right."""

    classes = ["glioma", "meningioma", "notumor", "pituitary"]

    def __init__(self):
        self.asked = []

    def cam(self, x, k, method, layer):
        from brainscan.cam import headcam

        self.asked.append(method)
        fmap = np.array([[[1.0], [2.0]], [[3.0], [0.5]]], np.float32)  # 2 x 2 positions, one channel
        weights = np.full((1, 4), -1.0, np.float32)  # every class's evidence falls as the channel rises
        closed = {"gradcam": headcam.gradcam, "cam": headcam.class_activation_map}[method]
        return headcam.expand(closed(fmap, weights, k), x.shape[0])


def test_an_empty_grad_cam_gives_way_to_cam_and_the_tally_counts_it():
    from brainscan.cam.heatmap import heatmap
    from brainscan.evaluation.pointing import PointingTally
    from brainscan.scans.preprocess import prepare

    img = np.ones((32, 32), np.float32)
    prepared = prepare(img, 16)
    model = SignedEvidence()
    alone = heatmap(model, prepared, 0, "gradcam", fallback=False)
    assert alone.empty and alone.instead_of is None and alone.method == "gradcam"
    shown = heatmap(model, prepared, 0, "gradcam")
    assert model.asked == ["gradcam", "gradcam", "cam"]
    assert shown.method == "cam" and shown.instead_of == "gradcam" and not shown.empty
    assert shown.peak == (31, 31)  # the cell with the least negative evidence (0.5 of the channel)
    mask = np.zeros((32, 32), bool)
    mask[24:, 24:] = True
    tally = PointingTally()
    probs = {"glioma": 0.9, "meningioma": 0.05, "notumor": 0.03, "pituitary": 0.02}
    tally.add(model, img, prepared, make_prediction(probs, None), mask)
    s = tally.summary()
    assert s["hit_rate"] == 1 and s["fell_back"] == 1 and s["empty_heatmap"] == 0
