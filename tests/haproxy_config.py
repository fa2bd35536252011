"""deploy/haproxy.cfg with other addresses: the one configuration the compose file ships, run by the tests on
loopback (only the `bind` address and the `server` lines' addresses change)."""

from __future__ import annotations

import re
from pathlib import Path

CONFIG = Path(__file__).resolve().parent.parent / "deploy" / "haproxy.cfg"
SERVER = re.compile(r"^(\s*server\s+)(\S+)(\s+)(\S+)(.*)$")
BIND = re.compile(r"^(\s*bind\s+)(\S+)(.*)$")


def render_haproxy(servers: dict[str, str], bind: str, text: str | None = None) -> str:
    """The shipped configuration with each `server NAME ADDRESS` line given servers[NAME] and `bind` given bind.
    Every server line must be named in servers and every name must have a line."""
    out, seen = [], set()
    for line in (CONFIG.read_text() if text is None else text).splitlines():
        if m := SERVER.match(line):
            name = m.group(2)
            if name not in servers:
                raise KeyError(f"no address given for server {name}")
            seen.add(name)
            line = f"{m.group(1)}{name}{m.group(3)}{servers[name]}{m.group(5)}"
        elif m := BIND.match(line):
            line = f"{m.group(1)}{bind}{m.group(3)}"
        out.append(line)
    if seen != set(servers):
        raise KeyError(f"servers not in the configuration: {sorted(set(servers) - seen)}")
    return "\n".join(out) + "\n"
