"""The case library (case_library/) and the quiz's rules (brainscan.scans.cases, brainscan.app.teaching)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from brainscan.scans import cases as case_lib
from brainscan.scans.io import load_scan

ROOT = Path(__file__).resolve().parents[1]
LIB = ROOT / "case_library"
ALLOWED = {"ixi-t1-midaxial", "ms-ljubljana-slices", "lgg-tcga-slices", "brats2013-slices"}
LIBRARY = case_lib.load_library()


def test_library_is_a_spread_of_allowed_sources_and_small() -> None:
    assert 20 <= len(LIBRARY) <= 30
    assert {c.source for c in LIBRARY} == ALLOWED  # never brain-tumor-mri or navoneel-yes-no
    raw = json.loads((LIB / "cases.json").read_text())["cases"]
    assert not any("brain-tumor-mri" in json.dumps(c) or "navoneel" in json.dumps(c) for c in raw)
    assert {c.truth for c in LIBRARY} == {"glioma", "notumor"}  # no invented meningioma / pituitary
    assert {c.sequence for c in LIBRARY} >= {"flair", "t1", "t1c"}
    assert any(c.source == "ms-ljubljana-slices" and c.sequence == "flair" for c in LIBRARY)  # the hard negative
    total = sum(p.stat().st_size for p in LIB.rglob("*") if p.is_file())
    assert total < 3 * 1024 * 1024
    files = {p.relative_to(LIB).as_posix() for p in LIB.rglob("*.png")}
    listed = {c["file"] for c in raw} | {c["mask"] for c in raw if c["mask"]}
    assert files == listed  # nothing unlisted, nothing missing


@pytest.mark.parametrize("case", LIBRARY, ids=[c.id for c in LIBRARY])
def test_every_case_loads_has_attribution_and_the_right_outline(case: case_lib.Case) -> None:
    scan = load_scan(case.data(), case.name)
    assert float(scan.pixels.max()) - float(scan.pixels.min()) > 0.25  # real contrast (one T1 is dim)
    assert case.licence and case.attribution and case.original_file.startswith(case.source + "/")
    readme = (LIB / "README.md").read_text()
    assert f"`images/{case.id}.png`" in readme and case.licence in readme
    mask = case.mask()
    if case.tumour:
        assert mask is not None and mask.shape == scan.pixels.shape and 50 < mask.sum() < mask.size / 2
    else:
        assert mask is None


def test_quiz_is_fixed_by_n_and_seed() -> None:
    a = case_lib.quiz_cases(LIBRARY, 8, 7)
    assert [c.id for c in a] == [c.id for c in case_lib.quiz_cases(LIBRARY, 8, 7)]
    assert len(a) == 8 and len({c.id for c in a}) == 8
    assert [c.id for c in a] != [c.id for c in case_lib.quiz_cases(LIBRARY, 8, 8)]
    assert len(case_lib.quiz_cases(LIBRARY, 999, 1)) == len(LIBRARY)


def test_scoring_rules() -> None:
    glioma = next(c for c in LIBRARY if c.tumour)
    free = next(c for c in LIBRARY if not c.tumour)
    mask = glioma.mask()
    ys, xs = np.nonzero(mask)
    inside_pt, outside_pt = (int(xs[0]), int(ys[0])), (0, 0)
    s = case_lib.score(glioma, case_lib.Answer(True, "glioma", inside_pt), mask)
    assert s == {"tumour": True, "type": True, "place": True}
    s = case_lib.score(glioma, case_lib.Answer(True, "meningioma", outside_pt), mask)
    assert s == {"tumour": True, "type": False, "place": False}
    assert case_lib.score(glioma, case_lib.Answer(False), mask) == {"tumour": False, "type": False, "place": None}
    assert case_lib.score(free, case_lib.Answer(False)) == {"tumour": True, "type": None, "place": None}
    assert case_lib.score(free, case_lib.Answer(True, "glioma", (3, 3))) == {"tumour": False, "type": None,
                                                                            "place": None}
    t = case_lib.totals([{"tumour": True, "type": None, "place": None}, {"tumour": False, "type": False,
                                                                          "place": True}])
    assert t == {"tumour": (1, 2), "type": (0, 1), "place": (1, 1)}
    assert case_lib.model_answer("notumor", (1, 2)) == case_lib.Answer(False, None, (1, 2))
    assert case_lib.model_answer("meningioma", (1, 2)) == case_lib.Answer(True, "meningioma", (1, 2))


def test_outline_drawing_and_peak_sentence() -> None:
    mask = np.zeros((64, 64), bool)
    mask[20:40, 20:40] = True
    rgb = np.zeros((64, 64, 3), np.uint8)
    out = case_lib.draw_outline(rgb, mask, (30, 30))
    assert (out == case_lib.OUTLINE_RGB).all(axis=2).sum() > 40  # the outline is drawn in green
    assert rgb.max() == 0  # the input is left alone
    assert case_lib.inside(mask, (30, 30)) and not case_lib.inside(mask, (5, 5))
    assert not case_lib.inside(mask, (500, 5))
    assert "**inside**" in case_lib.peak_sentence(mask, (30, 30), "Glioma")
    far = case_lib.peak_sentence(mask, (5, 30), "Glioma")
    assert "**outside**" in far and "15 pixels" in far
    assert "no tumour" in case_lib.peak_sentence(None, (5, 5), "No tumor")


def test_check_case_points_the_heatmap_of_the_tumour_class(tiny_model) -> None:
    from brainscan.app.case_check import check_case
    from brainscan.runtime.inference import load_model

    model = load_model(tiny_model)
    case = next(c for c in LIBRARY if c.tumour)
    cc = check_case(model, case)
    probs = cc.result.prediction.probabilities
    assert cc.cam_class == max((k for k in probs if k != "notumor"), key=probs.get)
    assert cc.result.heatmap.class_index == model.classes.index(cc.cam_class)
    assert cc.result.heatmap.original.shape == cc.mask.shape
    assert cc.peak_inside == bool(cc.mask[cc.result.heatmap.peak[1], cc.result.heatmap.peak[0]])


def test_build_script_reproduces_the_library(tmp_path) -> None:
    data = ROOT.parent / "shared" / "data"
    if not (data / "lgg-tcga-slices").is_dir():
        data = Path("/work/shared/data")
    if not (data / "lgg-tcga-slices").is_dir():
        pytest.skip("the shared data sets are not on this machine")
    import importlib.util

    spec = importlib.util.spec_from_file_location("build_case_library", ROOT / "scripts" / "build_case_library.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    (tmp_path / "README.md").write_text((LIB / "README.md").read_text())
    module.build(data, tmp_path)
    assert json.loads((tmp_path / "cases.json").read_text()) == json.loads((LIB / "cases.json").read_text())
    for p in LIB.rglob("*.png"):
        a = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
        b = cv2.imread(str(tmp_path / p.relative_to(LIB)), cv2.IMREAD_UNCHANGED)
        assert np.array_equal(a, b), p.name
    assert (tmp_path / "README.md").read_text() == (LIB / "README.md").read_text()
