"""One root for every refusal, so that the CLI and the pages catch BrainScanError once."""

import pytest

from brainscan import errors, runs
from brainscan.errors import BrainScanError
from brainscan.scans import archive, datasets, io


@pytest.mark.parametrize("cls", [errors.ModelError, io.ScanError, datasets.DatasetError, archive.ArchiveError,
                                 runs.RunError, runs.RunBusyError])
def test_every_refusal_derives_from_brainscan_error(cls):
    assert issubclass(cls, BrainScanError)


def test_refusals_keep_their_builtin_bases():  # callers that caught ValueError / RuntimeError still do
    assert issubclass(io.ScanError, ValueError) and issubclass(errors.ModelError, RuntimeError)
    assert issubclass(datasets.DatasetError, ValueError) and issubclass(runs.RunError, ValueError)


def test_every_error_class_in_brainscan_derives_from_the_root():
    """No sixth unrelated root: any Exception subclass defined in brainscan/ must be a BrainScanError."""
    import ast
    from pathlib import Path

    root = Path(errors.__file__).parent
    names = {name for name, obj in vars(errors).items() if isinstance(obj, type) and issubclass(obj, BaseException)}
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and node.name.endswith("Error"):
                assert node.name in names, f"{path.name} defines {node.name} outside brainscan.errors"
