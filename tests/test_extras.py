"""The install split: the core curates and publishes without torch; a missing extra is named.

CI runs this file (with the curation, card and hub tests) in a virtual environment that has only the
core installed (`pip install .`, no torch), and the full suite runs it again with everything present:
there the curate/publish test still proves those commands import no heavy module.
"""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import metadata

import curation_helpers as helpers  # (tests/ is on pytest's pythonpath)
import pytest
from hub_server import HubServer

from sgpo_curate._extras import EXTRAS, MissingExtraError, requires
from sgpo_curate.registry import SAMPLERS, VERIFIERS

HEAVY = ("torch", "transformers", "trl", "accelerate", "vllm", "ray", "math_verify", "tokenizers")

# Runs the two commands in a fresh interpreter, then lists the heavy modules they imported.
CORE_COMMANDS = """
import sys
from sgpo_curate.cli import main

profile_dir, out, repo = sys.argv[1:4]
assert main(["curate", profile_dir, "--out", out]) == 0
assert main(["publish", out, "--repo", repo]) == 0
print("HEAVY", sorted(m for m in {heavy!r} if m in sys.modules))
"""


def hub_env(hub: HubServer, tmp_path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(
        HF_ENDPOINT=hub.url,
        HF_TOKEN="dummy",
        HF_HUB_DISABLE_XET="1",
        HF_HOME=str(tmp_path / "hf-home"),
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_DISABLE_UPDATE_CHECK="1",
        HF_HUB_DISABLE_PROGRESS_BARS="1",
    )
    return env


def test_curate_and_publish_import_no_extra(tmp_path):
    profile_dir = helpers.write_profile_dir(tmp_path / "profiles", helpers.make_pool())
    with HubServer() as hub:
        proc = subprocess.run(
            [sys.executable, "-c", CORE_COMMANDS.format(heavy=HEAVY), str(profile_dir), str(tmp_path / "out")]
            + ["org/core-only"],
            env=hub_env(hub, tmp_path),
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert proc.stdout.strip().splitlines()[-1] == "HEAVY []"
        published = hub.files("org/core-only")
    assert "data/tiny-llama/train-00000-of-00001.parquet" in published
    assert b"pass_rate" in published["README.md"]


def test_every_extra_named_in_errors_is_declared_by_the_package():
    declared = set(metadata.metadata("sgpo-curate").get_all("Provides-Extra") or [])
    assert set(EXTRAS) <= declared, (
        f"extras named in sgpo_curate/_extras.py but not in pyproject: {set(EXTRAS) - declared}"
    )
    assert {"all", "dev"} <= declared


def test_trainer_without_trl_names_the_train_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "trl", None)  # None in sys.modules: the import fails as if absent
    monkeypatch.delitem(sys.modules, "sgpo_curate.trainer", raising=False)
    with pytest.raises(MissingExtraError, match=r"pip install 'sgpo-curate\[train\]'"):
        import sgpo_curate.trainer  # noqa: F401


def test_sampler_and_verifier_without_their_modules_name_the_profile_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)
    monkeypatch.setitem(sys.modules, "math_verify", None)
    with pytest.raises(MissingExtraError, match=r"is not installed.*sgpo-curate\[profile\]"):
        SAMPLERS.get("transformers")("any-model")
    with pytest.raises(MissingExtraError, match=r"'math_verify' is not installed.*sgpo-curate\[profile\]"):
        VERIFIERS.get("math")()


def test_vllm_sampler_without_vllm_names_the_vllm_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'sgpo-curate\[vllm\]'"):
        SAMPLERS.get("vllm")("any-model")


def test_requires_translates_only_an_absent_module():
    with pytest.raises(ImportError) as caught, requires("profile"):
        raise ImportError("cannot import name 'X' from 'torch'")  # installed but broken: left as is
    assert not isinstance(caught.value, MissingExtraError)
    with pytest.raises(MissingExtraError) as caught, requires("ray"):
        import sgpo_no_such_module  # noqa: F401
    assert caught.value.name == "sgpo_no_such_module"
    assert isinstance(caught.value.__cause__, ModuleNotFoundError)
    with pytest.raises(ValueError, match="unknown extra 'gpu'; extras: profile, train, vllm, ray"):
        with requires("gpu"):
            pass
