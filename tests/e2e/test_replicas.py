"""Two replicas behind haproxy, as deploy/compose.yaml runs them, on loopback and without Docker.

Two `streamlit run` processes (hosted mode, Train page off, the shipped model, as in compose.yaml) and Debian's
haproxy with deploy/haproxy.cfg itself (only the `bind` and `server` addresses replaced, tests/haproxy_config.py).
Browsers with no cookies come in one after another and keep their sessions open; each uploads a scan through the
proxy and must get the model's answer. Then:

* the cookie haproxy set (SERVERID) and the X-BrainScan-Replica header of the page name the same replica;
* both replicas got sessions: each one's own /_stcore/metrics counts the websocket sessions it served;
* haproxy's log shows every request that carried a SERVERID cookie going to that replica: the websocket
  (/_stcore/stream, upgraded: 101) and the upload (PUT /_stcore/upload_file/...) of each session;
* /train through the proxy says, in one sentence, that training is off; no replica logs a traceback.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from haproxy_config import render_haproxy

from brainscan.app.deployment import OFF_SENTENCE
from brainscan.appserver import free_port, start_server, stop_server, wait_healthy

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
PREDICTION = "The model's answer: "
SCAN = ROOT / "sample_images" / "lgg_glioma_flair.png"
REPLICAS = ("app1", "app2")
ENV = {"BRAINSCAN_MODEL": "", "BRAINSCAN_MODELS_DIR": str(ROOT / "models"), "BRAINSCAN_HOSTED": "1",
       "BRAINSCAN_TRAIN_PAGE": "off"}  # as compose.yaml sets them; the models folder holds the shipped default/
# httplog: ... backend/server timers status bytes request-cookie response-cookie flags ... "METHOD PATH HTTP/x"
LOG_LINE = re.compile(r'\s(?P<backend>[\w.-]+)/(?P<server>[<>\w.-]+)\s+\S+\s+(?P<status>-?\d+)\s+\d+\s+'
                      r'(?P<cookie>\S+)\s+\S+\s+\S{4}\s.*"(?P<method>[A-Z]+) (?P<path>\S+)')


@pytest.fixture(scope="module")
def haproxy() -> str:
    path = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not Path(path).is_file():
        if os.environ.get("CI"):
            pytest.fail("haproxy is missing; scripts/test.sh installs Debian's haproxy package.")
        pytest.skip("haproxy is missing (install Debian's haproxy package, as scripts/test.sh does).")
    return path


@pytest.fixture(scope="module")
def cluster(haproxy, tmp_path_factory):
    """{"proxy": url, "replicas": {name: url}, "proxy_log": Path, "logs": {name: Path}}"""
    folder = tmp_path_factory.mktemp("replicas")
    servers, logs = {}, {}
    try:
        for name in REPLICAS:
            logs[name] = folder / f"{name}.log"
            servers[name] = start_server(ENV, log_path=logs[name])
        for proc, url, _ in servers.values():
            wait_healthy(url, proc, timeout=120)
        port = free_port()
        cfg = folder / "haproxy.cfg"
        cfg.write_text(render_haproxy({n: url.removeprefix("http://") for n, (_, url, _) in servers.items()},
                                      bind=f"127.0.0.1:{port}"))
        proxy_log = folder / "haproxy.log"
        with open(proxy_log, "w") as out:
            proxy = subprocess.Popen([haproxy, "-db", "-f", str(cfg)], stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        try:
            wait_healthy(f"http://127.0.0.1:{port}", proxy, timeout=30)
            yield {"proxy": f"http://127.0.0.1:{port}", "replicas": {n: s[1] for n, s in servers.items()},
                   "proxy_log": proxy_log, "logs": logs}
        finally:
            proxy.send_signal(signal.SIGTERM)
            proxy.wait(timeout=20)
    finally:
        for proc, _, log in servers.values():
            stop_server(proc, log)
    for name, path in logs.items():
        text = path.read_text(errors="replace")
        assert "Traceback" not in text, (name, text[-3000:])


def wait_idle(page) -> None:
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', state="attached")


def sessions_served(url: str) -> int:
    """The replica's own count of websocket sessions that connected (Streamlit's /_stcore/metrics)."""
    with urllib.request.urlopen(f"{url}/_stcore/metrics", timeout=10) as resp:
        text = resp.read().decode()
    return int(float(re.search(r'^session_events_total\{type="connect"\} (\S+)$', text, re.M).group(1)))


def proxy_requests(log: Path) -> list[dict[str, str]]:
    return [m.groupdict() for m in map(LOG_LINE.search, log.read_text(errors="replace").splitlines()) if m]


def test_sessions_stick_to_one_replica_and_both_replicas_serve(cluster, browser):
    contexts, landed = [], []
    try:
        for _ in range(4):  # a new browser goes to the replica with fewer connections: the second one, normally
            context = browser.new_context(viewport={"width": 1366, "height": 900})
            contexts.append(context)
            page = context.new_page()
            page.set_default_timeout(120_000)
            response = page.goto(f"{cluster['proxy']}/scan")
            page.get_by_role("heading", name="Scan check", exact=True).wait_for()
            wait_idle(page)
            replica = response.headers.get("x-brainscan-replica")
            cookies = {c["name"]: c["value"] for c in context.cookies()}
            assert replica in REPLICAS and cookies.get("SERVERID") == replica, (replica, cookies)

            page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(SCAN))
            answer = page.get_by_text(PREDICTION).first
            answer.wait_for()
            wait_idle(page)
            assert answer.inner_text().startswith(PREDICTION)
            assert page.locator('[data-testid="stException"]').count() == 0
            landed.append(replica)
            if set(landed) == set(REPLICAS):
                break
        assert set(landed) == set(REPLICAS), landed

        # Each replica's own record: one websocket session per browser that landed there, none split.
        for name, url in cluster["replicas"].items():
            assert sessions_served(url) == landed.count(name), (name, landed)
    finally:
        for context in contexts:
            context.close()  # closes the websockets: haproxy logs a tunnel when it ends

    deadline = time.monotonic() + 15
    while True:
        requests = proxy_requests(cluster["proxy_log"])
        streams = {r["server"] for r in requests if r["path"].startswith("/_stcore/stream") and r["status"] == "101"}
        if streams >= set(landed) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert requests, cluster["proxy_log"].read_text()[-3000:]
    sticky = [r for r in requests if r["cookie"].startswith("SERVERID=")]
    assert sticky and all(r["cookie"] == f"SERVERID={r['server']}" for r in sticky), sticky
    for name in set(landed):
        mine = [r for r in sticky if r["server"] == name]
        assert any(r["path"].startswith("/_stcore/stream") and r["status"] == "101" for r in mine), (name, mine)
        assert any(r["method"] == "PUT" and r["path"].startswith("/_stcore/upload_file/") and r["status"] == "204"
                   for r in mine), (name, mine)


def test_train_page_is_off_behind_the_proxy(cluster, browser):
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    try:
        page = context.new_page()
        page.set_default_timeout(120_000)
        page.goto(f"{cluster['proxy']}/train")
        page.get_by_text(OFF_SENTENCE).wait_for()
        wait_idle(page)
        assert page.locator('[data-testid="stTopNavLink"]', has_text="Train a model").count() == 0
        assert page.locator('[data-testid="stTopNavLink"]', has_text="Scan check").count() == 1
    finally:
        context.close()
