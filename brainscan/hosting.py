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

A visitor is a browser, not a tab: visitor_id() turns the browser's Streamlit XSRF cookie (one random token per
browser, the same in all its tabs) into an id keyed by a secret of the runs folder; the limits count per visitor.
What a visitor sees never names a server path (hide_paths).
"""

from __future__ import annotations

import binascii
import contextlib
import hashlib
import hmac
import os
import re
import secrets as _secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from brainscan import config

HOSTED_ENV = "BRAINSCAN_HOSTED"
DATASETS_ENV = "BRAINSCAN_DATASETS"  # "name=path;name=path" (or os.pathsep-free plain paths)
OPERATOR_KEY = "BRAINSCAN_OPERATOR_KEY"
GRACE_ENV = "BRAINSCAN_VISITOR_GRACE_S"  # hosted: seconds without an open tab before a visitor's runs are ended
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
    visitor_grace_s: float | None = None  # a visitor with no open tab this long loses its waiting and running runs


@dataclass(frozen=True)
class Storage:
    """Uploads and runs: how large and how old they may get before the janitor removes them."""

    upload_mb: int = 50  # one zip (never above server.maxUploadSize; the page uses the smaller)
    unpacked_mb: int = 500
    unpacked_files: int = 20_000
    max_age_s: float | None = None  # uploads and finished runs older than this are removed
    max_total_mb: float | None = None  # runs/ (uploads included) is trimmed to this size (over-quota visitors first)
    visitor_mb: float | None = None  # one visitor's uploads and runs together (a new upload makes room or is refused)


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
                       wall_s=15 * 60, queue_per_owner=1, queue_total=8, visitor_grace_s=5 * 60)
HOSTED_STORAGE = Storage(upload_mb=50, unpacked_mb=300, unpacked_files=5000, max_age_s=6 * 3600,
                         max_total_mb=2048, visitor_mb=400)
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
    limits = HOSTED_LIMITS
    with contextlib.suppress(ValueError):  # BRAINSCAN_VISITOR_GRACE_S: a shorter or longer grace (at least 10 s)
        if env.get(GRACE_ENV, "").strip():
            limits = replace(limits, visitor_grace_s=max(10.0, float(env[GRACE_ENV])))
    return Settings(hosted=True, limits=limits, storage=HOSTED_STORAGE, datasets=declared_datasets(env),
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


XSRF_COOKIE = "_streamlit_xsrf"  # Streamlit's per-browser cookie (the same random token in every tab)
SECRET_FILE = ".visitor-secret"  # in the runs folder: visitor ids survive a restart of the server


def xsrf_token(cookie: str) -> bytes | None:
    """The random token inside Streamlit's XSRF cookie ("2|mask|masked token|time": the mask changes with every
    response, the token does not), or None when the value is not such a cookie."""
    value = (cookie or "").strip("\"' ")
    try:
        if value.startswith("2|"):
            _, mask_hex, masked_hex, _ = value.split("|")
            mask, masked = binascii.a2b_hex(mask_hex), binascii.a2b_hex(masked_hex)
            if len(mask) != 4:
                return None
            token = bytes(b ^ mask[i % 4] for i, b in enumerate(masked))
        else:
            token = binascii.a2b_hex(value)
    except (ValueError, binascii.Error):
        return None
    return token if len(token) >= 16 else None


def visitor_id(cookie: str, secret: bytes) -> str | None:
    """A browser's id from its XSRF cookie: an HMAC of the cookie's token under the server's secret (the token
    itself, which would let one act as that browser, is never stored). None without a usable cookie."""
    token = xsrf_token(cookie)
    if token is None or not secret:
        return None
    return hmac.new(secret, b"brainscan-visitor:" + token, hashlib.sha256).hexdigest()[:32]


def server_secret(runs_dir: str | os.PathLike) -> bytes:
    """32 random bytes kept in <runs>/.visitor-secret (created once, readable by the server's user only)."""
    path = Path(runs_dir) / SECRET_FILE
    with contextlib.suppress(OSError):
        data = path.read_bytes()
        if len(data) >= 32:
            return data[:32]
    path.parent.mkdir(parents=True, exist_ok=True)
    fresh = _secrets.token_bytes(32)
    tmp = path.with_name(f"{SECRET_FILE}.tmp-{os.getpid()}-{_secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(fresh)
    try:
        os.link(tmp, path)  # the first writer wins; a concurrent one reads the winner's secret
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_bytes()[:32]


# --- no server paths on screen --------------------------------------------------------------------

_ABS_PATH = re.compile(r"(?<![\w.:/~-])/(?:[^\s'\"`()\[\]{}<>,;:|*?]+)")


def hide_paths(text: str, known: Mapping[str | os.PathLike, str] | None = None) -> str:
    """text with no absolute server path left: each known folder (longest first) becomes its label, a path inside
    it label/relative path ('' as label: the relative path alone, and the folder itself "the run folder": for
    paths relative to a run); any other absolute path becomes its last part. For errors and log lines shown to
    visitors."""
    pairs = sorted(((str(Path(k)), v) for k, v in (known or {}).items() if str(k).startswith("/")),
                   key=lambda kv: -len(kv[0]))

    def one(match: re.Match) -> str:
        path = match.group(0).rstrip(".")
        tail = match.group(0)[len(path):]
        for folder, label in pairs:
            if path == folder or path == folder + "/":
                return (label or "the run folder") + tail
            if path.startswith(folder + "/"):
                rest = path[len(folder) + 1:]
                return (f"{label}/{rest}" if label else rest) + tail
        name = path.rstrip("/").rsplit("/", 1)[-1]
        return (name or "/") + tail

    return _ABS_PATH.sub(one, text)


def path_labels(run_dir: str | os.PathLike | None = None, data: str | os.PathLike | None = None,
                data_label: str = "the dataset", runs_dir: str | os.PathLike | None = None) -> dict[str, str]:
    """The folders a run's log and errors may name, with what a visitor sees instead (for hide_paths): paths in
    the run relative to it, the dataset by its label, the runs folder, the app's folder, Python's."""
    import site
    import sys

    labels: dict[str, str] = {}
    for prefix in {sys.prefix, sys.base_prefix, sys.exec_prefix}:
        labels[prefix] = "python"
    with contextlib.suppress(Exception):
        for folder in [*site.getsitepackages(), site.getusersitepackages()]:
            labels[folder] = "site-packages"
    labels[str(_REPO_ROOT)] = "app"
    for folder, label in ((runs_dir, "runs"), (data, data_label), (run_dir, "")):
        if folder:
            labels[str(folder)] = label
            with contextlib.suppress(OSError):
                labels[str(Path(folder).resolve())] = label
    return labels


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
