"""brainscan.hosting: mode detection, limits, declared datasets, operator key."""

from __future__ import annotations

from pathlib import Path

from brainscan import hosting

CLOUD = {"HOSTNAME": "streamlit", "HOME": "/home/appuser"}


def test_local_by_default_and_cloud_detected() -> None:
    assert not hosting.hosted({}, Path("/work/app"))
    assert hosting.hosted(CLOUD, Path("/work/app"))
    assert hosting.hosted({"HOME": "/home/appuser"}, Path("/mount/src/brainscan"))
    assert not hosting.hosted({"HOSTNAME": "streamlit"}, Path("/work/app")), "one sign alone is not enough"


def test_environment_switch_wins() -> None:
    assert not hosting.hosted({**CLOUD, "BRAINSCAN_HOSTED": "0"}, Path("/mount/src/x"))
    assert hosting.hosted({"BRAINSCAN_HOSTED": "1"}, Path("/work/app"))
    s = hosting.settings({"BRAINSCAN_HOSTED": "yes"})
    assert s.hosted and not s.typed_paths and not s.shared_runs and s.mode == "hosted"
    assert s.storage.max_age_s and s.storage.max_total_mb and s.limits.wall_s
    local = hosting.settings({"BRAINSCAN_HOSTED": "off"})
    assert not local.hosted and local.typed_paths and local.shared_runs and local.limits.wall_s is None


def test_limits_name_every_problem() -> None:
    lim = hosting.HOSTED_LIMITS
    ok = {"arch": "compact", "img_size": 64, "epochs": 20, "max_images": 600, "weights": "none"}
    assert hosting.check_config(ok, lim) == []
    bad = {"arch": "vgg19", "img_size": 224, "epochs": 200, "max_images": 0, "weights": "none"}
    problems = " ".join(hosting.check_config(bad, lim))
    for word in ("vgg19", "224", "200", "all"):
        assert word in problems
    assert hosting.check_config({**ok, "max_images": 100_000}, lim)
    assert hosting.check_config({**ok, "extra_train": "/etc"}, lim)
    assert "Recipes are not available here" in " ".join(hosting.check_config({**ok, "recipe": "recipes/v3.toml"}, lim))
    assert hosting.check_config(bad, hosting.Limits()) == [], "local mode: the page's ranges only"


def test_declared_datasets(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    env = {"BRAINSCAN_DATASETS": f"Yes/no set={tmp_path / 'a'}; {tmp_path / 'missing'} ;{tmp_path / 'a'}"}
    found = hosting.declared_datasets(env)
    assert found == {"Yes/no set": str((tmp_path / "a").resolve()), "a": str((tmp_path / "a").resolve())}


def test_operator_key() -> None:
    assert hosting.operator_key(None, {}) == ""
    assert not hosting.operator_ok("", ""), "no key configured: promotion is off"
    assert not hosting.operator_ok("short", "short"), "a key shorter than 8 characters is not accepted"
    key = hosting.operator_key({"BRAINSCAN_OPERATOR_KEY": "s3cret-key"}, {})
    assert hosting.operator_ok("s3cret-key", key) and not hosting.operator_ok("s3cret-kez", key)
    assert hosting.operator_key(None, {"BRAINSCAN_OPERATOR_KEY": "from-env-1"}) == "from-env-1"

    class Raising:
        def get(self, *_):
            raise FileNotFoundError("no secrets.toml")

    assert hosting.operator_key(Raising(), {}) == ""


def test_owner_id_is_not_the_token() -> None:
    a, b = hosting.owner_id("token-a"), hosting.owner_id("token-b")
    assert a != b and "token" not in a and len(a) == 32
