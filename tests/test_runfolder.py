"""brainscan.runfolder: the run folder's names, the one status updater, the leftovers of a killed save, and the
TrainConfig <-> command line round trip that the run manager, the CLI's parser and cmd_train share. Also the
trainer's side: training/run.py writes status through the same updater and gives SIGTERM back when it ends."""

from __future__ import annotations

import dataclasses
import json
import signal
import sys
from pathlib import Path

import pytest

from brainscan import cli, runfolder, runs
from brainscan.config import DISTRIBUTE_CHOICES, TrainConfig
from brainscan.training.architectures import NAMES as ARCHITECTURES


def every_field_changed() -> TrainConfig:
    """A TrainConfig whose every field (from dataclasses.fields, so a new one is included) is not its default."""
    values = {}
    for f in dataclasses.fields(TrainConfig):
        default = None if f.default is dataclasses.MISSING else f.default
        if f.name == "arch":  # the CLI's parser allows only registered architectures
            values[f.name] = next(a for a in ARCHITECTURES if a != default)
        elif f.name == "distribute":  # and only the listed strategies
            values[f.name] = next(c for c in DISTRIBUTE_CHOICES if c != default)
        elif f.type == "bool":
            values[f.name] = not default
        elif f.type == "int":
            values[f.name] = (default or 0) + 7
        elif f.type == "float":
            values[f.name] = (default or 0) + 0.25
        else:
            values[f.name] = f"{f.name}-value"
    cfg = TrainConfig(**values)
    for f in dataclasses.fields(TrainConfig):
        assert getattr(cfg, f.name) != f.default, f.name
    return cfg


def test_every_field_survives_the_command_line_both_ways() -> None:
    cfg = every_field_changed()
    argv = runfolder.train_argv(cfg)
    assert runfolder.parse_train_argv(argv) == cfg
    args = cli.build_parser().parse_args(["train", *argv])  # the CLI's own parser, with its help and choices
    assert runfolder.config_from_args(args) == cfg
    assert "--lr" in argv and "--no-augment" in argv and "--time-limit" in argv and "--img-size" in argv
    defaults = TrainConfig(data="d", out="o")
    assert runfolder.parse_train_argv(runfolder.train_argv(defaults)) == defaults
    assert runfolder.train_argv(defaults)[:4] == ["--data", "d", "--out", "o"]
    assert "--no-augment" not in runfolder.train_argv(defaults) and "--name" not in runfolder.train_argv(defaults)


def test_the_cli_train_parser_has_one_option_per_field() -> None:
    sub = next(a for a in cli.build_parser()._actions if isinstance(a, cli.argparse._SubParsersAction))
    dests = {a.dest for a in sub.choices["train"]._actions if a.dest != "help"}
    assert dests == {f.dest for f in runfolder.TRAIN_FLAGS}
    assert len(runfolder.TRAIN_FLAGS) == len(dataclasses.fields(TrainConfig))


def test_cmd_train_builds_its_config_through_the_same_mapping(monkeypatch) -> None:
    from brainscan.training import run as training_run

    seen = []
    monkeypatch.setattr(training_run, "run", lambda cfg: seen.append(cfg) or {"ok": 1})
    cfg = every_field_changed()
    assert cli.main(["train", *runfolder.train_argv(cfg)]) == 0
    assert seen == [cfg]


def test_odd_values_and_unknown_settings() -> None:
    cfg = TrainConfig(data="-odd folder", out="o", name="-x", learning_rate=1e-05)
    assert runfolder.parse_train_argv(runfolder.train_argv(cfg)) == cfg
    assert runfolder.train_argv({"data": "d", "epochs": 3}) == ["--data", "d", "--epochs", "3"]
    with pytest.raises(ValueError, match="Unknown training setting: lr"):
        runfolder.train_argv({"data": "d", "lr": 0.1})
    with pytest.raises(runs.RunError, match="Unknown training settings: colour, lr"):
        runs.config_dict({"data": "d", "lr": 0.1, "colour": "red"})


def test_the_run_manager_passes_every_setting_on(tmp_path: Path) -> None:
    """runs.train_command dropped recipe, lesions, vflip, randconv, stripped, guide_cams (and more) before."""
    cfg = every_field_changed()
    cmd = runs.train_command(runs.config_dict(cfg), tmp_path / "run")
    assert cmd[:4] == [sys.executable, "-m", "brainscan", "train"]
    expected = dataclasses.replace(cfg, data=str(runs.resolve_data_path(cfg.data)), out=str(tmp_path / "run"))
    assert runfolder.parse_train_argv(cmd[4:]) == expected
    recipe_only = runs.train_command(runs.config_dict({"recipe": "recipes/v3.toml"}), tmp_path / "r")
    assert "--data" not in recipe_only and recipe_only[-2:] == ["--recipe", "recipes/v3.toml"]


def test_one_status_updater(tmp_path: Path) -> None:
    runfolder.update_status(tmp_path, state="running", pid=12)
    status = runfolder.update_status(tmp_path, message="hello")
    assert status["state"] == "running" and status["pid"] == 12 and status["message"] == "hello"
    assert json.loads((tmp_path / runfolder.STATUS_FILE).read_text()) == status == runfolder.read_status(tmp_path)
    from brainscan.training.run import set_status

    set_status(tmp_path, "failed", message="boom")
    assert runfolder.read_status(tmp_path)["state"] == "failed" and runfolder.read_status(tmp_path)["pid"] == 12


def test_the_leftovers_of_a_killed_save(tmp_path: Path) -> None:
    run = tmp_path / "r"
    for name in (".model-new", "..model-new.tmp-1-2", ".card.json.new-3-4"):
        (run / name).mkdir(parents=True)
    (run / "model.keras").write_bytes(b"moved before the kill")
    (run / "status.json").write_text("{}")
    (run / "log.txt").write_text("")
    removed = runfolder.remove_killed_save(run)
    assert sorted(p.name for p in removed) == sorted([".model-new", "..model-new.tmp-1-2", ".card.json.new-3-4",
                                                      "model.keras"])
    assert sorted(p.name for p in run.iterdir()) == ["log.txt", "status.json"]
    (run / "model.keras").write_bytes(b"a complete model")
    (run / "card.json").write_text("{}")
    assert runfolder.remove_killed_save(run) == [] and (run / "model.keras").is_file()


def test_in_process_training_gives_sigterm_back(tmp_path: Path, monkeypatch) -> None:
    """training.run installs its own SIGTERM handler (stop after the batch); it must not outlive the run."""
    from brainscan.training import run as training_run

    def mine(*_):
        pass

    previous = signal.signal(signal.SIGTERM, mine)
    try:
        during = []

        def fake_steps(cfg, run_dir):
            during.append(signal.getsignal(signal.SIGTERM))
            return {"ok": 1}

        monkeypatch.setattr(training_run, "_run", fake_steps)
        assert training_run.run(TrainConfig(data="d", out=str(tmp_path / "a"))) == {"ok": 1}
        assert during[0] is not mine and signal.getsignal(signal.SIGTERM) is mine

        def failing_steps(cfg, run_dir):
            raise RuntimeError("no data")

        monkeypatch.setattr(training_run, "_run", failing_steps)
        with pytest.raises(RuntimeError):
            training_run.run(TrainConfig(data="d", out=str(tmp_path / "b")))
        assert signal.getsignal(signal.SIGTERM) is mine
        assert runfolder.read_status(tmp_path / "b")["state"] == "failed"

        training_run._Stop.requested = True  # a run stopped earlier in this process does not stop the next
        monkeypatch.setattr(training_run, "_run", lambda cfg, run_dir: {"requested": training_run._Stop.requested})
        assert training_run.run(TrainConfig(data="d", out=str(tmp_path / "c"))) == {"requested": False}
    finally:
        signal.signal(signal.SIGTERM, previous)
