"""Archive refusals name no server path (issue 23, round two): what writing a zip's entries to disk would trip
over (a name over 255 bytes, a name that is a file and a folder at once) is refused before anything is written, in
a sentence that names the entry, and an OS error while extracting names the entry, never the destination."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from brainscan.scans.archive import ArchiveError, declared_bytes, extract_zip


def _zip(names: list[str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name in names:
            zf.writestr(name, b"x")
    return buf.getvalue()


@pytest.mark.parametrize(("names", "words"), [
    (["yes/" + "a" * 300 + ".png", "no/b.png"], "longer than 255 bytes"),
    (["yes/é" + "b" * 200 + "é" * 30 + ".png", "no/b.png"], "longer than 255 bytes"),
    (["yes/x", "yes/x/y.png", "no/a.png"], "yes/x both as a file and as a folder"),
    (["yes/x/y.png", "yes/x", "no/a.png"], "yes/x both as a file and as a folder"),
])
def test_archive_refusals_name_no_server_path(tmp_path: Path, names: list[str], words: str) -> None:
    dest = tmp_path / "runs" / "uploads" / "owner" / "20250101-000000-up"
    with pytest.raises(ArchiveError) as err:
        extract_zip(_zip(names), dest)
    assert words in str(err.value) and str(tmp_path) not in str(err.value)
    assert not dest.exists(), "nothing written"


def test_an_os_error_while_extracting_names_the_entry_not_the_path(tmp_path: Path, monkeypatch) -> None:
    real_open = open

    def failing_open(path, mode="r", *args, **kwargs):
        if "xb" in mode:
            raise OSError(28, "No space left on device", str(path))
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr("builtins.open", failing_open)
    with pytest.raises(ArchiveError) as err:
        extract_zip(_zip(["yes/a.png", "no/b.png"]), tmp_path / "dest")
    assert "no space left on device" in str(err.value) and "yes/a.png" in str(err.value)
    assert str(tmp_path) not in str(err.value)


def test_declared_bytes() -> None:
    assert declared_bytes(_zip(["a/b.png", "a/c.png"])) == 2
    assert declared_bytes(b"not a zip") == 0
