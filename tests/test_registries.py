"""One registry each for architectures and CAM methods: the CLI, the run manager and the pages read them."""

import argparse
import dataclasses

import pytest

from brainscan import cli, runfolder, runs
from brainscan.cam import methods as cam_methods
from brainscan.training import architectures


def subparser(name: str) -> argparse.ArgumentParser:
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]


def choices(parser: argparse.ArgumentParser, flag: str) -> tuple:
    return tuple(next(a for a in parser._actions if flag in a.option_strings).choices)


def test_the_cli_offers_exactly_the_registered_architectures_and_cam_methods():
    assert choices(subparser("train"), "--arch") == architectures.NAMES
    assert choices(subparser("predict"), "--cam-method") == cam_methods.CAM_METHODS


def test_the_run_manager_accepts_a_new_registry_entry_without_other_edits(monkeypatch, tmp_path):
    entry = architectures.Architecture("tiny", "Tiny test network", False, lambda *a: None)
    monkeypatch.setitem(architectures.ARCHITECTURES, "tiny", entry)
    assert runs.config_dict({"data": str(tmp_path), "arch": "tiny"})["arch"] == "tiny"
    with pytest.raises(runs.RunError, match="Unknown architecture 'nope'; choose one of compact, "):
        runs.config_dict({"data": str(tmp_path), "arch": "nope"})


def test_the_cli_train_defaults_are_the_training_config_defaults():
    """Every TrainConfig field (taken from the dataclass, so a new field cannot escape) has its option, whose
    default as parsed is the field's default."""
    from brainscan.config import TRAIN_DEFAULTS, TrainConfig

    args = cli.build_parser().parse_args(["train", "--data", "d", "--out", "o"])
    assert runfolder.config_from_args(args) == TrainConfig(data="d", out="o")
    flags = {f.field: f for f in runfolder.TRAIN_FLAGS}
    for field in dataclasses.fields(TrainConfig):
        if field.name in ("data", "out"):
            continue
        raw = getattr(args, flags[field.name].dest)  # e.g. args.lr, args.no_augment
        parsed = (not field.default if raw else field.default) if flags[field.name].type is bool else raw
        assert parsed == TRAIN_DEFAULTS[field.name] == field.default, field.name


def test_every_cam_method_has_its_closed_form_and_labels():
    for name, m in cam_methods.REGISTRY.items():
        assert callable(m.closed_form), name
        assert cam_methods.CAM_LABELS[name] == m.label
    with pytest.raises(ValueError, match="Unknown CAM method 'lime'"):
        cam_methods.get("lime")


@pytest.mark.slow
def test_every_cam_method_has_its_keras_visualiser():
    from brainscan.cam import keras_vis

    assert set(keras_vis.VISUALIZERS) == set(cam_methods.CAM_METHODS)


def test_an_unknown_architecture_is_a_model_error():
    from brainscan.errors import ModelError

    with pytest.raises(ModelError, match="Unknown architecture 'resnet'; choose one of compact, efficientnet_lite0, "
                                         "efficientnetb0, vgg19"):
        architectures.build_model("resnet", 32, 4)
