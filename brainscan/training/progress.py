"""The progress record of a training run, shared by the trainer (writes) and the Train page (reads).

progress.json holds one Progress after every epoch; log.txt holds the trainer's own lines, each
starting with "[HH:MM:SS] " (log()); is_trainer_line() tells them from TensorFlow's chatter.
No TensorFlow here.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from brainscan.modelfolder import read_json, write_json
from brainscan.runfolder import PROGRESS_FILE

_TRAINER_LINE = re.compile(r"^(\[\d\d:\d\d:\d\d\] |error|Error|Traceback|\w+Error)")  # log()'s format and errors


@dataclass
class Progress:
    epoch: int  # epochs finished, 1-based
    epochs: int  # the most the run will do
    elapsed_s: float
    eta_s: float
    metrics: dict[str, float] = field(default_factory=dict)  # Keras logs: loss, accuracy, val_loss, val_accuracy

    def as_dict(self) -> dict:
        return {"epoch": self.epoch, "epochs": self.epochs, "elapsed_s": self.elapsed_s, "eta_s": self.eta_s,
                **self.metrics}

    @classmethod
    def from_dict(cls, d: dict) -> Progress | None:
        try:
            return cls(int(d["epoch"]), int(d["epochs"]), float(d.get("elapsed_s", 0.0)), float(d.get("eta_s", 0.0)),
                       {k: float(v) for k, v in d.items() if k not in ("epoch", "epochs", "elapsed_s", "eta_s")})
        except (KeyError, TypeError, ValueError):
            return None


def write_progress(run_dir: str | os.PathLike, progress: Progress) -> None:
    write_json(Path(run_dir) / PROGRESS_FILE, progress.as_dict())


def read_progress(run_dir: str | os.PathLike) -> Progress | None:
    """The last epoch's record, or None before the first epoch ends (or when the file is unreadable)."""
    return Progress.from_dict(read_json(Path(run_dir) / PROGRESS_FILE))


def log(msg: str) -> None:
    """One trainer line on stdout (the run manager sends it to log.txt)."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def is_trainer_line(line: str) -> bool:
    """Whether a log.txt line is the trainer's own (or an error), not TensorFlow's chatter."""
    return bool(_TRAINER_LINE.match(line))
