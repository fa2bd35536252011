"""Words that outlive the code: every dotted brainscan path in the repository's code, docs and model cards names
a module (and a name in it) that exists, and the CLI's docstring lists every command."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOTTED = re.compile(r"\bbrainscan(?:\.[A-Za-z_][A-Za-z0-9_]*)+")


def modules() -> dict[str, Path]:
    out = {}
    for f in (ROOT / "brainscan").rglob("*.py"):
        parts = list(f.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


def stale_paths(text: str, known: dict[str, Path]) -> list[str]:
    bad = []
    for dotted in sorted(set(DOTTED.findall(text))):
        parts = dotted.split(".")
        k = next((k for k in range(len(parts), 0, -1) if ".".join(parts[:k]) in known), 0)
        module = ".".join(parts[:k])
        if module == "brainscan" and len(parts) > 1 and parts[1] not in ("__file__", "__version__"):
            bad.append(dotted)  # brainscan.<something that is no module of the package>
        elif k < len(parts) and module != "brainscan":
            if not re.search(rf"\b{re.escape(parts[k])}\b", known[module].read_text()):
                bad.append(dotted)
    return bad


def test_the_checker_finds_a_stale_path():
    known = modules()
    gone, missing = "brainscan" + ".preprocess.prepare", "brainscan" + ".scans.nothing_here"  # not found by the scan
    assert stale_paths(f"see {gone} and {missing}", known) == [gone, missing]
    assert stale_paths("brainscan.scans.preprocess.prepare, brainscan.cli", known) == []


def test_no_dotted_path_names_a_module_that_is_gone():
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    known = modules()
    bad = {}
    for name in files:
        path = ROOT / name
        if path.suffix in (".py", ".md", ".json", ".toml", ".sh", ".txt") and path.is_file():
            found = stale_paths(path.read_text(errors="replace"), known)
            if found:
                bad[name] = found
    assert not bad


def test_cli_docstring_lists_every_command():
    from brainscan import cli

    parser = cli.build_parser()
    commands = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction").choices
    head = cli.__doc__.split("...")[0]
    assert [c for c in commands if c not in head] == []
