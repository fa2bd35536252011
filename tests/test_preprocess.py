"""Preprocessing steps on tiny arrays with hand-checked expectations."""

import numpy as np
import pytest

from brainscan.scans import preprocess as pp
from brainscan.scans.synthetic import phantom


def test_to_gray_rgb_average_and_rescale():
    rgb = np.zeros((2, 2, 3), np.float32)
    rgb[0, 0] = [0.3, 0.6, 0.9]
    assert pp.to_gray(rgb)[0, 0] == pytest.approx(0.6)
    assert pp.to_gray(np.array([[0, 510]], np.float32)).tolist() == [[0.0, 1.0]]


def test_otsu_mask_separates_square_from_background():
    img = np.zeros((32, 32), np.uint8)
    img[8:24, 8:24] = 200
    mask = pp.otsu_mask(img)
    assert mask[16, 16] == 255 and mask[0, 0] == 0
    contour = pp.largest_contour(mask)
    box = pp.brain_box(contour, img.shape, margin=0.0)
    assert (box.x0, box.y0, box.side) == (8, 8, 16)


def test_brain_box_adds_margin_and_is_square():
    img = np.zeros((40, 40), np.uint8)
    img[10:30, 5:15] = 255  # 10 wide, 20 tall
    box = pp.brain_box(pp.largest_contour(img), img.shape, margin=0.1)
    assert box.side == 24  # 20 * 1.2
    assert (box.x0 + box.side / 2, box.y0 + box.side / 2) == (10, 20)


def test_crop_square_pads_outside_image():
    img = np.arange(16, dtype=np.float32).reshape(4, 4)
    out = pp.crop_square(img, pp.CropBox(-1, -1, 3))
    assert out.tolist() == [[0, 0, 0], [0, 0, 1], [0, 4, 5]]


def test_normalize_intensity_stretches_foreground():
    img = np.zeros((10, 10), np.float32)
    img[2:8, 2:8] = np.linspace(0.2, 0.4, 36).reshape(6, 6)
    out = pp.normalize_intensity(img, 0, 100)
    assert out[2, 2] == pytest.approx(0.0) and out[7, 7] == pytest.approx(1.0) and out[0, 0] == 0.0


def test_prepare_crops_to_the_head_and_keeps_steps():
    img, _ = phantom(64, lesion=True, seed=1)
    big = np.zeros((100, 140), np.float32)
    big[20:84, 50:114] = img
    prepared = pp.prepare(big, size=32)
    assert prepared.input.shape == (32, 32, 1) and prepared.input.dtype == np.float32
    assert prepared.brain_found and not prepared.notes
    b = prepared.box
    assert 45 <= b.x0 <= 60 and 15 <= b.y0 <= 30 and 50 <= b.side <= 70
    assert [c for c, _ in prepared.steps][0] == "1. Grayscale"
    assert len(prepared.steps) == 6 and all(im.dtype == np.uint8 for _, im in prepared.steps)


def test_prepare_without_brain_uses_whole_image_and_says_so():
    prepared = pp.prepare(np.zeros((20, 30), np.float32), size=16)
    assert not prepared.brain_found
    assert "whole image" in prepared.notes[0]
    assert prepared.box == pp.CropBox(0, -5, 30)


def test_to_original_undoes_crop_and_resize():
    heat = np.zeros((4, 4), np.float32)
    heat[0, 0] = 1.0
    box = pp.CropBox(10, 20, 8)
    out = pp.to_original(heat, box, (40, 40))
    assert out.shape == (40, 40)
    row, col = np.unravel_index(out.argmax(), out.shape)
    assert (col, row) == (10, 20)
    assert out[:20].max() == 0 and out[:, :10].max() == 0 and out[28:].max() == 0


def test_preprocess_and_io_do_not_import_tensorflow():
    import subprocess
    import sys

    code = ("import sys, brainscan.scans.io, brainscan.scans.dicom, brainscan.scans.preprocess, brainscan.cam.overlay, "
            "brainscan.scans.datasets, "
            "brainscan.scans.convert, brainscan.scans.synthetic, brainscan.evaluation.metrics, brainscan.cli;"
            "brainscan.cli.build_parser(); assert 'tensorflow' not in sys.modules, 'tensorflow imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_strip_skull_peels_a_ring_of_the_given_depth():
    # A filled disk of radius 40: its largest inscribed radius is 40, so depth 0.25 keeps what lies
    # more than 10 px inside the outline, i.e. within radius ~30 of the centre.
    yy, xx = np.mgrid[:128, :128]
    r = np.hypot(yy - 64, xx - 64)
    head = np.where(r <= 40, 0.6, 0.0).astype(np.float32)
    stripped = pp.strip_skull(head, depth=0.25)
    assert stripped[64, 64] == pytest.approx(0.6)
    assert stripped[64, 64 + 27] == pytest.approx(0.6)  # 13 px inside the outline: kept
    assert stripped[64, 64 + 33] == 0.0  # 7 px inside the outline: peeled
    assert np.all(stripped[r > 40] == 0.0)
    kept = np.count_nonzero(stripped)
    assert np.pi * 28**2 < kept < np.pi * 32**2


def test_strip_skull_leaves_an_image_without_head_unchanged():
    blank = np.zeros((32, 32), np.float32)
    assert np.array_equal(pp.strip_skull(blank), blank)


def test_strip_skull_then_prepare_crops_tighter_than_the_head():
    img, _ = phantom(size=128)
    whole = pp.prepare(img, 32, keep_steps=False)
    stripped = pp.prepare(pp.strip_skull(img, 0.2), 32, keep_steps=False)
    assert stripped.box.side < whole.box.side
