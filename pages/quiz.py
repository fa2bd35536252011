"""Quiz: a learner sees a library case, answers (tumour or not, which type, optionally where), then sees the
truth, the model's answer and its heatmap. The session keeps a score for the learner and for the model on
the same cases. A teacher sets the number of cases and a seed (also as ?n=10&seed=7 in the link) so that a
class sees the same cases. No account; nothing is kept after the session.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from brainscan.app import quiz_pieces, ui
from brainscan.cam.overlay import to_png
from brainscan.errors import ModelError
from brainscan.scans import cases as case_lib

DEFAULT_N, DEFAULT_SEED = 8, 1


def _param(name: str, default: int, lo: int, hi: int) -> int:
    try:
        return max(lo, min(hi, int(st.query_params.get(name, default))))
    except (TypeError, ValueError):
        return default


def settings(library: list[case_lib.Case]) -> tuple[int, int]:
    with st.expander("Teacher: set the quiz (the same number and seed give every learner the same cases)",
                     icon=":material/school:"):
        c1, c2, c3 = st.columns([2, 2, 3])
        n = c1.number_input("Number of cases", 1, len(library), _param("n", DEFAULT_N, 1, len(library)), key="quiz_n")
        seed = c2.number_input("Seed", 0, 999_999, _param("seed", DEFAULT_SEED, 0, 999_999), key="quiz_seed")
        c3.caption(f"Share this link with the class: `?n={int(n)}&seed={int(seed)}` after the page address.")
        if c3.button("Start this quiz", icon=":material/restart_alt:", key="quiz_start"):
            st.query_params.update({"n": str(int(n)), "seed": str(int(seed))})
            st.session_state.pop("quiz", None)
    return int(n), int(seed)


def state(library: list[case_lib.Case], n: int, seed: int) -> dict:
    quiz = st.session_state.get("quiz")
    if quiz is None or (quiz["n"], quiz["seed"]) != (n, seed):
        quiz = {"n": n, "seed": seed, "ids": [c.id for c in case_lib.quiz_cases(library, n, seed)], "pos": 0,
                "results": {}}
        st.session_state["quiz"] = quiz
        st.session_state.pop("quiz_point", None)
    return quiz


def click_chart(case: case_lib.Case, point: tuple[int, int] | None, key: str) -> tuple[int, int] | None:
    """The case's image with a grid of invisible click targets; returns the clicked (x, y) in image pixels."""
    event = st.vega_lite_chart(quiz_pieces.click_spec(case, point), on_select="rerun", key=key,
                               selection_mode="where", width="content")
    chosen = (event or {}).get("selection", {}).get("where") or []
    if chosen:
        return int(chosen[0]["x"]), int(chosen[0]["y"])
    return point


def question(case: case_lib.Case, pos: int, total: int) -> case_lib.Answer | None:
    st.subheader(f"Case {pos + 1} of {total}")
    left, right = st.columns([6, 5], gap="large")
    with left:
        point = click_chart(case, st.session_state.get("quiz_point"), key=f"quiz_click_{pos}")
        st.session_state["quiz_point"] = point
        st.caption("Optional: click where you think the tumour is." + (f" Your click: x={point[0]}, y={point[1]}."
                                                                       if point else ""))
    with right:
        st.caption(f"{case.sequence_name} slice. Source and truth are shown after you answer.")
        tumour = st.radio("Is there a tumour?", ["Yes", "No"], index=None, key=f"quiz_tumour_{pos}", horizontal=True)
        kind = None
        if tumour == "Yes":
            kind = st.radio("Which type?", list(case_lib.TUMOUR_TYPES), format_func=ui.class_label, index=None,
                            key=f"quiz_kind_{pos}", horizontal=True)
        ready = tumour == "No" or (tumour == "Yes" and kind is not None)
        if st.button("Check my answer", type="primary", disabled=not ready, key=f"quiz_check_{pos}",
                     icon=":material/check:"):
            return case_lib.Answer(tumour == "Yes", kind, point if tumour == "Yes" else None)
    return None


def model_check(case: case_lib.Case) -> tuple[Any, Any]:
    """The library case checked by the shared model (heatmap for its most likely tumour class), and the
    uncertainty of its answer."""
    from brainscan.app.case_check import check_case
    from brainscan.runtime import uncertainty

    holder = ui.model_holder()
    if holder is None:
        raise ModelError(ui.NO_MODEL)
    model = holder.get(timeout=600)

    def compute() -> tuple[Any, Any]:
        with holder.lock:
            cc = check_case(model, case)
            return cc, uncertainty.assess(model, cc.result.prepared.input, uncertainty.read_settings(model.path))

    return holder.results.get(("case", case.id), compute)  # once per model for the whole class


def grade(case: case_lib.Case, answer: case_lib.Answer) -> dict:
    with st.spinner("The model is answering the same case..."):
        cc, unc = model_check(case)
    mask = cc.mask
    p = cc.result.prediction
    results = ui.model_holder().results
    shown = results.get(("quiz-reveal", case.id), lambda: quiz_pieces.reveal_overlay(cc.result, mask))
    if answer.point is None:
        overlay = results.get(("quiz-reveal-png", case.id), lambda: to_png(shown))
    else:  # the learner's own picture, kept in the session as a PNG
        overlay = to_png(quiz_pieces.with_click(shown, answer.point, cc.result.scan.pixels.shape))
    return {"you": case_lib.score(case, answer, mask), "model": case_lib.score(case, cc.model_answer(), mask),
            "answer": answer, "model_words": ui.answer_words(p),
            "tumour_p": p.tumor_probability, "cam_class": cc.cam_class, "overlay": overlay,
            "cam_instead_of": cc.result.heatmap.instead_of,
            "needs_human": unc.needs_human, "unfamiliar": p.out_of_distribution}


def _mark(v: bool | None) -> str:
    return "n/a" if v is None else (":green[**right**]" if v else ":red[**wrong**]")


def reveal(case: case_lib.Case, r: dict) -> None:
    left, right = st.columns([6, 5], gap="large")
    left.image(r["overlay"], width="stretch", alt="Model heatmap with the true outline",
               caption=f"The model's heatmap for “{ui.class_label(r['cam_class'])}”"
                       + (" (CAM: Grad-CAM was empty)" if r.get("cam_instead_of") else "")
                       + (", the true outline in green, its peak as a white cross" if case.mask_path else "")
                       + (", your click in cyan" if r["answer"].point else "") + ".")
    with right:
        truth = ui.class_label(case.truth)
        st.markdown(f"#### Truth: {truth}")
        st.caption(f"{case.sequence_name}, {case.source_name}. {case.note} Licence {case.licence}.")
        ans = r["answer"]
        you = "No tumour" if not ans.tumour else ui.class_label(ans.kind or "tumor")
        st.markdown(f"**You said:** {you} · tumour or not {_mark(r['you']['tumour'])} · type {_mark(r['you']['type'])}"
                    f" · place {_mark(r['you']['place'])}")
        words = r["model_words"]
        st.markdown(f"**The model said:** {words.label} ({ui.pct(words.probability)}) · tumour or "
                    f"not {_mark(r['model']['tumour'])} · type {_mark(r['model']['type'])} · heatmap peak "
                    f"{_mark(r['model']['place'])}")
        if r["needs_human"]:
            st.warning("The model's own uncertainty check says: **uncertain: needs a human**.", icon=":material/help:")
        if r["unfamiliar"]:
            st.warning(ui.OOD_WARNING, icon=":material/report:")


def scoreboard(quiz: dict) -> None:
    results = [quiz["results"][i] for i in quiz["ids"] if i in quiz["results"]]
    if not results:
        return
    you = case_lib.totals([r["you"] for r in results])
    model = case_lib.totals([r["model"] for r in results])
    st.subheader(f"Score after {len(results)} of {len(quiz['ids'])} cases")
    rows = []
    for q, label in (("tumour", "Tumour or not"), ("type", "Which type (tumour cases)"),
                     ("place", "Where (tumour cases you clicked / heatmap peak)")):
        rows.append({"Question": label, "You": f"{you[q][0]} of {you[q][1]}", "The model": f"{model[q][0]} of "
                                                                                            f"{model[q][1]}"})
    st.dataframe(rows, hide_index=True)


def main() -> None:
    ui.ensure_navigation()
    st.title("Quiz")
    ui.disclaimer()
    library = case_lib.load_library()
    if not library:
        st.warning("The case library (case_library/cases.json) is missing.")
        return
    st.caption("Look at a real slice, answer, then compare with the truth and with the model. Your answers and "
               "score stay in this browser session only.")
    n, seed = settings(library)
    quiz = state(library, n, seed)
    cases = {c.id: c for c in library}
    pos = quiz["pos"]
    if pos >= len(quiz["ids"]):
        st.success(f"Quiz finished: {len(quiz['ids'])} cases (seed {seed}).", icon=":material/flag:")
        scoreboard(quiz)
        if st.button("Play again", key="quiz_again"):
            st.session_state.pop("quiz", None)
            st.rerun()
        return
    case = cases[quiz["ids"][pos]]
    if case.id not in quiz["results"]:
        answer = question(case, pos, len(quiz["ids"]))
        if answer is not None:
            try:
                quiz["results"][case.id] = grade(case, answer)
            except ModelError as err:
                st.error(str(err))
                return
            st.rerun()
    else:
        st.subheader(f"Case {pos + 1} of {len(quiz['ids'])}: the answer")
        reveal(case, quiz["results"][case.id])
        if st.button("Next case" if pos + 1 < len(quiz["ids"]) else "See the final score", type="primary",
                     key=f"quiz_next_{pos}", icon=":material/arrow_forward:"):
            quiz["pos"] += 1
            st.session_state.pop("quiz_point", None)
            st.rerun()
    scoreboard(quiz)


main()
