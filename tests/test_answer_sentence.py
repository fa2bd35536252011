"""The scan page's answer follows the model's decision (its operating threshold), not only the top class."""

from brainscan.app.ui import answer_sentence

P = {"glioma": 0.3, "meningioma": 0.1, "notumor": 0.5, "pituitary": 0.1}


def test_top_class_when_no_decision_is_given():
    assert answer_sentence(P) == "The model thinks this scan most likely shows no tumor (50%)."


def test_a_tumor_called_at_the_threshold_says_why():
    s = answer_sentence(P, "glioma", 0.45)
    assert s.startswith("The model thinks this scan most likely shows a glioma (30%)")
    assert "any tumor 50%, at or above its threshold of 45%" in s


def test_no_tumor_below_the_threshold_says_why():
    p = {"glioma": 0.5, "meningioma": 0.0, "notumor": 0.46, "pituitary": 0.04}
    assert answer_sentence(p, "notumor", 0.6).endswith("no tumor (46%): any tumor 54%, below its threshold of 60%.")
