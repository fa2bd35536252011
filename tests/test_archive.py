"""brainscan.scans.archive.extract_zip: safe extraction of uploaded dataset zips."""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path

import pytest

from brainscan.scans.archive import ArchiveError, extract_zip


def make_zip(entries: dict[str, bytes], *, compression: int = zipfile.ZIP_DEFLATED,
             modes: dict[str, int] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, payload in entries.items():
            info = zipfile.ZipInfo(name)
            info.compress_type = compression
            if modes and name in modes:
                info.external_attr = modes[name] << 16
            zf.writestr(info, payload)
    return buf.getvalue()


def test_valid_zip_with_single_top_folder(tmp_path: Path) -> None:
    data = make_zip({"brain/yes/a.png": b"x" * 10, "brain/no/b.png": b"y" * 10, "__MACOSX/brain/._a.png": b"junk",
                     "brain/.DS_Store": b"junk"})
    root = extract_zip(data, tmp_path / "out")
    assert root == tmp_path / "out" / "brain"
    assert (root / "yes" / "a.png").read_bytes() == b"x" * 10
    assert sorted(p.name for p in root.iterdir()) == ["no", "yes"]
    assert not (tmp_path / "out" / "__MACOSX").exists()


def test_class_folders_at_top_level_stay_root(tmp_path: Path) -> None:
    root = extract_zip(make_zip({"yes/a.png": b"1", "no/b.png": b"2"}), tmp_path / "out")
    assert root == tmp_path / "out"


def test_extracted_dataset_is_discoverable(tmp_path: Path) -> None:
    from brainscan.scans.datasets import discover
    from brainscan.scans.synthetic import write_dataset

    src = write_dataset(tmp_path / "src" / "phantoms", per_class=3, size=32)
    entries = {str(p.relative_to(src.parent)): p.read_bytes() for p in sorted(src.rglob("*.png"))}
    root = extract_zip(make_zip(entries), tmp_path / "out")
    assert discover(root).counts() == {"notumor": 3, "tumor": 3}


@pytest.mark.parametrize("name", ["../evil.png", "data/../../evil.png", "data\\..\\..\\evil.png"])
def test_path_traversal_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ArchiveError, match="leaves its folder"):
        extract_zip(make_zip({"data/ok.png": b"1", name: b"2"}), tmp_path / "out")
    assert not (tmp_path / "evil.png").exists()
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", ["/etc/evil.png", "C:/evil.png"])
def test_absolute_path_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ArchiveError, match="absolute path"):
        extract_zip(make_zip({name: b"2"}), tmp_path / "out")


def test_symlink_refused(tmp_path: Path) -> None:
    data = make_zip({"data/yes/link.png": b"/etc/passwd", "data/no/a.png": b"1"},
                    modes={"data/yes/link.png": stat.S_IFLNK | 0o777})
    with pytest.raises(ArchiveError, match="symbolic link"):
        extract_zip(data, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_zip_bomb_ratio_refused(tmp_path: Path) -> None:
    data = make_zip({"data/yes/bomb.png": b"\0" * (4 * 1024 * 1024)})
    assert len(data) < 50_000
    with pytest.raises(ArchiveError, match="inflate"):
        extract_zip(data, tmp_path / "out")


def test_declared_total_size_refused(tmp_path: Path) -> None:
    data = make_zip({"a/1.png": b"1" * 3000, "a/2.png": b"2" * 3000}, compression=zipfile.ZIP_STORED)
    with pytest.raises(ArchiveError, match="at most"):
        extract_zip(data, tmp_path / "out", max_total_bytes=5000)


def test_lying_header_counted_while_extracting(tmp_path: Path) -> None:
    """An entry that inflates beyond its declared size is caught by counting the bytes written."""
    data = bytearray(make_zip({"a/x.png": b"A" * 5000}, compression=zipfile.ZIP_STORED))
    # Patch the declared uncompressed size in the central directory down to 100 bytes.
    cd = data.rfind(b"PK\x01\x02")
    data[cd + 24: cd + 28] = (100).to_bytes(4, "little")
    with pytest.raises(ArchiveError):
        extract_zip(bytes(data), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_too_many_files_refused(tmp_path: Path) -> None:
    data = make_zip({f"data/yes/{i}.png": b"1" for i in range(30)})
    with pytest.raises(ArchiveError, match="30 files; at most 20"):
        extract_zip(data, tmp_path / "out", max_files=20)


def test_not_a_zip_and_empty_zip(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="not a readable zip"):
        extract_zip(b"hello, not a zip", tmp_path / "out")
    with pytest.raises(ArchiveError, match="no files"):
        extract_zip(make_zip({}), tmp_path / "out")


def test_existing_destination_is_cleaned_on_refusal(tmp_path: Path) -> None:
    dest = tmp_path / "existing"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")
    data = bytearray(make_zip({"a/ok.png": b"1", "a/x.png": b"A" * 5000}, compression=zipfile.ZIP_STORED))
    cd = data.rfind(b"PK\x01\x02")  # the last central record is a/x.png
    data[cd + 24: cd + 28] = (100).to_bytes(4, "little")
    with pytest.raises(ArchiveError):
        extract_zip(bytes(data), dest)
    assert sorted(p.name for p in dest.rglob("*") if p.is_file()) == ["keep.txt"]


def test_many_small_zero_entries_cannot_add_up_to_a_bomb(tmp_path):
    """The issue's case: entries of 64 KB or less skipped the ratio check, so 1.5 MB of zip wrote 500 MB."""
    import io
    import zipfile

    from brainscan.scans.archive import ArchiveError, extract_zip

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(300):
            zf.writestr(f"yes/{i}.png", b"\0" * 64 * 1024)
    data = buf.getvalue()
    assert len(data) < 1024 * 1024
    with pytest.raises(ArchiveError, match="inflate"):
        extract_zip(data, tmp_path / "out")
    assert not (tmp_path / "out").exists()
