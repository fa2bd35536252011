"""brainscan.modelfolder: finding the default model honours both environment variables."""

import json

import pytest

from brainscan import config, modelfolder
from brainscan.errors import ModelError


def make_folder(path, name="m"):
    path.mkdir(parents=True)
    (path / modelfolder.CARD_FILE).write_text(json.dumps({"name": name, "classes": ["notumor", "tumor"],
                                                          "input_size": 32}))
    return path


def test_find_model_dir_honours_the_models_dir_variable(tmp_path, monkeypatch):
    """A model promoted into $BRAINSCAN_MODELS_DIR (runs.promote writes there) is the one the app loads."""
    monkeypatch.delenv(config.MODEL_ENV, raising=False)
    monkeypatch.setenv(config.MODELS_ENV, str(tmp_path / "models"))
    make_folder(tmp_path / "models" / "b")
    assert modelfolder.find_model_dir() == tmp_path / "models" / "b"  # no default: the first folder with a card
    make_folder(tmp_path / "models" / "default")
    assert modelfolder.find_model_dir() == tmp_path / "models" / "default"
    monkeypatch.setenv(config.MODEL_ENV, str(tmp_path / "models" / "b"))  # one folder named outright wins
    assert modelfolder.find_model_dir() == tmp_path / "models" / "b"


def test_an_empty_models_dir_is_a_clear_model_error(tmp_path, monkeypatch):
    monkeypatch.delenv(config.MODEL_ENV, raising=False)
    monkeypatch.setenv(config.MODELS_ENV, str(tmp_path / "empty"))
    assert modelfolder.find_model_dir() is None
    with pytest.raises(ModelError, match="No model found in .*empty"):
        modelfolder.find_default_model()


def test_read_folder_reads_the_card_and_refuses_other_folders(tmp_path):
    folder, card, ood = modelfolder.read_folder(make_folder(tmp_path / "m", "x"))
    assert folder == tmp_path / "m" and card["name"] == "x" and ood == {}
    with pytest.raises(ModelError, match="not a model folder"):
        modelfolder.read_folder(tmp_path)


def test_replace_dir_swaps_a_whole_folder(tmp_path):
    old = make_folder(tmp_path / "dst", "old")
    new = make_folder(tmp_path / "src", "new")
    modelfolder.replace_dir(new, old)
    assert json.loads((tmp_path / "dst" / "card.json").read_text())["name"] == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dst"]
