"""training.progress: the record the trainer writes and the Train page reads, and the trainer's log lines."""

import json

from brainscan.training import progress


def test_progress_round_trips_through_the_file_in_the_old_format(tmp_path, capsys):
    p = progress.Progress(3, 20, 12.5, 70.0, {"loss": 0.5, "val_accuracy": 0.75})
    progress.write_progress(tmp_path, p)
    assert json.loads((tmp_path / "progress.json").read_text()) == {
        "epoch": 3, "epochs": 20, "elapsed_s": 12.5, "eta_s": 70.0, "loss": 0.5, "val_accuracy": 0.75}
    assert progress.read_progress(tmp_path) == p


def test_no_or_broken_progress_reads_as_none(tmp_path):
    assert progress.read_progress(tmp_path) is None
    (tmp_path / "progress.json").write_text('{"epoch": "x"}')
    assert progress.read_progress(tmp_path) is None


def test_the_trainers_own_lines_are_told_from_tensorflows(capsys):
    progress.log("epoch 1/2 loss=0.1")
    line = capsys.readouterr().out.strip()
    assert progress.is_trainer_line(line)
    assert progress.is_trainer_line("ValueError: bad")
    assert progress.is_trainer_line("Traceback (most recent call last):")
    assert not progress.is_trainer_line("I0000 00:00:1796183192.707099 14580 port.cc:153] oneDNN custom operations")
    assert not progress.is_trainer_line("epoch 1/2 without a time stamp")
