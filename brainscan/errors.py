"""Every refusal brainscan raises derives from BrainScanError; its message is one sentence for a user.

A leaf: no imports. The command line catches BrainScanError once (brainscan.cli.main), and so do the
pages (each catches it where it acts, e.g. pages/train.py). Each subclass also keeps the built-in base it always had.
"""


class BrainScanError(Exception):
    """Something brainscan refuses to do; ``str(err)`` says why (and what to do) in one sentence."""


class ModelError(BrainScanError, RuntimeError):
    """A model that cannot be found, loaded or built; the message says what to do."""


class ScanError(BrainScanError, ValueError):
    """Input that cannot be used; ``str(err)`` is one clear sentence for a user."""


class MultiVolumeError(ScanError):
    """A 4-D file (DWI, fMRI, ...) when no volume was chosen: ``count`` volumes, numbered from 0."""

    def __init__(self, message: str, count: int):
        super().__init__(message)
        self.count = count


class DatasetError(BrainScanError, ValueError):
    """A folder that is not a usable dataset; the message says why in one sentence."""


class RecipeError(DatasetError):
    """A training recipe that cannot be used; the message names the source and what to fix."""


class ArchiveError(BrainScanError, ValueError):
    """A zip that is refused or unreadable; the message says why in one sentence."""


class RunError(BrainScanError, ValueError):
    """A run that cannot be started, stopped or promoted; the message says why in one sentence."""


class RunBusyError(RunError):
    """Another training run is still in progress."""
