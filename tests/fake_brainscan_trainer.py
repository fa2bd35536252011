"""A fake trainer for the run manager's tests: it writes a run folder as ``python -m brainscan train`` does
(brainscan.training.run) in a fraction of a second per epoch, without TensorFlow.

    python tests/fake_brainscan_trainer.py [--epoch-seconds S] [--crash-at-epoch N] [--fail MESSAGE] train ARGS

ARGS are the trainer's own (brainscan.runfolder.train_argv). It writes config.json and status.json ('running',
its pid) at once, a log line and progress.json after every epoch, and at the end history.json, metrics.json,
split.json, model.keras, ood.npz and card.json (last), then status 'finished'. SIGTERM stops it after the current
tick with status 'stopped' and no model, as the real trainer does. --crash-at-epoch N kills it (SIGKILL, no last
word) after epoch N's log line; --fail writes status 'failed' with that message and exits 1. It ignores
--time-limit (the manager's backstop is what the tests check). Its file name contains 'brainscan' because
runs.pid_alive counts only brainscan processes.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np

from brainscan import runfolder
from brainscan.modelfolder import CARD_FILE, KERAS_FILE, OOD_FILE, write_json
from brainscan.training.progress import Progress, log, write_progress


def main(argv: list[str]) -> int:
    own, train = argv[: argv.index("train")], argv[argv.index("train") + 1 :]
    p = argparse.ArgumentParser(prog="fake_brainscan_trainer")
    p.add_argument("--epoch-seconds", type=float, default=0.2)
    p.add_argument("--crash-at-epoch", type=int, default=0)
    p.add_argument("--fail", default="")
    opts = p.parse_args(own)
    cfg = runfolder.parse_train_argv(train)

    run_dir = Path(cfg.out)
    run_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    write_json(run_dir / runfolder.CONFIG_FILE, dataclasses.asdict(cfg))
    runfolder.update_status(run_dir, state="running", pid=os.getpid(), started=t0)
    stop: list[int] = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    log(f"Fake trainer: {cfg.epochs} epochs of {opts.epoch_seconds} s on {cfg.data or cfg.recipe}")
    if opts.fail:
        runfolder.update_status(run_dir, state="failed", message=opts.fail, ended=time.time())
        log(f"error: {opts.fail}")
        return 1

    history: dict[str, list[float]] = {"loss": [], "val_loss": [], "accuracy": [], "val_accuracy": []}
    for epoch in range(1, cfg.epochs + 1):
        deadline = time.monotonic() + opts.epoch_seconds
        while time.monotonic() < deadline and not stop:
            time.sleep(0.02)
        if stop:
            runfolder.update_status(run_dir, state="stopped", message="Stopped by the user; no model was saved.",
                                    ended=time.time())
            log("Stopped by the user; no model was saved.")
            return 1
        figures = {"loss": 1 / epoch, "val_loss": 1.1 / epoch, "accuracy": 1 - 0.5 / epoch,
                   "val_accuracy": 1 - 0.6 / epoch}
        for k, v in figures.items():
            history[k].append(v)
        elapsed = time.time() - t0
        write_progress(run_dir, Progress(epoch, cfg.epochs, elapsed, elapsed / epoch * (cfg.epochs - epoch), figures))
        log(f"epoch {epoch}/{cfg.epochs} loss={figures['loss']:.4f}")
        if epoch == opts.crash_at_epoch:
            os.kill(os.getpid(), signal.SIGKILL)

    write_json(run_dir / runfolder.HISTORY_FILE, history)
    write_json(run_dir / runfolder.METRICS_FILE, {"val": {"n": 4, "accuracy": 0.75}, "test": {"n": 4}})
    write_json(run_dir / "split.json", {"train": [], "val": [], "test": []})
    (run_dir / KERAS_FILE).write_bytes(b"not a real model")
    np.savez(run_dir / OOD_FILE, mean=np.zeros(2))
    write_json(run_dir / CARD_FILE, {"name": cfg.name or run_dir.name, "architecture": cfg.arch,
                                     "classes": ["notumor", "tumor"], "input_size": cfg.img_size})
    runfolder.update_status(run_dir, state="finished", ended=time.time(), seconds=round(time.time() - t0))
    log(f"Finished in {time.time() - t0:.0f} s; model folder {run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
