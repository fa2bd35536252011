"""Dataset discovery, near-duplicate grouping and a dataset folder's leakage-free split."""

import numpy as np
import pytest

from brainscan.scans import datasets as data
from brainscan.scans import near_duplicates as nd
from brainscan.scans import split as splits
from brainscan.scans.manifest import Item


def _touch(root, *parts):
    p = root.joinpath(*parts)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(b"")
    return p


def test_discover_layouts_and_synonyms(tmp_path):
    for split in ("Training", "Testing"):
        for cls in ("Glioma", "no_tumor", "Pituitary", "meningioma"):
            _touch(tmp_path, split, cls, "a.jpg")
    _touch(tmp_path, "Training", "glioma", "notes.txt")
    ds = data.discover(tmp_path)
    assert ds.classes == ("glioma", "meningioma", "notumor", "pituitary")
    assert {it.official_split for it in ds.items} == {"train", "test"} and len(ds.items) == 8

    yn = tmp_path / "yn"
    _touch(yn, "YES", "Y1.JPG")
    _touch(yn, "no", "n1.png")
    ds = data.discover(yn)
    assert ds.is_binary and ds.counts() == {"notumor": 1, "tumor": 1}


@pytest.mark.parametrize("layout", [[], [("only", "x.png")], [("no", "a.png")]])
def test_discover_refuses_unusable_folders(tmp_path, layout):
    for parts in layout:
        _touch(tmp_path, *parts)
    with pytest.raises(data.DatasetError):
        data.discover(tmp_path)


def test_near_duplicate_groups_by_hamming_distance():
    h = np.array([0b0, 0b111, 0xFFFF_0000_0000_0000, 0xFFFF_0000_0000_0001], dtype=np.uint64)
    g = nd.near_duplicate_groups(h, max_bits=3)
    assert g[0] == g[1] and g[2] == g[3] and g[0] != g[2]
    g = nd.near_duplicate_groups(h, max_bits=2)
    assert len(set(g.tolist())) == 3


def test_grouped_split_keeps_groups_together_and_stratifies():
    labels = ["a"] * 50 + ["b"] * 50
    groups = np.repeat(np.arange(20), 5)  # 10 groups of 5 per class
    parts = splits.deal_by_class(labels, groups, (0.6, 0.2, 0.2), seed=1)
    assert sorted(np.concatenate(parts).tolist()) == list(range(100))
    for i, p in enumerate(parts):
        for q in parts[i + 1:]:
            assert not set(groups[p]) & set(groups[q])
    assert [len(p) for p in parts] == [60, 20, 20]
    assert sum(labels[i] == "a" for i in parts[1]) == 10  # 2 of the 10 "a" groups


def test_folder_split_excludes_official_test_images_duplicated_in_training():
    hashes = np.array([1 << i for i in range(12)], dtype=np.uint64)
    hashes[8] = hashes[0]  # test image 8 is a copy of training image 0
    groups = nd.near_duplicate_groups(hashes, max_bits=0)
    items = [Item(f"{i}.png", "notumor" if i % 2 else "glioma", "x", "unknown", f"x:{i}.png", official_test=i >= 8,
                  duplicate_group=int(groups[i])) for i in range(12)]
    plan = splits.folder_split(items)
    assert plan.summary["official_test_with_near_duplicate_in_training"] == 1
    assert 8 not in plan.test and set(plan.test) == {9, 10, 11}
    assert set(plan.train) | set(plan.val) == set(range(8))


def test_perceptual_hash_finds_resized_copy(tmp_path):
    import cv2

    from brainscan.scans.synthetic import phantom

    a, _ = phantom(128, lesion=True, seed=3)
    b, _ = phantom(128, lesion=False, seed=9)
    cv2.imwrite(str(tmp_path / "a.png"), (a * 255).astype(np.uint8))
    cv2.imwrite(str(tmp_path / "a_small.jpg"), cv2.resize((a * 255).astype(np.uint8), (100, 100)))
    cv2.imwrite(str(tmp_path / "b.png"), (np.rot90(b) * 255).astype(np.uint8))
    h = nd.hash_all([str(tmp_path / n) for n in ("a.png", "a_small.jpg", "b.png")])
    d = np.bitwise_count(h[:, None] ^ h[None, :])
    assert d[0, 1] <= nd.NEAR_DUPLICATE_BITS < d[0, 2]
