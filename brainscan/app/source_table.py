"""The Model page's per-source view: card figures (held-out patients per source and sequence, the unseen
lgg-tcga institution, the external sets) as rows of one table. No Streamlit, no TensorFlow."""

from __future__ import annotations

SOURCE_PARTS = {"test": "held-out patients", "institution_holdout": "institution never trained on"}
_SEQUENCES = {"flair": "FLAIR", "t1": "T1", "t1c": "contrast T1", "t2": "T2"}
_BTM_PARTS = {"test_dedup": "deduplicated test"}
_LGG_PARTS = {"val": "validation patients", "test": "held-out patients", "institution_holdout": "unseen institution"}


def external_label(key: str) -> str:
    """A card's external key in words: brats_t1c_upside_down -> "brats2013 contrast T1, turned upside down"."""
    if key.startswith("brats_"):
        rest = key[len("brats_"):]
        turned = rest.endswith("_upside_down")
        seq = rest[: -len("_upside_down")] if turned else rest
        return f"brats2013 {_SEQUENCES.get(seq, seq)}" + (", turned upside down" if turned else "")
    if key == "yes_no_dedup":
        return "navoneel yes/no, without near-duplicates"
    if key.startswith("lgg_") and key.endswith("_pointing"):
        part, _, seq = key[len("lgg_"):-len("_pointing")].rpartition("_")
        return f"lgg-tcga {_LGG_PARTS.get(part, part)}, {_SEQUENCES.get(seq, seq)} (pointing game)"
    if key.startswith("btm_") and key.endswith("_pointing"):
        part, _, cls = key[len("btm_"):-len("_pointing")].rpartition("_")
        return f"brain-tumor-mri {_BTM_PARTS.get(part, part)}, {cls} (pointing game)"
    return key.replace("_", " ")


def source_rows(card: dict) -> list[dict]:
    """One row per source and sequence (held-out patients, the unseen institution) and per external set."""
    rows = []
    for part, cells in (card.get("scores_by_source") or {}).items():
        if part not in SOURCE_PARTS:
            continue
        for key, c in cells.items():
            source, _, seq = key.partition("/")
            rows.append({"Source": source, "Sequence": seq, "Images": c.get("n"), "Tumors": c.get("n_tumor"),
                         "Which images": SOURCE_PARTS[part], "Tumor ROC AUC": c.get("tumor_roc_auc"),
                         "Called tumor": c.get("called_tumor"), "Accuracy (4 classes)": c.get("accuracy"),
                         "Pointing game": None, "Sensitivity": c.get("sensitivity"),
                         "Specificity": c.get("specificity")})
    for key, e in (card.get("external") or {}).items():
        if key.startswith("brats_") and key.endswith("_upside_down"):
            source, seq, which = "brats2013-slices", key[len("brats_"):-len("_upside_down")], "external, upside down"
        elif key.startswith("brats_"):
            source, seq, which = "brats2013-slices", key[len("brats_"):], "external, never trained on"
        elif key.startswith("yes_no"):
            source, seq, which = "navoneel-yes-no", "mixed", "external, deduplicated"
        elif key.startswith("lgg_") and key.endswith("_pointing"):
            part, _, seq = key[len("lgg_"):-len("_pointing")].rpartition("_")
            match = [r for r in rows if r["Source"] == "lgg-tcga-slices" and r["Sequence"] == seq
                     and r["Which images"] == SOURCE_PARTS.get(part)]
            if match:
                match[0]["Pointing game"] = e.get("pointing_game_hit_rate")
            continue
        elif key.startswith("btm_") and key.endswith("_pointing"):
            part, _, cls = key[len("btm_"):-len("_pointing")].rpartition("_")
            source, seq, which = "brain-tumor-mri", "unknown", f"{_BTM_PARTS.get(part, part)}, {cls} slices"
        else:
            continue
        rows.append({"Source": source, "Sequence": seq, "Images": e.get("n"), "Tumors": None, "Which images": which,
                     "Tumor ROC AUC": e.get("tumor_roc_auc"), "Called tumor": None,
                     "Accuracy (4 classes)": None, "Pointing game": e.get("pointing_game_hit_rate"),
                     "Sensitivity": e.get("sensitivity"), "Specificity": e.get("specificity")})
    return rows
