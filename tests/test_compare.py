"""The stored comparison of two models (brainscan.evaluation.compare), its table on the Model page
(brainscan.comparison) and the contrast proxy's table (brainscan.evaluation.proxy)."""

from __future__ import annotations

import json

import pytest

from brainscan.comparison import comparison_heading, comparison_markdown, comparison_rows, read_comparison
from brainscan.evaluation import compare, proxy


def _card(folder, name, external):
    folder.mkdir(parents=True)
    (folder / "card.json").write_text(json.dumps({"name": name, "external": external}))


def test_card_figures_read_every_external_row():
    ext = {"brats_flair": {"tumor_roc_auc": 0.96, "pointing_game_hit_rate": 0.75},
           "brats_t1c": {"tumor_roc_auc": 0.91, "pointing_game_hit_rate": 0.51},
           "lgg_institution_holdout_t1_pointing": {"pointing_game_hit_rate": 0.52},
           "btm_test_dedup_pituitary_pointing": {"pointing_game_hit_rate": 0.0},
           "yes_no_dedup": {"accuracy": 0.847}}
    figures = {**{"brats_auc_flair": 0.96, "brats_auc_t1c": 0.91, "brats_pointing_flair": 0.75,
                  "brats_pointing_t1c": 0.51, "lgg_ht_pointing_t1": 0.52, "btm_pointing_pituitary": 0.0,
                  "yes_no_accuracy": 0.847},
               **{k: None for k in ("lgg_ht_pointing_flair", "lgg_ht_pointing_t1c", "btm_pointing_glioma",
                                    "btm_pointing_meningioma")}}
    assert compare.card_figures_from(ext) == figures


def test_rows_say_which_model_meets_each_goal_and_which_is_better(monkeypatch, tmp_path):
    _card(tmp_path / "old", "v3.1", {"yes_no_dedup": {"accuracy": 0.847}})
    _card(tmp_path / "new", "v4", {"yes_no_dedup": {"accuracy": 0.92}})
    measured = {str(tmp_path / "old"): {"btm_ece": 0.036, "ms_called_tumour": 0.0},
                str(tmp_path / "new"): {"btm_ece": 0.025, "ms_called_tumour": 0.0}}
    monkeypatch.setattr(compare, "item_index", lambda recipe, root: {})
    monkeypatch.setattr(compare, "measured_figures", lambda folder, recipe, root, index: measured[str(folder)])
    result = compare.compare(str(tmp_path / "old"), str(tmp_path / "new"), "r.toml", "data")
    rows = {r["key"]: r for r in result["rows"]}
    assert [r["key"] for r in result["rows"]] == [t.key for t in compare.TARGETS]
    yn = rows["yes_no_accuracy"]
    assert (yn["old"], yn["new"], yn["old_met"], yn["new_met"], yn["new_better"]) == (0.847, 0.92, False, True, True)
    ece = rows["btm_ece"]  # lower is better
    assert (ece["old_met"], ece["new_met"], ece["new_better"]) == (False, True, True)
    assert rows["ms_called_tumour"]["new_better"] is False and rows["ms_called_tumour"]["new_met"] is True
    assert rows["brats_auc_flair"]["new_met"] is None  # not measured: neither met nor missed
    compare.write(result, str(tmp_path / "new"))
    assert read_comparison(tmp_path / "new") == json.loads(json.dumps(result))
    assert read_comparison(tmp_path / "old") is None

    table = {r["Measure"]: r for r in comparison_rows(result)}
    yes_no = table["navoneel yes/no without near-duplicates: accuracy"]
    assert yes_no == {"Measure": yes_no["Measure"], "Goal": "≥ 90.0%", "v3.1": "84.7% ✗", "v4": "92.0% ✓",
                      "Better": "v4"}
    assert table["brain-tumor-mri deduplicated test: ECE"]["Goal"] == "≤ 0.030"
    assert table["ms-ljubljana test patients (MS, no tumour): called tumour"]["Better"] == "same"
    assert comparison_heading(result, "v4") == "Against v3.1"
    assert comparison_heading(result, "v3.1") == "Beside v4, a candidate that was not shipped"
    md = comparison_markdown(result)
    assert md[2] == "| Measure | Goal | v3.1 | v4 | Better |" and len(md) == 4 + len(compare.TARGETS)
    assert f"| {yes_no['Measure']} | ≥ 90.0% | 84.7% ✗ | 92.0% ✓ | v4 |" in md


def test_proxy_table_gives_each_runs_gap_to_the_all_sequence_run(tmp_path):
    def run(name, aucs):
        (tmp_path / name).mkdir()
        by_source = {f"lgg/{s}": {"tumor_roc_auc": a} for s, a in aucs.items()}
        (tmp_path / name / "metrics.json").write_text(json.dumps(
            {"test": {"by_source": by_source}, "institution_holdout": {"by_source": by_source}}))

    run("all", {"flair": 0.98, "t1": 0.92, "t1c": 0.94})
    run("t1c", {"flair": 0.80, "t1": 0.70, "t1c": 0.95})
    (tmp_path / "unfinished").mkdir()
    out = proxy.proxy_table(tmp_path)
    assert set(out["auc"]) == {"all", "t1c"}
    assert out["gap_to_all_sequences"]["t1c"]["test"]["flair"] == pytest.approx(0.18)
    assert out["gap_to_all_sequences"]["t1c"]["institution_holdout"]["t1c"] == pytest.approx(-0.01)
    assert proxy.main([str(tmp_path)]) == 0 and (tmp_path / "proxy.json").is_file()
