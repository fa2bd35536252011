"""The Scan page's volumes: a NIfTI file, the files of a DICOM series or a zip become one result row, and the volume
view (its answer, the per-slice strip and slider, three orthogonal views through the peak, the volume report).

pages/scan.py hands over its uploads (:func:`group`), asks for a row (:func:`summarise`) and, for a chosen
volume, calls :func:`details` with its own slice view, so that any slice of a volume gets everything a single
scan gets (steps, probabilities, heatmap methods, stability, report).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import streamlit as st

from brainscan.app import ui
from brainscan.app.results import Summary, Upload, VolumeUpload
from brainscan.app.shared import SharedResults
from brainscan.app.volume_panels import orthogonal_views, png, strip_fast, volume_lines, volume_report
from brainscan.errors import ScanError

log = logging.getLogger("brainscan.app")

# Volumes are large (a 512 x 512 x 400 int16 series holds 200 MB): a few per server process, shared by sessions.
VOLUMES = SharedResults(max_entries=2)
VIEW_SIDE = 340  # the orthogonal views' width on the page


# --- uploads -> rows ----------------------------------------------------------------------------------------

def sample_uploads() -> list[Upload]:
    """The sample volumes (sample_images/volumes/: a NIfTI file, a zipped DICOM series) as one-click pills."""
    found = ui.sample_files("volumes")
    if not found:
        return []
    by_name = {p.name: p for p in found}
    picked = st.pills("Or a sample volume (a whole study: NIfTI, or a DICOM series in a zip):", list(by_name),
                      key="sample_volume")
    if picked not in by_name:
        return []
    data = by_name[picked].read_bytes()
    return [Upload(picked, data, hashlib.blake2b(data, digest_size=16).hexdigest())]


def _may_hold_volumes(files: list[Upload]) -> bool:
    from brainscan.scans.io import is_dicom
    from brainscan.scans.nifti import looks_like_nifti
    from brainscan.scans.studies import is_zip

    return any(is_zip(f.data) or looks_like_nifti(f.data, f.name) for f in files) or \
        sum(is_dicom(f.data) for f in files) > 1


def group(files: list[Upload]) -> list[Upload]:
    """The uploads with each volume's files made one VolumeUpload (in the place of its first file); single images
    and lone DICOM slices stay as they are. Remembered per session for the same set of files."""
    if not files or not _may_hold_volumes(files):
        return files
    memo: dict = st.session_state.setdefault("_volume_groups", {})
    key = tuple(f.digest for f in files)
    if key not in memo:
        memo.clear()
        memo[key] = _group(files)
    return [u if isinstance(u, Upload) else files[u] for u in memo[key]]


def _group(files: list[Upload]) -> list[Upload | int]:
    """VolumeUploads, single files found inside a zip, and indices into files for the uploads that stay single (so
    their bytes are not kept twice)."""
    from brainscan.scans.studies import sort_files

    by_id = {id(f.data): i for i, f in enumerate(files)}
    out: list[Upload | int] = []
    for study in sort_files([(f.name, f.data) for f in files]):
        if study.kind == "file" and study.files:
            data = study.files[0][1]
            out.append(by_id[id(data)] if id(data) in by_id else
                       Upload(study.name, data, hashlib.blake2b(data, digest_size=16).hexdigest()))
            continue
        digest = hashlib.blake2b("|".join(sorted(files[by_id[id(d)]].digest if id(d) in by_id else
                                                 hashlib.blake2b(d, digest_size=16).hexdigest()
                                                 for _, d in study.files)).encode() + study.name.encode(),
                                 digest_size=16).hexdigest()
        out.append(VolumeUpload(study.name, b"", digest, study))
    return out


def is_volume(upload: Upload) -> bool:
    return isinstance(upload, VolumeUpload)


def _volume_index() -> dict:
    return st.session_state.setdefault("_volume_index", {})


def volume_count(upload: VolumeUpload) -> int:
    """Volumes in a 4-D NIfTI file (1 otherwise), from its header, remembered per session."""
    counts: dict = st.session_state.setdefault("_volume_counts", {})
    if upload.digest not in counts:
        counts[upload.digest] = 1
        if upload.study.kind == "nifti":
            from brainscan.scans.nifti import volume_count as count

            try:
                counts[upload.digest] = count(upload.study.files[0][1], upload.name)
            except ScanError:
                pass  # refused in words when it is read
    return counts[upload.digest]


def _result(access: Any, upload: VolumeUpload) -> Any:
    """The volume's result (every slice's answer; no heatmap), shared by sessions; ScanError when it cannot be.
    A 4-D file: the volume picked in this session, else the first."""
    from brainscan.volume_check import check_volume

    study = upload.study
    index = _volume_index().get(upload.digest, 0) if volume_count(upload) > 1 else None
    model = access.model()

    def compute() -> Any:
        volume = study.load(index)
        with access.holder.lock:
            return check_volume(model, volume, None)

    return VOLUMES.get((str(model.path), upload.digest, index), compute)


def summarise(access: Any, upload: VolumeUpload) -> Summary:
    """The results-table row of a volume."""
    summary = Summary(replace(upload, study=None), kind="volume")
    if upload.study.kind == "refused":
        summary.error = upload.study.error
        return replace(summary, upload=upload)
    try:
        result = _result(access, upload)
        k = result.answer.peak_slice or 0
        summary.prediction, summary.n_frames, summary.frame = result.prediction, result.volume.n_slices, k
        summary.slices = result.volume.n_slices
        summary.thumbnail = ui.thumbnail_url(result.volume.slice_pixels(k))
    except ScanError as err:
        if volume_count(upload) == 1:  # a 4-D file keeps its row and its picker; the view says what went wrong
            summary.error = str(err)
    except Exception as err:  # noqa: BLE001 - never a traceback for the user
        log.error("Unexpected %s while checking an uploaded volume", type(err).__name__)
        summary.error = f"{upload.name} could not be checked because of an unexpected problem."
    return replace(summary, upload=upload)


# --- the volume view ------------------------------------------------------------------------------------------

SliceView = Callable[[str, tuple, Callable[[str], Any]], None]  # (name, key, method -> CheckResult)


def details(access: Any, summary: Summary, slice_view: SliceView) -> None:
    """A chosen volume: its answer, the strip and slice slider, the orthogonal views, its report, then the chosen
    slice through the page's own slice view."""
    from brainscan.volume_check import check_slice, heatmap_class_index, slice_scan

    upload: VolumeUpload = summary.upload  # type: ignore[assignment]
    st.subheader(f"Result for {upload.name}")
    n = volume_count(upload)
    if n > 1:
        index = st.number_input(f"Volume of this 4-D file ({n} volumes, e.g. DWI directions or fMRI time points)",
                                0, n - 1, _volume_index().get(upload.digest, 0), key=f"vol4d-{upload.digest}",
                                width=420)
        _volume_index()[upload.digest] = int(index)
    try:
        with st.spinner(f"Checking every slice of {upload.name}..."):
            result = _result(access, upload)
    except ScanError as err:
        st.error(str(err), icon=":material/error:")
        return
    model, volume, a = access.model(), result.volume, result.answer
    holder = access.holder
    peak = a.peak_slice if a.peak_slice is not None else 0

    def peak_check() -> Any:
        with holder.lock:
            return check_slice(model, volume, peak, "gradcam", tta=False, class_index=heatmap_class_index(model, a))

    which = _volume_index().get(upload.digest, 0) if n > 1 else None
    peak_result = holder.results.get(("volume-peak", upload.digest, which), peak_check)
    result.peak = peak_result
    _answer(result)
    tumor = result.slices.tumor()
    st.markdown("**Tumour probability of each axial slice** (inferior to superior)")
    k = st.slider("Slice to show below", 0, volume.n_slices - 1, peak, key=f"vslice-{upload.digest}",
                  help="0 is the most inferior slice; the peak slice is shown first.")
    st.image(png(strip_fast(tumor, _slice_threshold(result), a.peak_slice, k, a.slices_used)), width="stretch",
             caption="Red: at or above the slice threshold (dashed); grey: not checked (outside the head or missing); "
                     "triangles: the slices the volume's score rests on; black line: the peak slice; orange: the "
                     "slice shown below. Slices from inferior (0) to superior.")
    _views(result, peak_result)
    _report_button(access, upload, result, peak)
    st.divider()
    if k in volume.missing:
        st.info(f"Slice {k} is missing from the series; there is nothing to check.", icon=":material/info:")
        return
    if k in result.slices.outside_head:
        st.caption(f"Slice {k} lies outside the head and did not count towards the volume's answer; it is checked "
                   "below as a single slice.")
    key = (upload.digest, which, k)
    st.subheader(f"Slice {k}: everything a single scan gets")
    slice_view(f"slice {k} of {upload.name}", key, lambda method: holder.results.get(
        ("volume-slice", *key, method), lambda: access.check(slice_scan(volume, k), method)))


def _slice_threshold(result: Any) -> float | None:
    first = next(iter(result.slices.predictions.values()), None)
    return None if first is None else first.threshold


def _answer(result: Any) -> None:
    p = result.prediction
    lines = volume_lines(result)
    with st.container(border=True):
        st.markdown(f"#### {lines[0]}")
        cols = st.columns(3)
        words = ui.answer_words(p)
        cols[0].metric(f"Volume: {words.label}", ui.pct(words.probability), border=True,
                       help="Calibrated probability of the answer's class for the whole volume.")
        if "notumor" in p.probabilities:
            cols[1].metric("Probability of any tumor", ui.pct(p.tumor_probability), border=True,
                           help="The volume's calibrated probability (see the rule below).")
        s = result.slices
        cols[2].metric("Slices checked", f"{len(s.checked)} of {s.n_slices}", border=True,
                       help="Slices outside the head are skipped; missing slices of a series cannot be checked.")
        for line in lines[1:]:
            st.caption(line)
        if p.out_of_distribution:
            st.error(f"**{ui.OOD_WARNING}** (its peak slice)", icon=":material/report:")
    if result.volume.notes:
        st.info("**About this volume:**\n" + "\n".join(f"- {n}" for n in result.volume.notes), icon=":material/info:")


def _views(result: Any, peak_result: Any) -> None:
    from brainscan.cam.overlay import gradcam_overlay

    a, volume = result.answer, result.volume
    k = a.peak_slice if a.peak_slice is not None else 0
    hm = peak_result.heatmap if peak_result is not None else None
    overlay = gradcam_overlay(peak_result.scan.pixels, hm.original, 0.4) if hm is not None else None
    views = orthogonal_views(volume, k, hm.peak if hm is not None else None, overlay)
    st.markdown(f"**Through the peak** (slice {k}; the green cross marks the heatmap's peak; shown radiologically: "
                "R is the patient's right, A the front, S the top)")
    cols = st.columns(3)
    for col, (img, caption) in zip(cols, views, strict=True):
        col.image(png(ui.shrink(img, 2 * VIEW_SIDE)), caption=caption, width="stretch")


def _report_button(access: Any, upload: VolumeUpload, result: Any, peak: int) -> None:
    from brainscan.volume_check import check_slice, heatmap_class_index

    model = access.model()
    card, folder = dict(model.card), Path(model.path)

    def build_pdf() -> bytes:  # built only when the button is clicked
        from brainscan.app import report
        from brainscan.cam.methods import CAM_LABELS
        from brainscan.cam.overlay import gradcam_overlay
        from brainscan.runtime import uncertainty

        with access.holder.lock:
            full = check_slice(model, result.volume, peak, "gradcam", tta=True,
                               class_index=heatmap_class_index(model, result.answer))
        overlay = gradcam_overlay(full.scan.pixels, full.heatmap.original, 0.4)
        section = volume_report(replace(result, peak=full), overlay)
        caption = f"Heatmap: {CAM_LABELS[full.heatmap.method]} on the peak slice, opacity 40%"
        return report.build_pdf(full, overlay, caption, card, folder, full.uncertainty,
                                uncertainty.read_settings(folder), volume=section)

    from brainscan.scans.volume import file_stem

    stem = file_stem(upload.name)
    st.session_state["_volume_report_pdf"] = build_pdf  # the AppTest reads the callable the button runs
    st.download_button("Download the volume report (PDF)", build_pdf, file_name=f"{stem}_volume_report.pdf",
                       mime="application/pdf", icon=":material/picture_as_pdf:", key="dl_volume_report",
                       on_click="ignore")
