"""Recipe runs: operating threshold, per-source figures, guided CAM targets, the runtime's use of the threshold,
the pointing game's tally and the yes/no near-duplicate check. Tiny inputs made by the tests."""

from __future__ import annotations

import json
from dataclasses import dataclass

import cv2
import numpy as np
import pytest
from PIL import Image

from brainscan.runtime.inference import make_prediction
from brainscan.scans.manifest import Item
from brainscan.training.multisource import breakdown, operating_threshold


def test_operating_threshold_keeps_the_target_share_of_validation_tumors():
    # 20 tumors scored 0.05, 0.10, ..., 1.00; 95% of 20 = 19 must stay at or above the threshold -> 0.10.
    tumor = np.arange(1, 21) / 20
    free = np.array([0.0, 0.02, 0.07, 0.5])
    y = np.array([0] * 20 + [2] * 4)
    out = operating_threshold(y, np.concatenate([tumor, free]), notumor=2, sensitivity=0.95)
    assert out["tumor_probability"] == pytest.approx(0.10)
    assert out["sensitivity"] == pytest.approx(19 / 20)
    assert out["specificity"] == pytest.approx(3 / 4)  # 0.5 is called tumor


def test_breakdown_per_source_and_sequence():
    classes = ["glioma", "notumor"]
    items = [Item("a", "glioma", "lgg", "flair", "g1"), Item("b", "notumor", "lgg", "flair", "g1"),
             Item("c", "notumor", "ms", "t2", "g2"), Item("d", "notumor", "ms", "t2", "g3")]
    y = np.array([0, 1, 1, 1])
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.1, 0.9]])
    out = breakdown(items, y, probs, classes, threshold=0.5)
    assert out["lgg/flair"] == {"n": 2, "n_tumor": 1, "accuracy": 1.0, "called_tumor": 0.5, "tumor_roc_auc": 1.0,
                                "sensitivity": 1.0, "specificity": 1.0}
    assert out["ms/t2"]["called_tumor"] == 0.5 and out["ms/t2"]["accuracy"] == 0.5
    assert "tumor_roc_auc" not in out["ms/t2"] and "sensitivity" not in out["ms/t2"]  # one kind only
    assert "lgg/all" not in out  # one sequence: nothing to pool


def test_breakdown_pools_the_sequences_of_a_source_at_one_threshold():
    classes = ["glioma", "notumor"]
    # FLAIR scores high, T1 low: each sequence alone separates perfectly, pooled they do not.
    items = [Item(str(i), lbl, "lgg", seq, "g") for i, (lbl, seq) in enumerate(
        [("glioma", "flair"), ("notumor", "flair"), ("glioma", "t1"), ("notumor", "t1")])]
    y = np.array([0, 1, 0, 1])
    p_tumor = np.array([0.9, 0.6, 0.4, 0.1])
    out = breakdown(items, y, np.stack([p_tumor, 1 - p_tumor], axis=1), classes, threshold=0.5)
    assert out["lgg/flair"]["tumor_roc_auc"] == out["lgg/t1"]["tumor_roc_auc"] == 1.0
    assert out["lgg/all"]["n"] == 4 and out["lgg/all"]["tumor_roc_auc"] == pytest.approx(0.75)  # 3 of 4 pairs
    assert out["lgg/all"]["sensitivity"] == 0.5 and out["lgg/all"]["specificity"] == 0.5


@dataclass
class _FakeModel:
    """Just what predict_batch reads: fixed logits, a card threshold."""

    logits: np.ndarray
    tumor_threshold: float | None
    classes: tuple = ("glioma", "meningioma", "notumor", "pituitary")
    temperature: float = 1.0
    ood: dict = None

    def features_and_logits(self, x):
        return np.zeros((len(x), 2), np.float32), self.logits


def test_the_operating_threshold_decides_tumor_or_not():
    from brainscan.runtime.inference import predict_batch

    # p = softmax: notumor most probable (0.5) but P(tumor) = 0.5 >= 0.3 -> a tumor class (the likeliest: glioma)
    logits = np.log(np.array([[0.3, 0.1, 0.5, 0.1], [0.6, 0.1, 0.2, 0.1]]))
    x = np.zeros((2, 8, 8, 1), np.float32)
    low = predict_batch(_FakeModel(logits, 0.3, classes=list(_FakeModel.classes)), x)
    assert [p.label for p in low] == ["glioma", "glioma"]
    high = predict_batch(_FakeModel(logits, 0.85, classes=list(_FakeModel.classes)), x)
    assert [p.label for p in high] == ["notumor", "notumor"]  # P(tumor) 0.5 and 0.8 are below 0.85
    plain = predict_batch(_FakeModel(logits, None, classes=list(_FakeModel.classes)), x)
    assert [p.label for p in plain] == ["notumor", "glioma"]  # no threshold: the most probable class


def test_mask_input_lines_up_with_the_prepared_image(tmp_path):
    from brainscan.scans.batch import load_gray
    from brainscan.scans.preprocess import prepare
    from brainscan.training.guidance import mask_input

    img = np.zeros((96, 96), np.uint8)
    yy, xx = np.mgrid[0:96, 0:96]
    img[(yy - 50) ** 2 / 30**2 + (xx - 44) ** 2 / 26**2 <= 1] = 90  # an off-centre head
    img[30:38, 52:60] = 250  # a bright lesion
    mask = np.zeros_like(img)
    mask[30:38, 52:60] = 255
    Image.fromarray(img).save(tmp_path / "img.png")
    Image.fromarray(mask).save(tmp_path / "mask.png")
    m = mask_input(str(tmp_path / "img.png"), str(tmp_path / "mask.png"), 48)
    x = prepare(load_gray(str(tmp_path / "img.png")), 48, keep_steps=False).input[..., 0]
    lesion = x > 0.9 * x.max()
    assert m.shape == (48, 48) and m.max() > 0.9
    centroid = lambda a: np.array(np.nonzero(a > 0.5)).mean(axis=1)  # noqa: E731
    assert np.abs(centroid(m) - centroid(lesion)).max() <= 1.0


def test_stripped_outline_lines_up_with_the_stripped_view_and_loses_what_the_strip_peeled(tmp_path):
    from brainscan.scans.batch import prepare_one
    from brainscan.training.guidance import mask_input, mask_targets

    img = np.zeros((96, 96), np.uint8)
    yy, xx = np.mgrid[0:96, 0:96]
    img[(yy - 50) ** 2 / 34**2 + (xx - 46) ** 2 / 30**2 <= 1] = 90  # an off-centre head
    img[40:50, 50:60] = 250  # a bright lesion deep inside
    img[16:20, 44:48] = 250  # and a small one at the rim, which a strip of depth 0.3 peels off
    mask = np.zeros_like(img)
    mask[40:50, 50:60] = mask[16:20, 44:48] = 255
    Image.fromarray(img).save(tmp_path / "img.png")
    Image.fromarray(mask).save(tmp_path / "mask.png")
    plain = mask_input(str(tmp_path / "img.png"), str(tmp_path / "mask.png"), 48)
    m = mask_input(str(tmp_path / "img.png"), str(tmp_path / "mask.png"), 48, strip_depth=0.3)
    x = prepare_one(str(tmp_path / "img.png"), 48, strip_depth=0.3)[..., 0]
    lesion = x > 0.9 * x.max()
    centroid = lambda a: np.array(np.nonzero(a > 0.5)).mean(axis=1)  # noqa: E731
    assert np.abs(centroid(m) - centroid(lesion)).max() <= 1.0  # same crop as the stripped input
    assert np.abs(centroid(plain) - centroid(m)).max() > 2  # ... which differs from the plain crop
    blobs = lambda a: cv2.connectedComponents((a > 0.5).astype(np.uint8))[0] - 1  # noqa: E731
    assert blobs(plain) == 2 and blobs(m) == 1  # the rim lesion is gone from the stripped outline

    class Item:
        def __init__(self, mask, label):
            self.path, self.mask, self.label = str(tmp_path / "img.png"), mask, label

    items = [Item(str(tmp_path / "mask.png"), "glioma"), Item("", "notumor"), Item("", "glioma")]
    masks, has = mask_targets(items, 48, strip_depths=np.array([0.3, 0.3, 0.3]))
    assert masks.shape == (2, 3, 48, 48) and has.tolist() == [1.0, 1.0, 0.0]
    np.testing.assert_array_equal(masks[1, 0] > 0, m > 0.5)
    assert not masks[:, 1:].any()
    assert mask_targets(items, 48)[0].shape == (3, 48, 48)


def test_cam_target_is_the_covered_fraction_per_cell_with_a_weight_per_class():
    tf = pytest.importorskip("tensorflow")
    from brainscan.training.guidance import cam_loss, cam_target

    # Classes glioma, meningioma, notumor, pituitary; images: outlined meningioma, tumour-free, unoutlined glioma.
    mask = np.zeros((3, 8, 8, 1), np.float32)
    mask[0, :4, :4] = 1.0  # top-left quadrant
    mask[0, 4:6, 4:8] = 1.0  # half of the bottom-right cell
    t = cam_target(tf.constant(mask), tf.constant([1.0, 1.0, 0.0]), tf.constant([1, 2, 0], tf.int64), (2, 2),
                   4, 2).numpy()
    assert t.shape == (3, 2, 2, 5)
    np.testing.assert_allclose(t[0, ..., 0], [[1.0, 0.0], [0.0, 0.5]])
    np.testing.assert_array_equal(t[0, 0, 0, 1:], [0, 1, 0, 0])  # the outline guides meningioma's map only
    np.testing.assert_array_equal(t[1, 1, 1, 1:], [1, 1, 0, 1])  # tumour-free: every tumour map pushed down
    assert (t[1, ..., 0] == 0).all() and (t[2, ..., 1:] == 0).all()  # no outline known: no weight
    # A map that agrees (high meningioma logit in the tumour cell) loses less than one that disagrees; the other
    # classes' maps do not count for the outlined image; weight 0 costs 0.
    good = np.full((3, 2, 2, 4), -5.0, np.float32)
    good[0, 0, 0, 1] = 5.0
    bad = -good
    assert float(cam_loss(t, good)[0]) < float(cam_loss(t, bad)[0])
    other = good.copy()
    other[0, ..., 0] = 5.0  # glioma's map anywhere: no cost for a meningioma image
    assert float(cam_loss(t, other)[0]) == pytest.approx(float(cam_loss(t, good)[0]))
    assert float(cam_loss(t, good)[1]) < float(cam_loss(t, bad)[1])  # tumour-free: low tumour maps win
    assert float(cam_loss(t, bad)[2]) == 0.0


class _CamModel:
    """A model whose heatmap peaks where the test says."""

    classes = ["glioma", "notumor"]

    def __init__(self, size, peak):
        self.size, self.peak = size, peak

    def cam(self, x, class_index, method="gradcam", layer=None):
        cam = np.zeros((self.size, self.size), np.float32)
        cam[self.peak[1], self.peak[0]] = 1.0
        return cam


def test_pointing_tally_hits_baselines_and_random_share():
    from brainscan.evaluation.pointing import PointingTally
    from brainscan.scans.preprocess import prepare

    img = np.zeros((64, 64), np.float32)
    img[8:56, 8:56] = 0.5  # head: 48 x 48 = 2304 px
    img[16:24, 16:24] = 1.0  # bright tumour, 64 px
    mask = np.zeros((64, 64), bool)
    mask[16:24, 16:24] = True
    prepared = prepare(img, 64, keep_steps=False)
    box = prepared.box
    # The peak in model space that maps back onto the tumour centre, and one far from it.
    inside = (int((20 - box.x0) * 64 / box.side), int((20 - box.y0) * 64 / box.side))
    outside = (int((48 - box.x0) * 64 / box.side), int((48 - box.y0) * 64 / box.side))
    tally = PointingTally()
    glioma = make_prediction({"glioma": 0.9, "notumor": 0.1}, None)
    tally.add(_CamModel(64, inside), img, prepared, glioma, mask)
    tally.add(_CamModel(64, outside), img, prepared, glioma, mask)
    s = tally.summary()
    assert s["n"] == 2 and s["hit_rate"] == 0.5
    assert s["baseline_brightest_point"] == 1.0
    # the tumour's share of the head: 64 / 48^2, a little less as the 2 px blur widens the head (at most to 56^2)
    assert 64 / 56**2 <= s["baseline_random_point_in_head"] <= 64 / 48**2


def test_yes_no_near_duplicates_need_matching_pixels(tmp_path):
    from brainscan.evaluation.external import near_duplicates_of

    y, x = np.mgrid[0:64, 0:64]
    base = (128 + 60 * np.sin(x / 9.0) * np.cos(y / 11.0)).astype(np.uint8)
    striped = np.clip(base.astype(int) + 50 * ((y % 2) * 2 - 1), 0, 255).astype(np.uint8)  # same low frequencies
    other = np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)
    for name, arr in (("copy.png", base), ("twin.png", striped), ("other.png", other), ("ref.png", base)):
        Image.fromarray(arr).save(tmp_path / name)
    out = near_duplicates_of([str(tmp_path / n) for n in ("copy.png", "twin.png", "other.png")],
                             [str(tmp_path / "ref.png")])
    assert out["by_hash"].tolist()[:2] == [True, True]  # the hash proposes both ...
    assert out["confirmed"].tolist() == [True, False, False]  # ... the pixels confirm only the copy


@pytest.mark.slow
def test_recipe_run_writes_threshold_and_per_source_figures_and_predicts_with_them(tmp_path):
    from test_sources import make_data

    from brainscan.config import TrainConfig
    from brainscan.runtime.inference import load_model, predict_batch
    from brainscan.training.run import run

    root, recipe = make_data(tmp_path)
    out = tmp_path / "run"
    metrics = run(TrainConfig(data=str(root), out=str(out), recipe=str(recipe), img_size=32, epochs=1,
                              steps_per_epoch=2, batch_size=8, guide_cams=0.5, stripped=0.5, vflip=0.5,
                              seed=0))
    assert metrics
    card = json.loads((out / "card.json").read_text())
    assert card["training"]["upside_down_share"] == 0.5 and card["training"]["skull_stripped_share"] == 0.5
    t = card["operating_threshold"]
    assert t["chosen_on"] == "validation" and 0 <= t["tumor_probability"] <= 1
    assert t["sensitivity"] >= 0.95
    assert {"val", "test"} <= set(card["scores_by_source"])
    assert any(k.startswith("lgg/") for k in card["scores_by_source"]["val"])
    split = json.loads((out / "split.json").read_text())
    assert not set(split["files"]["train"]) & set(split["files"]["val"])
    model = load_model(out)
    assert model.tumor_threshold == pytest.approx(t["tumor_probability"])
    x = np.random.default_rng(0).random((4, 32, 32, 1)).astype(np.float32)
    for p in predict_batch(model, x):
        assert (p.label == "notumor") == (p.tumor_probability < model.tumor_threshold)
