"""Hosted mode: what a public deployment allows, read by the run manager and the pages (no Streamlit here).

Two modes:

* **local** (the default on your own machine): one trusted user; any dataset folder may be typed, runs are
  shared, anyone may stop or promote them, limits are the page's widget ranges.
* **hosted** (the default on Streamlit Community Cloud): anonymous visitors. Datasets come from a declared
  list or the visitor's own zip, runs belong to the session that started them, promoting a model for everyone
  needs the operator key, runs and uploads have limits and are deleted after an age, and they share a
  first-come queue with at most one waiting run per visitor.

Switch with BRAINSCAN_HOSTED=1 or 0 (wins over detection). The operator key is BRAINSCAN_OPERATOR_KEY in the
environment or in .streamlit/secrets.toml (the page passes st.secrets); without one, promotion is off.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass, field
from pathlib import Path

from brainscan import config

HOSTED_ENV = "BRAINSCAN_HOSTED"
DATASETS_ENV = "BRAINSCAN_DATASETS"  # "name=path;name=path" (or os.pathsep-free plain paths)
OPERATOR_KEY = "BRAINSCAN_OPERATOR_KEY"
TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off"}
_REPO_ROOT = config.REPO_ROOT


def community_cloud(environ: dict[str, str] | None = None, repo_root: Path | None = None) -> bool:
    """Whether this looks like Streamlit Community Cloud.

    Its containers run the app from a clone under /mount/src/<repo> as user appuser (HOME /home/appuser) on a
    host named "streamlit"; any two of these three signs count (one alone could be a coincidence elsewhere).
    """
    env = os.environ if environ is None else environ
    root = str(repo_root or _REPO_ROOT)
    signs = [root.startswith("/mount/src/"), env.get("HOSTNAME") == "streamlit",
             env.get("HOME") == "/home/appuser" or env.get("USER") == "appuser"]
    return sum(signs) >= 2


def hosted(environ: dict[str, str] | None = None, repo_root: Path | None = None) -> bool:
    """BRAINSCAN_HOSTED=1/0 if set, else whether this is Community Cloud."""
    env = os.environ if environ is None else environ
    value = env.get(HOSTED_ENV, "").strip().lower()
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    return community_cloud(env, repo_root)


@dataclass(frozen=True)
class Limits:
    """What one run may ask for. None means no limit beyond the page's widgets."""

    architectures: tuple[str, ...] = ("compact", "efficientnetb0", "vgg19")
    img_sizes: tuple[int, ...] = (32, 64, 96, 128, 160, 224)
    max_epochs: int = 200
    max_images: int | None = None  # None: all; an int caps --max-images (0 is then not allowed)
    wall_s: float | None = None  # a run is stopped (keeping its best weights) after this many seconds
    queue_per_owner: int | None = None  # runs one visitor may have waiting or running
    queue_total: int | None = None  # waiting runs the server keeps


@dataclass(frozen=True)
class Storage:
    """Uploads and runs: how large and how old they may get before the janitor removes them."""

    upload_mb: int = 50  # one zip (never above server.maxUploadSize; the page uses the smaller)
    unpacked_mb: int = 500
    unpacked_files: int = 20_000
    max_age_s: float | None = None  # uploads and finished runs older than this are removed
    max_total_mb: float | None = None  # runs/ (uploads included) is trimmed, oldest first, to this size


@dataclass(frozen=True)
class Settings:
    hosted: bool
    limits: Limits = field(default_factory=Limits)
    storage: Storage = field(default_factory=Storage)
    datasets: dict[str, str] = field(default_factory=dict)  # name -> folder (hosted mode offers only these)
    typed_paths: bool = True  # the Train page accepts a typed server folder
    shared_runs: bool = True  # every session sees and may stop every run

    @property
    def mode(self) -> str:
        return "hosted" if self.hosted else "local"


HOSTED_LIMITS = Limits(architectures=("compact",), img_sizes=(32, 64, 96, 128), max_epochs=30, max_images=2000,
                       wall_s=15 * 60, queue_per_owner=1, queue_total=8)
HOSTED_STORAGE = Storage(upload_mb=50, unpacked_mb=300, unpacked_files=5000, max_age_s=6 * 3600,
                         max_total_mb=2048)
LOCAL_STORAGE = Storage()


def declared_datasets(environ: dict[str, str] | None = None) -> dict[str, str]:
    """BRAINSCAN_DATASETS as {name: path}: "name=path" items separated by ';' (a bare path is named after
    its folder). Relative paths start at the repository root. Folders that do not exist are left out."""
    env = os.environ if environ is None else environ
    out: dict[str, str] = {}
    for item in env.get(DATASETS_ENV, "").split(";"):
        item = item.strip()
        if not item:
            continue
        name, _, path = item.partition("=") if "=" in item else ("", "", item)
        p = Path(os.path.expanduser(path.strip()))
        p = p if p.is_absolute() else _REPO_ROOT / p
        if p.is_dir():
            out[(name.strip() or p.name)[:60]] = str(p.resolve())
    return out


def settings(environ: dict[str, str] | None = None, repo_root: Path | None = None) -> Settings:
    """The settings of this process (cheap: call it where needed rather than caching it)."""
    env = os.environ if environ is None else environ
    if not hosted(env, repo_root):
        return Settings(hosted=False, storage=LOCAL_STORAGE, datasets=declared_datasets(env))
    return Settings(hosted=True, limits=HOSTED_LIMITS, storage=HOSTED_STORAGE, datasets=declared_datasets(env),
                    typed_paths=False, shared_runs=False)


# --- limits ---------------------------------------------------------------------------------------

def check_config(cfg: dict, limits: Limits) -> list[str]:
    """Sentences naming every setting of a run config that the limits do not allow (empty: allowed)."""
    problems = []
    arch = cfg.get("arch", "compact")
    if arch not in limits.architectures:
        problems.append(f"Architecture {arch} is not available here; choose {', '.join(limits.architectures)}.")
    size = int(cfg.get("img_size") or 128)
    if size not in limits.img_sizes:
        problems.append(f"Image size {size} is not available here; choose one of "
                        f"{', '.join(map(str, limits.img_sizes))} pixels.")
    epochs = int(cfg.get("epochs") or 0)
    if not 1 <= epochs <= limits.max_epochs:
        problems.append(f"Epochs must be between 1 and {limits.max_epochs} here (asked: {epochs}).")
    if limits.max_images is not None:
        n = int(cfg.get("max_images") or 0)
        if not 1 <= n <= limits.max_images:
            problems.append(f"Training images must be between 1 and {limits.max_images:,} here (asked: "
                            f"{'all' if n == 0 else f'{n:,}'}).")
    if cfg.get("weights", "none") not in ("none", "imagenet"):
        problems.append("Starting weights must be 'none' or 'imagenet'.")
    if cfg.get("extra_train"):
        problems.append("Extra training folders are not available here.")
    if cfg.get("recipe"):
        problems.append("Recipes are not available here; choose one of the offered datasets or upload a zip.")
    return problems


# --- owners and the operator ----------------------------------------------------------------------

def owner_id(token: str) -> str:
    """What a run folder records about the session that started it: a hash, never the session's token."""
    return hashlib.sha256(("brainscan-owner:" + token).encode()).hexdigest()[:32]


def operator_key(secrets: object = None, environ: dict[str, str] | None = None) -> str:
    """The operator key from st.secrets (passed in) or the environment; '' when none is configured."""
    key = ""
    if secrets is not None:
        try:
            key = str(secrets.get(OPERATOR_KEY, "") or "")  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001 - no secrets.toml: Streamlit raises on access
            key = ""
    env = os.environ if environ is None else environ
    return key or env.get(OPERATOR_KEY, "")


def operator_ok(given: str, expected: str) -> bool:
    """Constant-time comparison; an empty expected key never matches (promotion off)."""
    return bool(expected) and len(expected) >= 8 and hmac.compare_digest(given.encode(), expected.encode())
