"""The command-line contract, through real subprocesses: JSON Lines, exit codes, no tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from bad_inputs import catalogue

from brainscan.scans.synthetic import phantom

ROOT = Path(__file__).resolve().parent.parent


def brainscan(*args: str, model: str | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if model:
        env["BRAINSCAN_MODEL"] = model
    return subprocess.run([sys.executable, "-m", "brainscan", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=timeout)


def write_phantom(path: Path, size: int = 96, centre=(30, 60)) -> Path:
    img, _ = phantom(size, lesion=True, seed=5, lesion_center=centre)
    cv2.imwrite(str(path), np.rint(img * 255).astype(np.uint8))
    return path


def test_usage_errors_exit_2_without_traceback():
    for args in ([], ["predict"], ["frobnicate"], ["predict", "--cam-method", "lime", "x.png"]):
        r = brainscan(*args)
        assert r.returncode == 2, args
        assert "Traceback" not in r.stderr and "usage" in r.stderr


def test_missing_model_is_a_usage_error(tmp_path):
    r = brainscan("predict", str(write_phantom(tmp_path / "a.png")), "--model", str(tmp_path / "nope"))
    assert r.returncode == 2 and "not a model folder" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("args", [["promote", "/nonexistent"], ["evaluate", "/nonexistent"],
                                  ["external", "--model", "/nonexistent"]])
def test_refused_folders_are_usage_errors_without_traceback(args, tmp_path):
    r = brainscan(*args[:1], *(a.replace("/nonexistent", str(tmp_path / "nonexistent")) for a in args[1:]))
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("error: ") and "Traceback" not in r.stderr and len(r.stderr.splitlines()) == 1


@pytest.mark.slow
def test_predict_json_lines_in_input_order_with_cam(tiny_model, tmp_path, make_dicom):
    a = write_phantom(tmp_path / "b_first.png")
    sub = tmp_path / "dir"
    sub.mkdir()
    write_phantom(sub / "x.png")
    img, _ = phantom(64, lesion=True, seed=2)
    (sub / "scan_without_extension").write_bytes(make_dicom((img * 1000).astype(np.uint16)))
    r = brainscan("predict", str(a), str(sub), "--cam", "--cam-out", str(tmp_path / "cams"), model=tiny_model)
    assert r.returncode == 0, r.stderr
    threshold = json.loads((Path(tiny_model) / "card.json").read_text())["operating_threshold"]["tumor_probability"]
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert [Path(d["file"]).name for d in lines] == ["b_first.png", "scan_without_extension", "x.png"]
    for d in lines:
        assert set(d["probabilities"]) == {"glioma", "meningioma", "notumor", "pituitary"}
        assert sum(d["probabilities"].values()) == pytest.approx(1.0, abs=1e-6)
        assert d["tumor_probability"] == pytest.approx(1 - d["probabilities"]["notumor"], abs=1e-6)
        # The answer is the model's decision: "tumor" at or above its operating threshold, then the likeliest type.
        tumors = {c: v for c, v in d["probabilities"].items() if c != "notumor"}
        expected = "notumor" if d["tumor_probability"] < threshold else max(tumors, key=tumors.get)
        assert d["label"] == expected
        x, y = d["cam_peak"]
        assert isinstance(x, int) and isinstance(y, int)
        assert Path(d["cam_overlay"]).is_file()
    assert 0 <= lines[0]["cam_peak"][0] < 96 and 0 <= lines[0]["cam_peak"][1] < 96
    assert "Doe" not in r.stdout and "Doe" not in r.stderr


def test_predict_says_when_cam_is_drawn_instead_of_an_empty_grad_cam(tiny_model, tmp_path):
    """A head whose every weight is negative leaves Grad-CAM empty (the features are non-negative); the JSON
    then names the map drawn (CAM) and the method it stands in for. With every weight positive it does not."""
    import shutil

    def with_head(name: str, sign: float) -> str:
        folder = tmp_path / name
        shutil.copytree(tiny_model, folder)
        with np.load(folder / "head.npz") as f:
            head = {k: np.asarray(f[k]) for k in f.files}
        np.savez(folder / "head.npz", **{**head, "kernel": sign * (np.abs(head["kernel"]) + 1e-3)})
        return str(folder)

    scan = write_phantom(tmp_path / "a.png")
    plain = json.loads(brainscan("predict", str(scan), "--cam", model=with_head("positive", 1.0)).stdout)
    assert plain["cam_method"] == "gradcam" and "cam_instead_of" not in plain
    r = brainscan("predict", str(scan), "--cam", model=with_head("negative", -1.0))
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["cam_method"] == "cam" and d["cam_instead_of"] == "gradcam"
    assert d["probabilities"] == plain["probabilities"]  # the prediction runs through model.tflite, untouched


@pytest.mark.slow
def test_bad_input_catalogue_gives_one_sentence_each_and_exit_1(tiny_model, tmp_path):
    good = write_phantom(tmp_path / "good.png")
    paths, words = [], []
    for key, (name, data, word) in catalogue().items():
        p = tmp_path / f"{key}_{name}"
        p.write_bytes(data)
        paths.append(str(p))
        words.append(word)
    r = brainscan("predict", *paths, str(good), model=tiny_model)
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(lines) == len(paths) + 1
    for line, path, word in zip(lines[:-1], paths, words, strict=True):
        assert line["file"] == path and set(line) == {"file", "error"}
        assert word.lower() in line["error"].lower(), line
        assert line["error"].count(". ") == 0 and line["error"].endswith(".")  # one sentence
    assert lines[-1]["label"] in ("glioma", "meningioma", "notumor", "pituitary")


def test_convert_writes_png_without_identifiers(tmp_path, make_dicom):
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.dcm").write_bytes(make_dicom(np.arange(32 * 32, dtype=np.uint16).reshape(32, 32)))
    (src / "junk.dcm").write_bytes(b"nope")
    r = brainscan("convert", str(src), "--out", str(tmp_path / "out"))
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert r.returncode == 1 and "Traceback" not in r.stderr
    ok = [d for d in lines if "output" in d]
    assert len(ok) == 1 and len(lines) == 2
    data = Path(ok[0]["output"]).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and b"Doe" not in data and b"DOE-4711" not in data
    assert cv2.imread(ok[0]["output"], cv2.IMREAD_UNCHANGED).shape == (32, 32)


@pytest.mark.slow
def test_evaluate_folder_json(tiny_model, tiny_dataset):
    r = brainscan("evaluate", tiny_dataset, "--model", tiny_model, "--json")
    assert r.returncode == 0, r.stderr
    m = json.loads(r.stdout)
    assert m["n_images"] == 64 and len(m["confusion_matrix"]) == 4
    assert "roc_auc" in m["tumor_vs_notumor"]
    confusion = np.array(m["confusion_matrix"])
    assert confusion.sum() == 64 and m["accuracy"] == pytest.approx(np.trace(confusion) / 64)
    # The same 4-class accuracy (of the most probable class), counted from predict's probabilities against the
    # class folders; predict's "label" is the thresholded decision, which the card reports as "called tumor".
    p = brainscan("predict", tiny_dataset, model=tiny_model)
    answers = [json.loads(line) for line in p.stdout.splitlines()]
    assert len(answers) == 64
    top = [max(a["probabilities"], key=a["probabilities"].get) for a in answers]
    truth = [Path(a["file"]).parent.name for a in answers]
    assert m["accuracy"] == pytest.approx(np.mean([t == c for t, c in zip(top, truth, strict=True)]))


@pytest.mark.slow
def test_bench_json_reports_stages_and_ratio(tiny_model):
    r = brainscan("bench", "--json", "--repeats", "2", model=tiny_model)
    assert r.returncode == 0, r.stderr
    b = json.loads(r.stdout)
    for stage in ("decode", "preprocess", "predict", "gradcam", "total"):
        assert b[f"{stage}_ms"] > 0
    assert b["speedup_vs_vgg19"] == pytest.approx(b["vgg19_predict_ms"] / b["total_ms"], rel=0.01)
    assert b["speedup_vs_vgg19_with_uncertainty"] == pytest.approx(
        b["vgg19_predict_ms"] / b["with_uncertainty_ms"], rel=0.01)
    assert b["runtime"] == "litert"


def test_export_litert_adds_the_runtime_files_to_an_older_folder(tiny_model, tmp_path):
    import shutil

    old = tmp_path / "old-model"
    shutil.copytree(tiny_model, old)
    for name in ("model.tflite", "head.npz"):
        (old / name).unlink()
    before = brainscan("predict", str(write_phantom(tmp_path / "a.png")), model=str(old))
    assert before.returncode == 0, before.stderr  # runs through Keras meanwhile
    r = brainscan("export-litert", str(old))
    assert r.returncode == 0, r.stderr
    assert (old / "model.tflite").is_file() and (old / "head.npz").is_file()
    after = brainscan("predict", str(tmp_path / "a.png"), model=str(old))
    p_before, p_after = json.loads(before.stdout)["probabilities"], json.loads(after.stdout)["probabilities"]
    assert p_after == pytest.approx(p_before, abs=1e-4)


def test_familiarity_refits_the_pixel_check_of_a_model_folder(tiny_model, tiny_dataset, tmp_path):
    import shutil

    folder = tmp_path / "m"
    shutil.copytree(tiny_model, folder)
    before = dict(np.load(folder / "ood.npz"))
    r = brainscan("familiarity", str(folder), "--data", tiny_dataset)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    files = json.loads((folder / "split.json").read_text())["files"]
    assert (report["train"], report["val"], report["test_dedup"]) == tuple(
        len(files[k]) for k in ("train", "val", "test_dedup"))
    card = json.loads((folder / "card.json").read_text())
    assert card["scores"]["test_dedup"]["flagged_unfamiliar"] == report["test_dedup_flagged"]
    # The share flagged is the share predict (on the refitted folder) calls out of distribution; one scan
    # at the threshold may tip either way between a batch and single scans.
    p = brainscan("predict", *(str(Path(tiny_dataset) / f) for f in files["test_dedup"]), model=str(folder))
    flagged = [json.loads(line)["out_of_distribution"] for line in p.stdout.splitlines()]
    assert len(flagged) == report["test_dedup"]
    assert report["test_dedup_flagged"] == pytest.approx(np.mean(flagged), abs=1 / len(flagged) + 1e-9)
    after = dict(np.load(folder / "ood.npz"))
    assert set(after) == set(before)  # same checks, refitted; the feature check is kept as it was
    np.testing.assert_array_equal(after["val_distances"], before["val_distances"])
