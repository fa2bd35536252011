"""Train page: choose a dataset, check it, train in a background process, watch, compare and promote.

Training never runs inside Streamlit: brainscan.runs starts `python -m brainscan train` and this page
only reads the run folders (progress refreshes every 2 s in a fragment).
"""

from __future__ import annotations

import shutil
import time
import zlib
from pathlib import Path

import pandas as pd
import streamlit as st

from brainscan import hosting, janitor, runs
from brainscan.app import figures, ui, visitor
from brainscan.app.metrics_panel import metrics_panel
from brainscan.errors import BrainScanError
from brainscan.scans.archive import declared_bytes, extract_zip
from brainscan.scans.summary import dataset_summary, find_datasets
from brainscan.training import architectures
from brainscan.training.progress import is_trainer_line

DEFAULT_DATASET = "../shared/data/navoneel-yes-no"
OFFERED, TYPED, UPLOAD = "A dataset offered here", "A folder on this server", "Upload a zip"
ARCH_LABELS = architectures.LABELS
SPLIT_LABELS = {"test_dedup": "Test set (near-duplicates of training images removed)",
                "val": "Validation set (used for early stopping and calibration)",
                "official_test": "The folder's own Testing split (may contain near-copies of training images)"}
STATE_BOX = {"finished": st.success, "running": st.info, "stopped": st.warning, "failed": st.error,
             "crashed": st.error}


def _settings() -> hosting.Settings:
    return hosting.settings()


def _owner() -> str:
    """This browser's visitor id (all its tabs share it; see brainscan.app.visitor)."""
    return visitor.register()


def _upload_limit_mb(settings: hosting.Settings) -> int:
    """The zip size the page promises: the smaller of the deployment's limit and Streamlit's server limit."""
    return int(min(settings.storage.upload_mb, st.get_option("server.maxUploadSize")))


def _uploads_dir() -> Path:
    """This visitor's upload folder (runs/uploads/<owner>/): in hosted mode a run may train only on these and on
    the declared datasets."""
    return runs.get_runs_dir() / runs.UPLOADS / janitor.owner_key(_owner())


def _shown(text: str, info: runs.RunInfo | None = None, data: str | None = None) -> str:
    """text as a visitor may see it: no server path (a run's own files relative to the run, the dataset by its
    label, everything else by its last part)."""
    data = data if data is not None else (str(info.config.get("data") or "") if info is not None else None)
    labels = hosting.path_labels(run_dir=info.path if info is not None else None, data=data or None,
                                 data_label=_data_label(data).strip("`") if data else "the dataset",
                                 runs_dir=runs.get_runs_dir())
    labels[str(_uploads_dir())] = "your uploads"
    return hosting.hide_paths(text, labels)


def _upload_item(root: Path) -> Path | None:
    """The upload folder (runs/uploads/<owner>/<upload>) that holds an extracted dataset root."""
    base = _uploads_dir().resolve()
    path = root.resolve()
    while path.parent != base:
        if path.parent == path:
            return None
        path = path.parent
    return path


def _forget_upload(root: Path) -> None:
    """A refused upload goes at once (it would only fill the disk)."""
    item = _upload_item(root)
    if item is not None:
        shutil.rmtree(item, ignore_errors=True)
    cache: dict[str, str] = st.session_state.setdefault("train_uploads", {})
    for key in [k for k, v in cache.items() if v == str(root)]:
        del cache[key]


# --- dataset --------------------------------------------------------------------------------------

@st.cache_data(show_spinner=False, max_entries=16)
def _summary(path: str, stamp: float) -> dict:
    return dataset_summary(path)


@st.cache_data(show_spinner=False, ttl=600)
def _found_datasets() -> list[str]:
    return [str(p) for p in find_datasets()]


def _stamp(root: Path) -> float:
    """Changes when files are added to or removed from class folders (cache key for the summary)."""
    stamps = [root.stat().st_mtime]
    for child in root.iterdir():
        if child.is_dir():
            stamps.append(child.stat().st_mtime)
            stamps += [c.stat().st_mtime for c in child.iterdir() if c.is_dir()]
    return max(stamps)


def _display_path(p: str) -> str:
    """Paths relative to the app folder where that is short (../shared/data/..., runs/uploads/...)."""
    path = Path(p)
    if path.is_relative_to(runs.REPO_ROOT):
        return str(path.relative_to(runs.REPO_ROOT))
    if path.is_relative_to(runs.REPO_ROOT.parent):
        return f"../{path.relative_to(runs.REPO_ROOT.parent)}"
    return p


def _extract_upload(upload, settings: hosting.Settings) -> Path | None:
    cache: dict[str, str] = st.session_state.setdefault("train_uploads", {})
    known = cache.get(upload.file_id)
    if known and Path(known).is_dir():
        return Path(known)
    limit = _upload_limit_mb(settings)
    if upload.size > limit * 2**20:
        st.error(f"{upload.name} is {upload.size / 2**20:,.0f} MB; zips of at most {limit} MB are accepted here.")
        return None
    data = upload.getvalue()
    share = settings.storage.visitor_mb
    fits, used = janitor.make_room(runs.get_runs_dir(), _owner(), declared_bytes(data), share)
    if not fits:
        st.error(f"Your runs and uploads here take {used / 2**20:,.0f} MB of the {share:,.0f} MB each visitor may "
                 f"use, and this zip unpacks to {declared_bytes(data) / 2**20:,.0f} MB; stop or wait for your run "
                 "(its data cannot be removed while it waits or trains), or upload a smaller zip.")
        return None
    dest = _uploads_dir() / f"{time.strftime('%Y%m%d-%H%M%S')}-{runs.slugify(upload.name)}"
    n = 2
    while dest.exists():
        dest = dest.with_name(f"{dest.name.rsplit('~', 1)[0]}~{n}")
        n += 1
    try:
        with st.spinner("Unpacking the zip..."):
            root = extract_zip(data, dest, max_total_bytes=settings.storage.unpacked_mb * 2**20,
                               max_files=settings.storage.unpacked_files)
    except BrainScanError as err:
        st.error(_shown(str(err)))
        return None
    cache[upload.file_id] = str(root)
    return root


def dataset_section(settings: hosting.Settings) -> tuple[Path | None, dict | None]:
    st.header("1. Dataset")
    first = OFFERED if not settings.typed_paths else TYPED
    source = st.radio("Where are the images?", [first, UPLOAD], horizontal=True, key="train_source")
    if source == UPLOAD:
        limit = _upload_limit_mb(settings)
        upload = st.file_uploader(f"Zip with one folder per class (e.g. yes/ and no/, or glioma/, meningioma/, "
                                  f"notumor/, pituitary/), at most {limit} MB", type=["zip"],
                                  max_upload_size=limit, key="train_zip",
                                  help=f"A larger file is refused by the uploader. Unpacked, the zip may hold up to "
                                       f"{settings.storage.unpacked_files:,} files and "
                                       f"{settings.storage.unpacked_mb:,} MB.")
        st.caption(f"Zips of at most **{limit} MB** are accepted (a larger one shows a red mark in the uploader "
                   "and is not received).")
        root = _extract_upload(upload, settings) if upload is not None else None
        if root is None:
            return None, None
    elif source == OFFERED:
        if not settings.datasets:
            st.info("This deployment offers no datasets; upload a zip of your own instead.")
            return None, None
        name = st.selectbox("Dataset", list(settings.datasets), key="train_dataset")
        root = Path(settings.datasets[name])
    else:
        found = _found_datasets()
        default = DEFAULT_DATASET if runs.resolve_data_path(DEFAULT_DATASET).is_dir() else (
            _display_path(found[0]) if found else "")
        typed = st.text_input("Dataset folder", value=default, key="train_data",
                              help="A folder with one sub-folder per class, optionally inside Training/ and "
                                   "Testing/. Relative paths start at the app's folder.")
        if found:
            st.caption("Datasets found on this server: " + ", ".join(f"`{_display_path(f)}`" for f in found))
        if not typed.strip():
            st.info("Type the path of a dataset folder to begin.")
            return None, None
        root = runs.resolve_data_path(typed)
    unreadable = f"{root.name or 'That folder'} is not a dataset folder that can be read here."
    try:
        if not root.is_dir():
            st.error(unreadable)
            return None, None
        with st.spinner("Reading the dataset and looking for near-duplicate images (first time only)..."):
            summary = _summary(str(root), _stamp(root))
    except BrainScanError as err:
        if source == UPLOAD:
            _forget_upload(root)
        st.error(_shown(str(err), data=str(root)))
        return None, None
    except OSError:
        if source == UPLOAD:
            _forget_upload(root)
        st.error(unreadable)  # the same sentence as for a missing folder: nothing about what exists
        return None, None
    show_summary(summary)
    return root, summary


def show_summary(s: dict) -> None:
    split, dup = s["split"], s["near_duplicates"]
    if s.get("unreadable_count"):
        listed = s.get("unreadable", [])
        lines = "\n".join(f"- `{u['file']}`: {u['reason']}" for u in listed[:10])
        more = f"\n- and {s['unreadable_count'] - 10:,} more" if s["unreadable_count"] > 10 else ""
        st.warning(f"{s['unreadable_count']:,} files could not be read and are left out of the summary and of "
                   f"training:\n{lines}{more}", icon=":material/warning:")
    c = st.columns(4)
    c[0].metric("Images", f"{s['n_images']:,}")
    c[1].metric("Classes", len(s["classes"]), help=", ".join(s["classes"]))
    c[2].metric("Images with a near-duplicate", f"{dup['images_in_those_groups']:,}",
                help=f"Images whose perceptual hashes differ by at most {dup['max_hamming_bits']} of 64 bits.")
    c[3].metric("Test images (deduplicated)", f"{split['test_dedup']:,}")
    left, right = st.columns(2)
    with left:
        st.markdown("**Images per class**")
        counts = pd.DataFrame({"class": [ui.class_label(c) for c in s["counts"]],
                               "images": list(s["counts"].values())})
        st.bar_chart(counts, x="class", y="images", horizontal=True, sort=False, height=80 + 36 * len(counts))
    with right:
        st.markdown("**Split used for training** (near-duplicate groups never straddle two parts)")
        table = pd.DataFrame(s["split_per_class"]).rename(index=ui.class_label, columns={
            "train": "training", "val": "validation", "test_dedup": "test", "official_test": "official Testing"})
        table = table.loc[:, (table.sum(axis=0) > 0)]
        table.loc["total"] = table.sum(axis=0)
        st.dataframe(table, width="stretch")
        sizes = s["image_sizes"]
        if "width" in sizes:
            w, h = sizes["width"], sizes["height"]
            common = ", ".join(f"{k} ({n})" for k, n in sizes["most_common"][:3])
            st.caption(f"Image sizes in a sample of {sizes['sampled']}: width {w['min']}-{w['max']} px, height "
                       f"{h['min']}-{h['max']} px; most common {common}. Every image is cropped to the brain and "
                       "resized to the chosen image size.")
    if split.get("official_test"):
        st.caption(f"The folder's own Testing split has {split['official_test']:,} images; "
                   f"{split['official_test_with_near_duplicate_in_training']:,} of them have a near-duplicate in "
                   "Training and are left out of the deduplicated test set.")
    if dup["groups_with_2_or_more"]:
        st.caption(f"{dup['groups_with_2_or_more']:,} groups of near-identical images found (largest: "
                   f"{dup['largest_group']}); each group stays on one side of the split so that test scores are "
                   "not inflated by near-copies of training images.")


# --- settings and start ---------------------------------------------------------------------------

def settings_section(root: Path | None, settings: hosting.Settings) -> None:
    st.header("2. Settings")
    lim = settings.limits
    if settings.hosted:
        archs = ", ".join(ARCH_LABELS[a].split(" (")[0] for a in lim.architectures)
        st.caption(f"Limits of this public deployment: {archs}"
                   f", images up to {max(lim.img_sizes)} px, at most {lim.max_epochs} epochs and "
                   f"{lim.max_images:,} training images, {int(lim.wall_s or 0) // 60} minutes per run; one run "
                   "trains at a time and the others wait in a queue, one per visitor (a browser, however many tabs "
                   f"it has open); a visitor with no tab open for {int(lim.visitor_grace_s or 0) // 60} minutes "
                   "loses its waiting or training run.")
    with st.form("train_settings", border=True):
        c1, c2, c3 = st.columns(3)
        arch = c1.selectbox("Architecture", list(lim.architectures), format_func=ARCH_LABELS.get, key="train_arch")
        sizes = list(lim.img_sizes)
        img_size = c2.selectbox("Image size (pixels)", sizes, index=sizes.index(64) if 64 in sizes else 0,
                                key="train_img")
        # 20 epochs of 64 px on ~200 images take under a minute on 2 cores; 3 epochs learned nothing (measured).
        epochs = c3.number_input("Epochs", min_value=1, max_value=lim.max_epochs, value=min(20, lim.max_epochs),
                                 key="train_epochs",
                                 help="Passes over the training images; training stops early if validation "
                                      "loss stops improving.")
        batch = c1.selectbox("Batch size", [8, 16, 32, 64], index=2, key="train_batch")
        lr = c2.selectbox("Learning rate", [3e-4, 1e-3, 2e-3, 5e-3], index=2, format_func=lambda v: f"{v:g}",
                          key="train_lr")
        if lim.max_images is None:
            max_images = c3.number_input("Max training images (0 = all)", min_value=0, max_value=100_000, value=600,
                                         step=100, key="train_max",
                                         help="A cap for quick demos; validation and test sets get a quarter each.")
        else:
            max_images = c3.number_input("Max training images", min_value=1, max_value=lim.max_images,
                                         value=min(600, lim.max_images), step=100, key="train_max",
                                         help="Validation and test sets get a quarter each.")
        augment = c1.toggle("Augmentation", value=True, key="train_aug",
                            help="Random rotation, zoom, shift, contrast, noise and flips of training images.")
        weights = c2.selectbox("Starting weights", ["none", "imagenet"], key="train_weights",
                               format_func={"none": "none (random start)", "imagenet": "ImageNet"}.get,
                               help="ImageNet weights apply to " + ui.join_words(
                                   [ARCH_LABELS[a].split(" (")[0] for a, e in architectures.ARCHITECTURES.items()
                                    if e.pretrained]) + "; the compact CNN always starts at random.")
        patience = c3.number_input("Early-stopping patience (epochs)", min_value=1, max_value=200, value=8,
                                   key="train_patience",
                                   help="Training ends early when the validation loss has not improved for this "
                                        "many epochs; the best weights are kept.")
        name = c1.text_input("Run name (optional)", key="train_name", max_chars=40)
        st.caption("The defaults train in about a minute on this server's CPU (20 epochs of 64-pixel images, "
                   "at most 600 of them). On the 253-image yes/no set one such run took 36 s and reached a tumor "
                   "ROC AUC of 0.81 on its 37 held-out images (accuracy 57%); 3 epochs learned nothing. A model like "
                   "the shipped one needs thousands of images and 30-60 epochs (most of an hour). EfficientNet-Lite0's "
                   "ImageNet weights are installed with the app; those of EfficientNet-B0 and VGG19 are downloaded by "
                   "Keras on first use, which needs internet access (without it that run fails).")
        submitted = st.form_submit_button("Start training", type="primary", disabled=root is None)
    if not submitted or root is None:
        return
    config = {"data": str(root), "arch": arch, "img_size": int(img_size), "epochs": int(epochs),
              "batch_size": int(batch), "learning_rate": float(lr), "augment": bool(augment),
              "max_images": int(max_images), "weights": weights, "patience": int(patience),
              "name": name.strip()}
    try:
        if settings.hosted:
            allowed = [_uploads_dir(), *settings.datasets.values()]
            run_dir = runs.start_run(config, owner=_owner(), limits=lim, allowed_roots=allowed, queue=True)
        else:
            run_dir = runs.start_run(config, owner=_owner())
    except runs.RunBusyError as err:
        st.warning(_shown(str(err)))
        return
    except BrainScanError as err:
        st.error(_shown(str(err), data=config["data"]))
        return
    st.session_state["train_selected"] = run_dir.name
    position = runs.queue_position(run_dir)
    if position:
        st.info(f"Run {run_dir.name} is number {position} in the queue; it starts when the runs before it have "
                "ended. It belongs to this browser: any of its tabs shows it and may take it out of the queue.")
    else:
        st.success(f"Started run {run_dir.name}. Progress appears below; you may leave this page meanwhile.")


# --- live progress --------------------------------------------------------------------------------

def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


@st.fragment(run_every=2)
def progress_section() -> None:
    st.header("3. Progress")
    try:
        _progress()
    except Exception as err:  # noqa: BLE001 - fragment reruns bypass render()'s handler
        st.error(_shown(f"The progress could not be read: {type(err).__name__}: {err}"))


def _progress() -> None:
    settings = _settings()
    flash = st.session_state.pop("train_flash", None)
    if flash:
        st.info(flash)
    owner = _owner()
    runs.advance_queue(vanished_after_s=settings.limits.visitor_grace_s if settings.hosted else None)
    info = runs.active_run()
    if settings.hosted:
        waiting = [r for r in runs.list_runs(owner=owner) if r.queued]
        if info is not None and info.owner != owner:
            p = info.progress
            where = f" (epoch {p.epoch} of {p.epochs})" if p else ""
            st.caption(f"Another visitor's run is training{where}; it ends within "
                       f"{int(settings.limits.wall_s or 0) // 60} minutes of its start.")
            info = None
        for run in waiting:  # this browser's waiting runs, whichever tab started them
            st.info(f"Your run {run.name} is number {runs.queue_position(run.path)} in the queue.")
            if st.button("Leave the queue", key=f"train_leave_{run.name}"):
                final = runs.stop_run(run.path, owner=owner)
                st.session_state["train_flash"] = f"Run {final.name} left the queue."
                st.rerun()
        if waiting:
            return
    if info is None:
        if st.session_state.pop("train_watching", None):
            st.rerun()  # the run we watched has ended: refresh the results below
        st.caption("No training run in progress. Start one above; its progress shows here.")
        return
    st.session_state["train_watching"] = info.name
    p = info.progress
    epochs = int((p.epochs if p else 0) or info.config.get("epochs") or 1)
    if p:
        st.progress(min(1.0, p.epoch / epochs), text=f"Run {info.name}: epoch {p.epoch} of {epochs}")
        c = st.columns(5)
        c[0].metric("Training loss", f"{p.metrics.get('loss', float('nan')):.3f}")
        c[1].metric("Training accuracy", f"{p.metrics.get('accuracy', float('nan')):.1%}")
        c[2].metric("Validation accuracy", f"{p.metrics.get('val_accuracy', float('nan')):.1%}")
        c[3].metric("Elapsed", _duration(info.elapsed_s))
        c[4].metric("Time left (estimate)", _duration(p.eta_s))
    else:
        st.progress(0.0, text=f"Run {info.name}: preparing images (hashing, cropping, resizing); epoch 1 of "
                              f"{epochs} starts next")
        st.caption(f"Elapsed: {_duration(info.elapsed_s)}")
    lines = [ln for ln in info.log_tail if is_trainer_line(ln)]
    if lines:
        st.code(_shown("\n".join(lines[-6:]), info), language=None, wrap_lines=True)
    if st.button("Stop training", key="train_stop", help="Stops after the current batch; no model is saved."):
        with st.spinner("Stopping..."):
            final = runs.stop_run(info.path, timeout=20, owner=owner if settings.hosted else None)
        st.session_state["train_flash"] = _shown(f"Run {final.name} is {final.state}. {final.message}".strip(), final)
        st.session_state.pop("train_watching", None)
        st.rerun()


# --- results --------------------------------------------------------------------------------------

def show_metrics(info: runs.RunInfo) -> None:
    splits = [k for k in SPLIT_LABELS if isinstance(info.metrics.get(k), dict)]
    if not splits:
        return
    key = st.radio("Scores on", splits, format_func=SPLIT_LABELS.get, key=f"train_split_{info.name}")
    m = info.metrics[key]
    metrics_panel(m, list(info.metrics.get("classes") or m.get("per_class") or []))


def promote_box(info: runs.RunInfo) -> None:
    settings = _settings()
    with st.container(border=True):
        st.markdown("**Use this model on the Scan page**")
        if settings.hosted:
            expected = hosting.operator_key(st.secrets)
            if not expected:
                st.caption("Promotion is off on this public deployment: replacing the model that every visitor's "
                           "Scan page uses needs the operator key (BRAINSCAN_OPERATOR_KEY), and none is configured.")
                return
            given = st.text_input("Operator key", type="password", key="train_operator_key",
                                  help="Replacing the model for every visitor is reserved for the operator.")
            allowed = True
        else:
            allowed = st.checkbox(f"Replace the model in models/default with {info.name}; the Scan page uses it "
                                  "from then on.", key=f"train_confirm_{info.name}")
        if st.button("Promote to models/", disabled=not allowed, key=f"train_promote_{info.name}"):
            if settings.hosted and not hosting.operator_ok(given, expected):
                st.error("That is not the operator key; the model was not replaced.")
                return
            try:
                dst = runs.promote(info.path, owner=_owner() if settings.hosted else None)
            except (BrainScanError, OSError) as err:
                st.error(_shown(f"The model could not be promoted: {err}", info))
                return
            st.cache_resource.clear()
            st.success(f"{info.name} is now the model in {dst.parent.name}/{dst.name}; the Scan page uses it.")


def show_run(info: runs.RunInfo) -> None:
    cfg = info.config
    box = STATE_BOX.get(info.state, st.info)
    text = {"finished": "finished", "running": "still training", "stopped": "stopped before the end",
            "failed": "failed", "crashed": "ended unexpectedly", "queued": "is waiting in the queue"
            }.get(info.state, info.state)
    box(f"Run {info.name} {text}" + (f": {_shown(info.message, info)}" if info.message else "."))
    if cfg:
        st.caption(f"{ARCH_LABELS.get(cfg.get('arch'), cfg.get('arch'))}, {cfg.get('img_size')} px, "
                   f"{len(info.history.get('loss', [])) or (info.progress.epoch if info.progress else 0)} of "
                   f"{cfg.get('epochs')} "
                   f"epochs, batch {cfg.get('batch_size')}, learning rate {cfg.get('learning_rate')}, augmentation "
                   f"{'on' if cfg.get('augment') else 'off'}; data {_data_label(str(cfg.get('data')))}; "
                   f"took {_duration(info.elapsed_s)}.")
    if info.history.get("loss"):
        left, right = st.columns([3, 1])
        left.pyplot(figures.training_curves(info.history), width="stretch")
        right.caption("Training curves: the training loss should fall. When the validation loss rises while the "
                      "training loss keeps falling, the model is memorising its training images (overfitting); "
                      "training then stops early and keeps the best epoch.")
    show_metrics(info)
    if info.complete:
        promote_box(info)
    if info.log_tail:
        with st.expander("Log (last lines)"):
            st.code(_shown("\n".join(info.log_tail), info), language=None, wrap_lines=True)


def _data_label(path: str) -> str:
    """Where a run's images came from, without server paths in hosted mode."""
    settings = _settings()
    if not settings.hosted:
        return f"`{_display_path(path)}`"
    for name, folder in settings.datasets.items():
        if Path(path).resolve().is_relative_to(Path(folder).resolve()):
            return name
    return "your uploaded zip"


def _row(info: runs.RunInfo) -> dict[str, str]:
    cfg, m = info.config, info.metrics
    key = next((k for k in ("test_dedup", "val") if isinstance(m.get(k), dict)), None)
    scores = m.get(key, {}) if key else {}
    tv = scores.get("tumor_vs_notumor", {})
    return {"state": info.state, "architecture": str(cfg.get("arch")), "image size": str(cfg.get("img_size")),
            "epochs run": str(len(info.history.get("loss", []))), "max training images": str(cfg.get("max_images")),
            "augmentation": "on" if cfg.get("augment") else "off",
            "scored on": {"test_dedup": "test set (deduplicated)", "val": "validation set"}.get(key, "-"),
            "accuracy": ui.fmt_number(scores.get("accuracy"), "pct", missing="-"),
            "tumor ROC AUC": ui.fmt_number(tv.get("roc_auc"), missing="-"),
            "ECE": ui.fmt_number(scores.get("ece"), missing="-"), "training time": _duration(info.elapsed_s)}


def _curves(pair: dict[str, runs.RunInfo], key: str) -> pd.DataFrame:
    cols = {f"{letter} {kind}": pd.Series(r.history.get(prefix + key, []), dtype=float)
            for letter, r in pair.items() for prefix, kind in (("", "training"), ("val_", "validation"))}
    df = pd.DataFrame(cols)
    df.index = df.index + 1
    return df.rename_axis("epoch")


def compare_section(all_runs: list[runs.RunInfo]) -> None:
    st.subheader("Compare two runs")
    done = [r for r in all_runs if r.history.get("loss")]
    if len(done) < 2:
        st.caption("Two runs with a finished training phase are needed for a comparison.")
        return
    by_name = {r.name: r for r in done}
    picked = st.multiselect("Runs", list(by_name), default=list(by_name)[:2], max_selections=2,
                            key="train_compare")
    if len(picked) != 2:
        st.caption("Pick two runs.")
        return
    pair = {"A": by_name[picked[0]], "B": by_name[picked[1]]}
    st.table(pd.DataFrame({f"{letter}: {r.name}": _row(r) for letter, r in pair.items()}))
    colors = ["#1f5fa8", "#9dbde6", "#d9822b", "#f2c79b"]  # A dark/light blue, B dark/light orange
    left, right = st.columns(2)
    left.markdown("**Loss per epoch** (lower is better)")
    left.line_chart(_curves(pair, "loss"), color=colors, height=260)
    right.markdown("**Accuracy per epoch** (higher is better)")
    right.line_chart(_curves(pair, "accuracy"), color=colors, height=260)
    cols = st.columns(4)
    for k, (letter, r) in enumerate(pair.items()):
        m = r.metrics.get("test_dedup") or r.metrics.get("val") or {}
        tv = m.get("tumor_vs_notumor", {})
        if "roc_curve" in tv:
            cols[k].pyplot(figures.roc_curve(tv["roc_curve"]["fpr"], tv["roc_curve"]["tpr"], tv.get("roc_auc"),
                                             tv.get("at_95_specificity"), title=f"ROC, run {letter}"), width="stretch")
        if "calibration_curve" in m:
            cols[k + 2].pyplot(figures.calibration_curve(m["calibration_curve"]["confidence"],
                                                         m["calibration_curve"]["accuracy"], m.get("ece"),
                                                         title=f"Calibration, run {letter}"), width="stretch")


def results_section(settings: hosting.Settings) -> None:
    st.header("4. Results")
    all_runs = runs.list_runs(owner=None if settings.shared_runs else _owner())
    if not all_runs:
        st.info("No runs yet. Start one above.")
        return
    names = [r.name for r in all_runs]
    by_name = {r.name: r for r in all_runs}
    wanted = st.session_state.get("train_selected")
    index = names.index(wanted) if wanted in names else 0
    labels = [by_name[n].label for n in names]
    # The key follows the labels: a run that changes state gets a fresh picker (else it would show the old label).
    chosen = st.selectbox("Run", names, index=index, format_func=lambda n: by_name[n].label,
                          key=f"train_run_pick_{zlib.crc32(repr(labels).encode())}")
    st.session_state["train_selected"] = chosen
    show_run(by_name[chosen])
    compare_section(all_runs)


def render() -> None:
    ui.ensure_navigation()
    st.title("Train a model")
    settings = _settings()
    if settings.hosted:
        st.caption("Train a tumor classifier on labelled MRI slices. This is a public (hosted) deployment: your runs "
                   "and uploads are yours alone (this browser, in any of its tabs), they are deleted after "
                   f"{int(settings.storage.max_age_s or 0) // 3600} hours and may take "
                   f"{settings.storage.visitor_mb or 0:,.0f} MB together, and runs wait in a fair queue.")
    else:
        st.caption("Train a tumor classifier on a folder of labelled MRI slices. Training runs as a separate process "
                   "on the server, one run at a time; you can leave this page and come back.")
    ui.disclaimer()
    try:
        janitor.sweep_now_and_then(runs.get_runs_dir(), settings.storage.max_age_s, settings.storage.max_total_mb,
                                   visitor_mb=settings.storage.visitor_mb)
        root, _ = dataset_section(settings)
        settings_section(root, settings)
        progress_section()
        st.divider()
        results_section(settings)
    except Exception as err:  # noqa: BLE001 - a page shows a sentence, never a traceback
        st.error(_shown(f"Something went wrong on this page: {type(err).__name__}: {err}"))


render()
