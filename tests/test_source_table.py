"""The Model page's per-source rows come from the card's figures, nothing else."""

from brainscan.app.source_table import source_rows


def test_source_rows_from_a_card():
    card = {
        "scores_by_source": {
            "val": {"ms-ljubljana-slices/flair": {"n": 9, "n_tumor": 0, "accuracy": 1.0}},  # not shown
            "test": {"lgg-tcga-slices/flair": {"n": 10, "n_tumor": 4, "accuracy": 0.9, "tumor_roc_auc": 0.95,
                                               "called_tumor": 0.5},
                     "ms-ljubljana-slices/t2": {"n": 8, "n_tumor": 0, "accuracy": 1.0, "called_tumor": 0.125}},
            "institution_holdout": {"lgg-tcga-slices/flair": {"n": 6, "n_tumor": 3, "accuracy": 0.5,
                                                              "tumor_roc_auc": 0.7, "called_tumor": 0.4}},
        },
        "external": {
            "brats_flair": {"n": 198, "tumor_roc_auc": 0.91, "pointing_game_hit_rate": 0.6, "sensitivity": 0.9,
                            "specificity": 0.8},
            "brats_flair_upside_down": {"n": 198, "tumor_roc_auc": 0.95},
            "yes_no_dedup": {"n": 100, "tumor_roc_auc": 0.9},
            "lgg_institution_holdout_flair_pointing": {"n": 3, "pointing_game_hit_rate": 2 / 3},
        },
    }
    rows = source_rows(card)
    keys = [(r["Source"], r["Sequence"], r["Which images"]) for r in rows]
    assert keys == [("lgg-tcga-slices", "flair", "held-out patients"),
                    ("ms-ljubljana-slices", "t2", "held-out patients"),
                    ("lgg-tcga-slices", "flair", "institution never trained on"),
                    ("brats2013-slices", "flair", "external, never trained on"),
                    ("brats2013-slices", "flair", "external, upside down"),
                    ("navoneel-yes-no", "mixed", "external, deduplicated")]
    assert rows[1]["Called tumor"] == 0.125  # the false-positive rate of a tumor-free cell
    assert rows[2]["Pointing game"] == 2 / 3 and rows[0]["Pointing game"] is None
    assert rows[3]["Specificity"] == 0.8 and rows[4]["Tumor ROC AUC"] == 0.95


def test_external_keys_read_as_words():
    from brainscan.app.source_table import external_label

    assert external_label("brats_flair") == "brats2013 FLAIR"
    assert external_label("brats_t1c_upside_down") == "brats2013 contrast T1, turned upside down"
    assert external_label("yes_no_dedup") == "navoneel yes/no, without near-duplicates"
    assert external_label("lgg_val_t1_pointing") == "lgg-tcga validation patients, T1 (pointing game)"
    assert (external_label("lgg_institution_holdout_t1c_pointing")
            == "lgg-tcga unseen institution, contrast T1 (pointing game)")
    assert external_label("something_new") == "something new"
