"""One training run, in steps a reader can follow: prepare (training.prepare: recipe or folder -> manifest ->
split -> model inputs), fit (tf.data with augmentation, progress record per epoch), calibrate (temperature,
unfamiliar-scan reference, metrics), then the model card and the export of the model folder.

The run folder receives config.json and status.json at once, progress.json (training.progress) after
every epoch, and history.json, metrics.json, ood.npz, model.keras and card.json at the end (card.json
last, so a folder with a card is always a complete model). SIGTERM stops the run cleanly.
"""

from __future__ import annotations

import contextlib
import os
import platform
import signal
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from brainscan.config import TrainConfig
from brainscan.errors import RunError
from brainscan.evaluation.metrics import classification_metrics
from brainscan.modelfolder import CARD_FILE, WEIGHT_FILES, write_json
from brainscan.runfolder import update_status
from brainscan.training.prepare import Prepared, prepare
from brainscan.training.progress import Progress, log, write_progress


def set_status(run: Path, state: str, **extra) -> None:
    update_status(run, state=state, **extra)


def lesion_target(classes: list[str]) -> int | None:
    """The class a synthetic lesion is labelled with: glioma (intra-axial masses, as in BRATS) or tumor."""
    if "notumor" not in classes:
        return None
    for name in ("glioma", "tumor"):
        if name in classes:
            return classes.index(name)
    return None


class _Stop:
    requested = False
    time_up = False
    started = 0.0  # time.time() when run() began (the time limit counts from there)


def run(cfg: TrainConfig) -> dict:
    run_dir = Path(cfg.out)
    run_dir.mkdir(parents=True, exist_ok=True)
    _Stop.started = time.time()
    _Stop.requested = _Stop.time_up = False  # an earlier run in this process may have been stopped
    write_json(run_dir / "config.json", asdict(cfg))
    set_status(run_dir, "running", pid=os.getpid(), started=time.time())
    previous = signal.signal(signal.SIGTERM, lambda *_: setattr(_Stop, "requested", True))
    try:
        result = _run(cfg, run_dir)
    except KeyboardInterrupt:
        set_status(run_dir, "stopped", message="Stopped by the user.", ended=time.time())
        raise
    except Exception as err:
        set_status(run_dir, "failed", message=f"{type(err).__name__}: {err}", ended=time.time())
        raise
    finally:  # in-process training (tests, notebooks) gets its own SIGTERM handling back
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
    return result


def _run(cfg: TrainConfig, run_dir: Path) -> dict:
    """The steps of one run: prepare, fit, calibrate, write the model folder (export and card)."""
    t0 = time.time()
    strategy = distribution(cfg)  # before anything starts TensorFlow's runtime (logical CPU replicas)
    data = prepare(cfg, run_dir)
    log(f"Prepared images in {time.time() - t0:.0f} s")
    fitted = fit(cfg, run_dir, data, strategy)
    if fitted is None:
        set_status(run_dir, "stopped", message="Stopped by the user; no model was saved.", ended=time.time())
        log("Stopped by the user; no model was saved.")
        return {}
    model, history, train_s, bn_momentum = fitted
    write_json(run_dir / "history.json", history)
    temperature, ood, metrics = calibrate(model, data)
    write_json(run_dir / "metrics.json", metrics)
    card = model_card(cfg, run_dir, data, model, history, train_s, bn_momentum, temperature, metrics)
    export(model, card, ood, run_dir)
    set_status(run_dir, "finished", ended=time.time(), seconds=round(time.time() - t0),
               **({"message": f"Stopped at the time limit of {cfg.time_limit_s:.0f} s; the best epoch so far was "
                              "kept."} if _Stop.time_up else {}))
    log(f"Finished in {time.time() - t0:.0f} s; model folder {run_dir}")
    return metrics


def _train_dataset(cfg: TrainConfig, data: Prepared):
    """tf.data of the training part: shuffled, skull-stripped views, synthetic lesions, augmentation."""
    import tensorflow as tf

    from brainscan.training import augment, lesions

    x_tr, y_tr = data.arrays["train"]
    classes = data.classes
    if not data.folder:
        # Balanced sampling (recipe runs): each step draws images with probability proportional to their weight,
        # so every class, and within it every source and sequence, is seen equally often.
        n_draw = steps_per_epoch(cfg, data) * cfg.batch_size * cfg.epochs
        draw = np.random.default_rng(cfg.seed).choice(len(x_tr), size=n_draw, p=data.weights / data.weights.sum())
        views = tf.constant(x_tr) if data.x_strip is None else tf.stack([x_tr, data.x_strip])
        labels = tf.constant(y_tr)
        p_strip = cfg.stripped if data.x_strip is not None else 0.0
        guided = data.guidance is not None
        # One outline per view, [plain] or [plain, stripped] (guidance.mask_targets).
        stripped_outlines = guided and data.guidance.masks.ndim == 4 and p_strip > 0
        if guided:
            outlines = data.guidance.masks if data.guidance.masks.ndim == 4 else data.guidance.masks[None]
        else:
            outlines = np.zeros((1, 1, 1, 1), np.uint8)
        masks = tf.constant(outlines)
        has_mask = tf.constant(data.guidance.has_mask if guided else np.zeros(1, np.float32))
        tumor_free = classes.index("notumor") if "notumor" in classes else -1

        def pick(i):
            stripped = tf.cast(tf.random.uniform(tf.shape(i)) < p_strip, tf.int64)
            x = tf.gather_nd(views, tf.stack([stripped, i], axis=1)) if p_strip else tf.gather(views, i)
            y = tf.gather(labels, i)
            if not guided:
                return x, y
            known = tf.gather(has_mask, i)
            if not stripped_outlines:  # a stripped view without its own outline: only "no tumour" stays known
                known *= tf.cast((stripped == 0) | (y == tumor_free), tf.float32)
            view = stripped if stripped_outlines else tf.zeros_like(i)
            outline = tf.gather_nd(masks, tf.stack([view, i], axis=1))
            return x, y, tf.cast(outline, tf.float32)[..., None] / 255.0, known

        train_ds = tf.data.Dataset.from_tensor_slices(draw).batch(cfg.batch_size).map(pick)
        if guided:
            from brainscan.training.guidance import CAM_OUTPUT, cam_target

            def augment_guided(x, y, m, known):
                if cfg.augment:
                    x, m = augment.augment_batch(x, cfg.randconv, mask=m, vflip=cfg.vflip, contrast=cfg.contrast)
                return x, {"logits": y, CAM_OUTPUT: cam_target(m, known, y, data.cam_map_size, len(classes),
                                                                tumor_free)}

            return train_ds.map(augment_guided, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
    elif data.x_strip is not None:
        p_strip = cfg.stripped
        train_ds = tf.data.Dataset.from_tensor_slices((x_tr, data.x_strip, y_tr)).shuffle(len(x_tr), seed=cfg.seed)
        train_ds = train_ds.map(lambda a, b, y: (tf.where(tf.random.uniform([]) < p_strip, b, a), y))
        log(f"Skull-stripped copies shown {cfg.stripped:.0%} of the time")
    else:
        train_ds = tf.data.Dataset.from_tensor_slices((x_tr, y_tr)).shuffle(len(x_tr), seed=cfg.seed)
    if data.folder:
        # Several replicas need batches they can split evenly: the last, partial batch of an epoch is dropped.
        train_ds = train_ds.batch(cfg.batch_size, drop_remainder=bool(cfg.distribute))
    lesion_class = lesion_target(classes) if cfg.lesions > 0 else None
    if lesion_class is not None:
        notumor = classes.index("notumor")
        train_ds = train_ds.map(lambda x, y: lesions.add_lesions(x, y, cfg.lesions, notumor, lesion_class),
                                num_parallel_calls=tf.data.AUTOTUNE)
        log(f"Synthetic lesions: {cfg.lesions:.0%} of tumor-free training images, labelled {classes[lesion_class]}")
    if cfg.augment:
        train_ds = train_ds.map(lambda x, y: (augment.augment_batch(x, cfg.randconv, vflip=cfg.vflip,
                                                            contrast=cfg.contrast), y),
                                num_parallel_calls=tf.data.AUTOTUNE)
    train_ds = train_ds.prefetch(tf.data.AUTOTUNE)
    return train_ds


def distribution(cfg: TrainConfig):
    """The tf.distribute strategy of --distribute, or None for one device. mirrored: every local GPU, or, with
    cpu_replicas and no GPU, that many logical CPU devices (set up before TensorFlow starts its runtime)."""
    if not cfg.distribute:
        return None
    if cfg.distribute == "multi-worker":
        raise RunError("Multi-worker training is not available: Keras 3's Model.fit fails under "
                         "tf.distribute.MultiWorkerMirroredStrategy (keras-team/keras#20585); use --distribute "
                         "mirrored on one machine with several GPUs.")
    if cfg.distribute != "mirrored":
        raise RunError(f"Unknown --distribute {cfg.distribute!r}; use mirrored.")
    import tensorflow as tf

    devices = None
    if cfg.cpu_replicas and not tf.config.list_physical_devices("GPU"):
        cpu = tf.config.list_physical_devices("CPU")[0]
        try:
            tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()]
                                                       * cfg.cpu_replicas)
        except RuntimeError as err:  # TensorFlow's runtime already started in this process
            raise RunError("--cpu-replicas must be set before TensorFlow starts; run training in its own process "
                             "(python -m brainscan train).") from err
        devices = [f"/cpu:{k}" for k in range(cfg.cpu_replicas)]
    strategy = tf.distribute.MirroredStrategy(devices)
    if cfg.batch_size % strategy.num_replicas_in_sync:
        raise RunError(f"The batch size {cfg.batch_size} does not split evenly over {strategy.num_replicas_in_sync} "
                         "replicas; choose a multiple of the number of replicas.")
    log(f"Distributed: {strategy.num_replicas_in_sync} replicas (tf.distribute.MirroredStrategy); global batch "
        f"{cfg.batch_size}, {cfg.batch_size // max(strategy.num_replicas_in_sync, 1)} per replica")
    return strategy


def steps_per_epoch(cfg: TrainConfig, data: Prepared) -> int:
    return cfg.steps_per_epoch or max(1, int(np.ceil(len(data.arrays["train"][0]) / cfg.batch_size)))


def fit(cfg: TrainConfig, run_dir: Path, data: Prepared, strategy=None):
    """Build the network and fit it, writing progress.json after every epoch. Returns (model, history,
    seconds, BatchNorm momentum), or None when the user stopped the run (SIGTERM)."""
    import keras

    from brainscan.training.architectures import build_model
    from brainscan.training.networks import bn_momentum_for

    keras.utils.set_random_seed(cfg.seed)
    x_tr, y_tr = data.arrays["train"]
    n_classes = len(data.classes)
    counts = np.bincount(y_tr, minlength=n_classes)
    class_weight = ({i: float(len(y_tr) / (n_classes * max(c, 1))) for i, c in enumerate(counts)}
                    if data.folder else None)  # recipe runs balance by sampling instead
    x_val, y_val = data.arrays["val"]
    steps = steps_per_epoch(cfg, data) * cfg.epochs
    bn_momentum = bn_momentum_for(steps)
    scope = strategy.scope() if strategy is not None else contextlib.nullcontext()
    with scope:  # the network, its optimizer and its compiled losses live on every replica
        model = build_model(cfg.arch, cfg.img_size, n_classes, cfg.weights, bn_momentum)
        if cfg.init_from:
            start_from(model, cfg.init_from, data.classes)
        schedule = keras.optimizers.schedules.CosineDecay(
            cfg.learning_rate * 0.1, steps, warmup_target=cfg.learning_rate, warmup_steps=min(steps // 10, 300))
        optimizer = keras.optimizers.AdamW(schedule, weight_decay=1e-4)
        classify = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        trained = model  # what model.fit sees: the model itself, or its guided twin (shared layers)
        validation = (x_val, y_val)
        if data.guidance is not None:
            from brainscan.training.guidance import CAM_OUTPUT, cam_loss, guided_model

            trained, data.cam_map_size = guided_model(model)
            trained.compile(optimizer=optimizer, loss={"logits": classify, CAM_OUTPUT: cam_loss},
                            loss_weights={"logits": 1.0, CAM_OUTPUT: cfg.guide_cams},
                            metrics={"logits": ["accuracy"]})
            # Validation scores the classification only: no outline, every weight 0.
            no_outline = np.zeros((len(x_val), *data.cam_map_size, 1 + n_classes), np.float32)
            validation = (x_val, {"logits": y_val, CAM_OUTPUT: no_outline})
            log(f"Guided CAMs: loss weight {cfg.guide_cams}, map {data.cam_map_size}")
        else:
            model.compile(optimizer=optimizer, loss=classify, metrics=["accuracy"])
    train_ds = _train_dataset(cfg, data)
    log(f"Model {cfg.arch}: {model.count_params():,} parameters; training {len(x_tr)} images for up to "
        f"{cfg.epochs} epochs")
    history: dict[str, list[float]] = {}

    class EpochEnd(keras.callbacks.Callback):  # progress.json, the log line, and stopping on SIGTERM
        def on_train_batch_end(self, batch, logs=None):
            if _Stop.requested:
                self.model.stop_training = True
            elif cfg.time_limit_s and time.time() - _Stop.started > cfg.time_limit_s and not _Stop.time_up:
                _Stop.time_up = True  # keep what was learnt: the best epoch so far is saved as usual
                self.model.stop_training = True
                log(f"Time limit of {cfg.time_limit_s:.0f} s reached; stopping and keeping the best epoch so far.")

        def on_epoch_end(self, epoch, logs=None):
            # A guided twin names its classification figures logits_accuracy, val_logits_loss, ...
            logs = {k.replace("logits_", ""): v for k, v in (logs or {}).items()}
            for k, v in logs.items():
                history.setdefault(k, []).append(float(v))
            elapsed = time.time() - t_fit
            per_epoch = elapsed / (epoch + 1)
            write_progress(run_dir, Progress(epoch + 1, cfg.epochs, elapsed, per_epoch * (cfg.epochs - epoch - 1),
                                             {k: float(v) for k, v in (logs or {}).items()}))
            log(f"epoch {epoch + 1}/{cfg.epochs} " + " ".join(f"{k}={v:.4f}" for k, v in (logs or {}).items())
                + f" ({per_epoch:.0f} s/epoch)")

    t_fit = time.time()
    trained.fit(train_ds, validation_data=validation, epochs=cfg.epochs, class_weight=class_weight, verbose=0,
                steps_per_epoch=steps_per_epoch(cfg, data) if not data.folder else None,
                callbacks=[EpochEnd(), keras.callbacks.EarlyStopping(
                    monitor="val_loss", patience=cfg.patience, restore_best_weights=True)])
    if _Stop.requested:
        return None
    return model, history, time.time() - t_fit, bn_momentum


def start_from(model, source: str, classes: list[str]) -> None:
    """Copy the weights of a trained model folder (or its model.keras) into the freshly built network: the same
    architecture and classes; the input size may differ (the layers are size-free), which is how a run trained
    at a small input goes on at a larger one (progressive resizing)."""
    import json

    import keras

    path = Path(source)
    folder = path if path.is_dir() else path.parent
    keras_file = path if path.is_file() else path / "model.keras"
    if not keras_file.is_file():
        raise RunError(f"--init-from {source}: no model.keras there.")
    card = json.loads((folder / CARD_FILE).read_text()) if (folder / CARD_FILE).is_file() else {}
    if card.get("classes") and list(card["classes"]) != list(classes):
        raise RunError(f"--init-from {source}: its classes {card['classes']} are not this run's {classes}.")
    trained = keras.models.load_model(keras_file, compile=False, safe_mode=False)
    weights = trained.get_weights()
    if [w.shape for w in weights] != [tuple(v.shape) for v in model.weights]:
        raise RunError(f"--init-from {source}: its layers do not match the {model.name} network being trained.")
    model.set_weights(weights)
    log(f"Started from the weights of {source} ({card.get('name', keras_file.name)})")


TARGET_SENSITIVITY = 0.95  # the operating threshold for "tumor" keeps this share of validation tumors


def calibrate(model, data: Prepared) -> tuple[float, dict, dict]:
    """Temperature, the unfamiliar-scan reference and the metrics of every held-out part, all on data the
    weights never saw. Returns (temperature, ood statistics, metrics)."""
    from brainscan.runtime import familiarity
    from brainscan.runtime.inference import OOD_THRESHOLD, mahalanobis, ood_percentiles, softmax
    from brainscan.runtime.keras_model import features_and_logits_model
    from brainscan.training.calibrate import fit_temperature, ood_stats

    classes = data.classes
    x_tr, y_tr = data.arrays["train"]
    x_val, y_val = data.arrays["val"]
    feat_model = features_and_logits_model(model)

    def infer(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        f, lg = feat_model.predict(x, batch_size=64, verbose=0)
        return np.asarray(f), np.asarray(lg)

    f_val, l_val = infer(x_val)
    temperature = fit_temperature(l_val, y_val)
    f_tr, _ = infer(x_tr)
    ood = ood_stats(f_tr, y_tr, len(classes))
    ood["val_distances"] = mahalanobis(f_val, ood).astype(np.float32)
    ood.update(familiarity.fit(x_tr, x_val))

    metrics: dict = {"classes": classes, "temperature": temperature, "split": data.split}
    threshold = None
    if "notumor" in classes:
        from brainscan.training.multisource import operating_threshold

        notumor = classes.index("notumor")
        metrics["operating_threshold"] = operating_threshold(
            y_val, 1.0 - softmax(l_val, temperature)[:, notumor], notumor, TARGET_SENSITIVITY)
        threshold = metrics["operating_threshold"].get("tumor_probability")
        log(f"Operating threshold (validation sensitivity >= {TARGET_SENSITIVITY:.0%}): "
            f"{metrics['operating_threshold']}")
    for name, (x, y) in data.arrays.items():
        if name == "train":
            continue
        feats, logits = infer(x)
        m = classification_metrics(y, softmax(logits, temperature), classes)
        if not data.folder:
            from brainscan.training.multisource import breakdown

            m["by_source"] = breakdown(data.items[name], y, softmax(logits, temperature), classes, threshold)
        m["ece_uncalibrated"] = classification_metrics(y, softmax(logits, 1.0), classes)["ece"]
        m["flagged_unfamiliar"] = float(np.mean(ood_percentiles(feats, x, ood) >= OOD_THRESHOLD))
        metrics[name] = m
        log(f"{name}: accuracy {m['accuracy']:.4f}, ECE {m['ece_uncalibrated']:.4f} -> {m['ece']:.4f}"
            + (f", tumor AUC {m['tumor_vs_notumor'].get('roc_auc', float('nan')):.4f}"
               if "tumor_vs_notumor" in m else ""))
    return temperature, ood, metrics


def model_card(cfg: TrainConfig, run_dir: Path, data: Prepared, model, history: dict, train_s: float,
               bn_momentum: float, temperature: float, metrics: dict) -> dict:
    """card.json: what the model is, what it was trained on and how, and its scores."""
    from brainscan.runtime import familiarity

    classes = data.classes
    headline = metrics.get("test_dedup") or metrics["val"]
    card = {
        "name": cfg.name or run_dir.name, "architecture": cfg.arch, "classes": classes, "input_size": cfg.img_size,
        "input_channels": 1, "parameters": int(model.count_params()),
        "preprocessing": "brainscan.scans.preprocess.prepare: grayscale, Gaussian blur, Otsu threshold, largest "
                         "contour, square brain crop with 6% margin, resize, 1-99.5 percentile intensity normalisation",
        "training_data": data.card["training_data"],
        "split": data.card["split"],
        "training": {"epochs_run": len(history.get("loss", [])), "epochs_max": cfg.epochs,
                     "batch_size": cfg.batch_size, "learning_rate": cfg.learning_rate, "augmentation": cfg.augment,
                     "synthetic_lesions": cfg.lesions, "skull_stripped_share": cfg.stripped,
                     "upside_down_share": cfg.vflip,
                     "random_convolution": cfg.randconv, "contrast_remap": cfg.contrast,
                     "train_sequences": cfg.train_sequences or None, "started_from": cfg.init_from or None,
                     "steps_per_epoch": cfg.steps_per_epoch or None,
                     "batchnorm_momentum": bn_momentum,
                     "weights": cfg.weights, "seconds": round(train_s), "machine": f"{platform.machine()}, "
                     f"{os.cpu_count()} CPU cores", "command": " ".join(["python -m brainscan"] + sys.argv[1:])},
        "calibration": {"method": "temperature scaling fitted on the validation split", "temperature": temperature,
                        "ece_before": headline["ece_uncalibrated"], "ece_after": headline["ece"]},
        "scores": {k: _card_scores(v) for k, v in metrics.items() if isinstance(v, dict) and "accuracy" in v},
        "unfamiliar_check": familiarity.UNFAMILIAR_CHECK,
    }
    if metrics.get("operating_threshold"):
        card["operating_threshold"] = metrics["operating_threshold"]
    by_source = {k: metrics[k]["by_source"] for k in data.arrays if "by_source" in metrics.get(k, {})}
    if by_source:
        card["scores_by_source"] = by_source
    return card


def export(model, card: dict, ood: dict, run_dir: Path) -> None:
    """Save the model folder beside the run (brainscan.training.export), then move its files into the run
    folder; card.json last marks the folder complete."""
    from brainscan.training.export import save_model_folder

    save_model_folder(model, card, run_dir / ".model-new", ood=ood)
    for fname in WEIGHT_FILES:
        if (run_dir / ".model-new" / fname).is_file():
            os.replace(run_dir / ".model-new" / fname, run_dir / fname)
    os.replace(run_dir / ".model-new" / CARD_FILE, run_dir / CARD_FILE)
    os.rmdir(run_dir / ".model-new")


def _card_scores(m: dict) -> dict:
    out = {"n": m["n"], "accuracy": m["accuracy"], "ece": m["ece"], "ece_uncalibrated": m.get("ece_uncalibrated"),
           "flagged_unfamiliar": m.get("flagged_unfamiliar")}
    tv = m.get("tumor_vs_notumor", {})
    if "roc_auc" in tv:
        out["tumor_roc_auc"] = tv["roc_auc"]
        out["sensitivity_at_95_specificity"] = tv["at_95_specificity"]["sensitivity"]
    return out
