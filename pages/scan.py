"""Scan check: upload brain MRI slices (images or DICOM) and see the model's answer with a heatmap.

Uploads stay in memory (Streamlit keeps them in RAM; nothing is written to disk). Every file that cannot be
used gets one plain sentence via st.error; unexpected failures are logged by exception type only.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from brainscan.app import teaching as ui_teaching
from brainscan.app import ui, volume_view
from brainscan.app.results import Summary, Upload, results_csv, results_frame
from brainscan.cam.methods import CAM_LABELS, CAM_METHODS
from brainscan.cam.overlay import COLORMAPS, gradcam_overlay, to_png
from brainscan.errors import ModelError
from brainscan.scans import cases as case_lib
from brainscan.scans.io import ScanError, load_scan, to_uint8

log = logging.getLogger("brainscan.app")

DISPLAY_SIDE = 512  # longest side of the images sent to the browser: about 1.5x the 340 px they are shown at
#                    (two images in the 7/12 column of a 1366 px window; a click opens them full screen)
STEP_SIDE = 256
CAM_HELP = ("Grad-CAM: fast and coarse; where it is empty, CAM is shown instead. Grad-CAM++: can show several "
            "regions. Score-CAM: does not use gradients; slower (about a second). CAM: the evidence for "
            "the class at each place, relative to the place with the least.")


# --- choosing files --------------------------------------------------------------------------------

def _clear_sample() -> None:
    st.session_state["sample"] = None
    _clear_case()


def choose_files() -> list[Upload]:
    limit = int(st.get_option("server.maxUploadSize"))
    uploaded = st.file_uploader(
        f"Upload brain MRI slices: PNG, JPEG, TIFF, BMP or DICOM (also DICOM files without an extension); or whole "
        f"volumes: NIfTI (.nii, .nii.gz), all the files of a DICOM series, or a zip of them; at most {limit} MB each",
        type=None, accept_multiple_files=True, key="uploads", on_change=_clear_sample,
        help=f"Several files at once give a results table. Files stay in memory for this session only. A file "
             f"over {limit} MB is refused by the uploader (a red mark) and never reaches the server.")
    files = [Upload(f.name, f.getvalue(), hashlib.blake2b(f.getvalue(), digest_size=16).hexdigest())
             for f in uploaded or []]
    case = library_case_upload()
    if case is not None:
        files.append(case)
    samples = {p.name: p for p in ui.sample_files()}
    if samples:
        picked = st.pills("Or try a sample image (one click):", list(samples), key="sample")
        if picked in samples:
            data = samples[picked].read_bytes()
            files.append(Upload(picked, data, hashlib.blake2b(data, digest_size=16).hexdigest()))
    files.extend(volume_view.sample_uploads())
    return files


def opened_case() -> case_lib.Case | None:
    """The case opened from the Case library (session state, or ?case=case07 in the link)."""
    case_id = st.session_state.get("library_case") or st.query_params.get("case")
    return ui_teaching.library_case(f"{case_id}.png") if case_id else None


def library_case_upload() -> Upload | None:
    case = opened_case()
    if case is None:
        return None
    data = case.data()
    return Upload(case.name, data, hashlib.blake2b(data, digest_size=16).hexdigest())


def _clear_case() -> None:
    st.session_state["library_case"] = None
    st.query_params.pop("case", None)


# --- running the model (results shared by all sessions: brainscan.app.shared) ----------------------------

class ModelAccess:
    """Loads the shared model only when the first readable file needs it."""

    def __init__(self, holder: ui.ModelHolder):
        self.holder = holder
        self._model: Any = None

    def model(self) -> Any:
        if self._model is None:
            with st.spinner("Loading the model (only the first time after the server starts)..."):
                self._model = self.holder.get(timeout=600)
        return self._model

    def check(self, scan: Any, cam_method: str | None, tta: bool = True) -> Any:
        return ui.check(self.holder, self.model(), scan, cam_method, tta)


def _unexpected(name: str, err: BaseException) -> str:
    log.error("Unexpected %s while checking an uploaded file", type(err).__name__)
    return f"{name or 'This file'} could not be checked because of an unexpected problem; please try another file."


def summarise(access: ModelAccess, upload: Upload) -> Summary:
    """The results-table row of an upload: computed once per model for the same file (bytes and name), whichever
    session drops it; each session keeps its rows without the bytes."""
    cache: dict[str, Summary] = st.session_state.setdefault("_summaries", {})
    if upload.digest in cache:
        return replace(cache[upload.digest], upload=upload)

    def compute() -> Summary:
        summary = Summary(replace(upload, data=b""))  # the bytes stay with the uploader
        try:
            scan = load_scan(upload.data, upload.name)
            summary.n_frames, summary.frame, summary.kind = scan.n_frames, scan.frame, scan.kind
            summary.thumbnail = ui.thumbnail_url(scan.pixels)
            summary.prediction = access.check(scan, None, tta=False).prediction  # the table needs no views
        except ScanError as err:
            summary.error = str(err)
        return summary

    try:
        summary = access.holder.results.get(("summary", upload.digest, upload.name), compute)
    except ModelError:
        raise
    except Exception as err:  # noqa: BLE001 - never a traceback for the user
        summary = Summary(replace(upload, data=b""), error=_unexpected(upload.name, err))
    cache[upload.digest] = summary
    return replace(summary, upload=upload)


def full_result(access: ModelAccess, upload: Upload, frame: int | None, method: str) -> Any:
    """The whole check (heatmap, test-time views): once per model for the same file, frame and method."""
    return access.holder.results.get(("result", upload.digest, upload.name, frame, method),
                                     lambda: access.check(load_scan(upload.data, upload.name, frame), method))


# --- showing results -------------------------------------------------------------------------------

def show_error(summary: Summary) -> None:
    msg = summary.error or ""
    name = summary.upload.name
    st.error(msg if not name or name in msg else f"{name}: {msg}", icon=":material/error:")


def results_table(summaries: list[Summary]) -> None:
    df = results_frame(summaries)
    st.subheader(f"Results for {len(summaries)} files")
    st.caption("Click a column header to sort. Percentages are calibrated probabilities. The answer is a tumor when "
               "the probability of any tumor reaches the model's threshold, so it can differ from the most probable "
               "class.")
    st.dataframe(df, hide_index=True, key="results_table", row_height=56, column_config={
        "Preview": st.column_config.ImageColumn("Preview", width="small"),
        "File": st.column_config.TextColumn("File", width="medium"),
        "Probability of any tumor (%)": st.column_config.ProgressColumn(
            "Probability of any tumor", min_value=0, max_value=100, format="%.0f%%"),
        "Probability of the answer's class (%)": st.column_config.ProgressColumn(
            "Probability of the answer's class", min_value=0, max_value=100, format="%.0f%%"),
        "Problem": st.column_config.TextColumn("Problem", width="large"),
    })
    st.download_button("Download the table (CSV)", results_csv(df),
                       file_name="brainscan_results.csv", mime="text/csv", icon=":material/download:",
                       on_click="ignore")


def answer_panel(result: Any, limitations: list[str] | None = None, folder: Path | None = None) -> None:
    """The answer; limitations are the model card's measured ones (a reminder is shown when there are any)."""
    p = result.prediction
    words = ui.answer_words(p)
    with st.container(border=True):
        st.markdown(f"#### {words.sentence}")
        if words.top_note:
            st.caption(words.top_note)
        if folder is not None:
            ui_teaching.uncertainty_panel(result.uncertainty, folder)
        unsure = ui.uncertainty_sentence(p.probabilities)
        if unsure:
            st.warning(unsure, icon=":material/help:")
        cols = st.columns(2)
        # The value is the probability: a class name such as "Pituitary tumor" would be cut off in a metric box.
        cols[0].metric(f"Answer: {words.label}", ui.pct(words.probability), border=True,
                       help="Calibrated probability of the answer's class.")
        if "notumor" in p.probabilities:
            tumors = ui.join_words([ui.class_label(c) for c in ui.tumor_classes(list(p.probabilities))])
            cols[1].metric("Probability of any tumor", ui.pct(p.tumor_probability), border=True,
                           help="1 minus the probability of no tumor.")
            st.caption(f"“Any tumor” is {tumors} added together.")
        ui.probability_bars(p.probabilities, p.label)
        if p.ood_score is None:
            st.caption("This model has no familiarity check, so unusual images are not flagged.")
        else:
            share = "all" if p.ood_score >= 0.995 else ui.pct(p.ood_score)
            st.caption(f"Familiarity check: this image is more unusual than {share} of the validation scans "
                       "(flagged as unfamiliar above 99%).")
        st.caption("Probabilities are calibrated on validation data: see Model and metrics for how reliable "
                   "they are. Not a medical device.")
        if limitations:  # the card's own measured sentences, not a fixed text that outlives the model
            st.warning("**Known limitations (measured):**\n" + "\n".join(f"- {x}" for x in limitations)
                       + "\n\nSee Model and metrics.", icon=":material/warning:")


def image_controls() -> tuple[str, float, str]:
    cols = st.columns([6, 3, 2])
    method = cols[0].segmented_control("Heatmap method", list(CAM_METHODS), default=CAM_METHODS[0],
                                       format_func=CAM_LABELS.get, required=True, key="cam_method", help=CAM_HELP)
    opacity = cols[1].slider("Heatmap opacity", 0, 100, 40, 5, format="%d%%", key="opacity",
                             help="0% shows only the scan; 100% shows the heatmap colours at full strength.")
    colormap = cols[2].selectbox("Colour map", list(COLORMAPS), key="colormap",
                                 help="Colours from cold (little influence) to hot (most influence).")
    return method or CAM_METHODS[0], opacity / 100.0, str(colormap)


def images(access: ModelAccess, key: tuple, result: Any, method: str, opacity: float, colormap: str) -> None:
    """The scan and its overlay. key: the result's key in the shared results; the PNGs sent to the browser are
    made once per key and display setting, the full-size overlay only when a download asks for it."""
    scan, hm = result.scan, result.heatmap
    label = ui.class_label(result.prediction.label)
    case = opened_case()
    case = case if case is not None and case.name == scan.name else None  # not an upload that has the same name
    mask = case.mask() if case is not None else None
    outlined = mask is not None and mask.shape == scan.pixels.shape[:2]
    caption = f"Heatmap: {CAM_LABELS[hm.method]}, opacity {opacity:.0%}, {colormap} colours"
    if outlined:
        caption += "; the true outline in green, the heatmap's peak as a white cross"

    def overlay() -> Any:
        shown = gradcam_overlay(scan.pixels, hm.original, opacity, colormap)
        return case_lib.draw_outline(shown, mask, hm.peak) if outlined else shown

    original_png, overlay_png = access.holder.results.get(
        ("shown", *key, opacity, colormap, outlined),
        lambda: (to_png(ui.shrink(to_uint8(scan.pixels), DISPLAY_SIDE)), to_png(ui.shrink(overlay(), DISPLAY_SIDE))))
    left, right = st.columns(2)
    left.image(original_png, caption="Original scan", width="stretch", alt="Original scan")
    right.image(overlay_png, width="stretch", alt="Heatmap overlay on the scan", caption=caption)
    if case is not None:
        ui_teaching.case_truth(case, mask, hm.peak, label)
    if hm.instead_of:
        st.info(f"{CAM_LABELS[hm.instead_of]} is empty: no region of the scan added to the score for “{label}” "
                "(the answer comes from evidence against the other classes). Shown instead: CAM, where the evidence "
                f"is least against “{label}”. Read it as relative, not as a finding.")
    elif hm.empty:
        st.info(f"The heatmap is empty: no region pushed the model towards “{label}”, so nothing is highlighted.")
    else:
        st.caption(f"Warm colours mark the regions that pushed the model most towards “{label}”. "
                   "A heatmap is not a tumor outline and can highlight the wrong place.")
    stem = Path(scan.name or "scan").stem
    d1, d2 = st.columns(2)
    d1.download_button("Download the overlay (PNG)", lambda: to_png(overlay()), key="dl_overlay",
                       file_name=f"{stem}_{hm.method.replace('+', 'p')}.png", mime="image/png",
                       icon=":material/download:", on_click="ignore")
    model = access.model()
    payload = {**result.as_dict(), "model": str(model.name), "disclaimer": ui.DISCLAIMER.replace("**", "")}
    d2.download_button("Download the result (JSON)", json.dumps(payload, indent=2), key="dl_json",
                       file_name=f"{stem}_result.json", mime="application/json", icon=":material/download:",
                       on_click="ignore")
    card, folder = dict(model.card), Path(model.path)

    def build_pdf() -> bytes:  # built only when the button is clicked
        from brainscan.app import report
        from brainscan.runtime import uncertainty

        return report.build_pdf(result, overlay(), caption, card, folder, result.uncertainty,
                                uncertainty.read_settings(folder))

    def build_zip() -> bytes:
        from brainscan.app import report

        return report.panels_zip(result, overlay(), build_pdf())

    st.session_state["_report_pdf"] = build_pdf  # the AppTest reads the same callable the button runs
    ui_teaching.report_downloads(build_pdf, build_zip, stem)


def scan_details(result: Any) -> None:
    notes = list(result.scan.notes) + list(result.prepared.notes)
    if notes:
        st.info("**About this image:**\n" + "\n".join(f"- {n}" for n in notes), icon=":material/info:")
    label = "DICOM information (identifying fields are never read)" if result.scan.kind == "dicom" \
        else "Image information"
    with st.expander(label, expanded=result.scan.kind == "dicom"):
        st.table(pd.DataFrame(ui.metadata_rows(result.scan.metadata)), hide_index=True)
    steps = result.prepared.steps
    if not steps:
        return
    st.subheader("How the image was prepared for the model")
    cols = st.columns(len(steps))
    for col, (caption, img) in zip(cols, steps, strict=True):
        col.image(ui.shrink(img, STEP_SIDE), caption=caption, width="stretch")


def details(access: ModelAccess, summary: Summary) -> None:
    upload = summary.upload
    if volume_view.is_volume(upload):
        volume_view.details(access, summary, lambda title, key, get: show_result(access, title, key, get))
        return
    st.subheader(f"Result for {upload.name}")
    frame = None
    if summary.n_frames > 1:
        frame = st.slider(f"Slice (frame) of this {summary.n_frames}-frame file", 0, summary.n_frames - 1,
                          summary.frame, key=f"frame-{upload.digest}", width=640,
                          help="Frames are numbered from 0; the middle one is shown first.")
    show_result(access, upload.name, (upload.digest, upload.name, frame),
                lambda method: full_result(access, upload, frame, method))


def show_result(access: ModelAccess, name: str, key: tuple, get_result: Any) -> None:
    """One scan's (or one slice of a volume's) answer, images, steps and report; get_result(method) -> CheckResult,
    key names the result in the shared results."""
    banner = st.container()
    left, right = st.columns([5, 7], gap="large")
    with right:
        method, opacity, colormap = image_controls()
    try:
        with st.spinner(f"Checking {name} ({CAM_LABELS[method]})..."):
            result = get_result(method)
    except ScanError as err:
        st.error(str(err), icon=":material/error:")
        return
    if result.prediction.out_of_distribution:
        banner.error(f"**{ui.OOD_WARNING}** The answer and the heatmap below are shown for teaching only.",
                     icon=":material/report:")
    model = access.model()
    with left:
        answer_panel(result, model.card.get("limitations"), Path(model.path))
    with right:
        images(access, (*key, method), result, method, opacity, colormap)
    scan_details(result)


def main() -> None:
    ui.ensure_navigation()
    st.title("Scan check")
    ui.disclaimer()
    files = choose_files()
    if not files:
        st.info("Upload one or more brain MRI slices above to get the model's answer, its uncertainty and a "
                "heatmap. DICOM files (with or without the .dcm extension) and ordinary images both work.",
                icon=":material/upload_file:")
        return
    holder = ui.model_holder()
    if holder is None:
        st.error(ui.NO_MODEL)
        return
    access = ModelAccess(holder)
    try:
        files = volume_view.group(files)  # a NIfTI file, a DICOM series, a zip: one row each
        summaries = [volume_view.summarise(access, f) if volume_view.is_volume(f) else summarise(access, f)
                     for f in files]
    except ModelError as err:
        st.error(str(err))
        return
    current = {f.digest for f in files}
    cache = st.session_state.get("_summaries", {})
    for digest in [d for d in cache if d not in current]:  # forget files that were removed
        del cache[digest]
    for s in summaries:
        if s.error:
            show_error(s)
    if len(summaries) > 1:
        results_table(summaries)
    good = [s for s in summaries if not s.error]
    if not good:
        return
    chosen = good[0]
    if len(good) > 1:
        st.divider()
        names = [f"{i + 1}. {s.upload.name}" for i, s in enumerate(good)]
        pick = st.selectbox("Show the details of", names, key="detail_file")
        chosen = good[names.index(pick)] if pick in names else good[0]
    try:
        details(access, chosen)
    except ModelError as err:
        st.error(str(err))
    except Exception as err:  # noqa: BLE001 - never a traceback for the user
        st.error(_unexpected(chosen.upload.name, err), icon=":material/error:")


main()
