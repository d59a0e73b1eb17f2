"""The Ray engine on a local cluster (`ray.init(num_cpus=2)`, once for the module) with real parts: the
tiny model, real GSM8K rows, real math-verify. What it must keep: the local engine's profiles, exactly
one profile per query after a crash or a killed worker, and no Ray anywhere near the local engine."""

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from sgpo_curate.cli import main
from sgpo_curate.config import ProfileConfig, SamplingConfig
from sgpo_curate.profiling import load_run_info, profile
from sgpo_curate.profiling_ray import RayEngine
from sgpo_curate.samplers import SamplerSpec, get_sampler
from sgpo_curate.sources import load_queries
from sgpo_curate.verifiers.math import MathVerifier

ray = pytest.importorskip("ray")

SAMPLING = SamplingConfig(k=3, max_new_tokens=12, batch_queries=2, seed=1)
TESTS = Path(__file__).parent
SHARD = "shard-00000-of-00001"


@pytest.fixture(scope="module", autouse=True)
def local_cluster():
    """One local Ray instance for the module; its workers can import tests/ (for `ray_helpers`)."""
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=256 * 2**20,
        runtime_env={"env_vars": {"PYTHONPATH": str(TESTS), "OMP_NUM_THREADS": "1"}},
    )
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def queries():
    return load_queries("gsm8k", limit=7)[0]


@pytest.fixture(scope="module")
def verifier():
    verifier = MathVerifier(workers=1)
    yield verifier
    verifier.close()


def rows(out_dir):
    return pq.read_table(Path(out_dir) / "profiles.parquet").to_pylist()


def run(queries, sampler, verifier, out_dir, engine="local"):
    return profile(
        queries,
        sampler,
        verifier,
        ProfileConfig(out_dir=str(out_dir), progress=False),
        SAMPLING,
        source="gsm8k",
        engine=engine,
    )


def cli_args(model: str, out: Path, *extra: str) -> list[str]:
    args = [
        "profile",
        "--model",
        model,
        "--dataset",
        "gsm8k",
        "--limit",
        "7",
        "--k",
        "3",
        "--sampling-seed",
        "1",
    ]
    return [
        *args,
        "--max-new-tokens",
        "12",
        "--batch-queries",
        "2",
        "--no-progress",
        "--out",
        str(out),
        *extra,
    ]


@pytest.fixture(scope="module")
def local_run(tiny_model_dir, tmp_path_factory) -> Path:
    """The reference: the local engine on the same queries (`SAMPLING`), model, seed and settings."""
    out = tmp_path_factory.mktemp("local")
    assert main(cli_args(tiny_model_dir, out, "--engine", "local", "--verifier-workers", "1")) == 0
    return out


def test_ray_gives_exactly_the_local_profiles(local_run, tiny_model_dir, tmp_path, capsys):
    """`sgpo-curate profile --engine ray` on the local cluster: the same parquet rows, run.json and summary."""
    capsys.readouterr()
    assert main(cli_args(tiny_model_dir, tmp_path, "--engine", "ray")) == 0
    assert rows(tmp_path) == rows(local_run)
    assert undated(load_run_info(tmp_path)) == undated(load_run_info(local_run))
    summary = capsys.readouterr().out.splitlines()
    assert summary[0] == "profiled 7 queries (0 from earlier runs), 21 samples"
    assert "estimated FLOPs" in summary[1]


def undated(info: dict) -> dict:
    return {key: value for key, value in info.items() if key != "date"}


def test_ray_resumes_a_crashed_run_and_writes_each_query_once(
    queries, verifier, local_run, tiny_model_dir, tmp_path
):
    """What a crash leaves (finished parts, one in the middle missing, no merge) is resumed by Ray."""
    shutil.copytree(local_run, tmp_path, dirs_exist_ok=True)
    for name in (f"{SHARD}/part-000001.parquet", f"{SHARD}/DONE.json", "profiles.parquet"):
        (tmp_path / name).unlink()
    summary = run(queries, SamplerSpec("transformers", tiny_model_dir), verifier, tmp_path, engine="ray")
    assert summary.resumed_queries == 5 and summary.queries == 7
    resumed = rows(tmp_path)
    assert len({r["id"] for r in resumed}) == len(resumed) == 7
    assert resumed == rows(local_run)


def test_a_worker_killed_mid_chunk_is_restarted_and_its_chunk_retried(
    queries, verifier, local_run, tiny_model_dir, tmp_path
):
    """SIGKILL the sampler actor's process while it holds a chunk: Ray restarts it, retries the chunk,
    and the run ends with the local profiles, one per query."""
    pid_file = tmp_path / "stalled.pid"
    spec = SamplerSpec(
        "ray_helpers:StallingSampler",
        tiny_model_dir,
        {"pid_file": str(pid_file), "stall_on": queries[4].id},
    )
    killed: list[int] = []
    killer = threading.Thread(target=kill_when_stalled, args=(pid_file, killed), daemon=True)
    killer.start()
    summary = run(
        queries, spec, verifier, tmp_path / "out", engine=RayEngine(max_restarts=1, max_task_retries=1)
    )
    killer.join(timeout=5)
    assert len(killed) == 1 and killed[0] != os.getpid(), "the worker should have been killed mid-chunk"
    assert summary.queries == 7
    assert rows(tmp_path / "out") == rows(local_run)


def kill_when_stalled(pid_file: Path, killed: list[int]) -> None:
    deadline = time.monotonic() + 120
    while not pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    if pid_file.exists():
        pid = int(pid_file.read_text())
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)


# A program that walks up to the harness's frames and writes a verdict line to every descriptor: the
# sandbox's judge scores it 0 and reports it as `tampered` (tests/verifiers/test_code.py).
FRAME_FORGERY = (
    "import os, sys\nf = sys._getframe()\nwhile f.f_back is not None:\n    f = f.f_back\n"
    "for fd in range(3, 64):\n    try:\n        os.write(fd, b'pass\\n')\n    except OSError:\n        pass\n"
    "def add(a, b):\n    return 0\n"
)


def test_ray_counts_the_tampered_samples_its_actors_verified(tiny_model_dir, tmp_path):
    """The verifier runs in Ray actors, each with its own copy: the driver's copy sees nothing, so the count
    must come back with each chunk."""
    from sgpo_curate.records import Query
    from sgpo_curate.verifiers.code import CodeVerifier

    tests = "assert add(1, 2) == 3\n"
    queries = [Query(f"t/{i}", "t", "code", (("user", "add"),), tests=tests) for i in range(3)]
    answers = ["def add(a, b):\n    return a + b", FRAME_FORGERY]
    spec = SamplerSpec("ray_helpers:ScriptedSampler", tiny_model_dir, {"answers": answers})
    verifier = CodeVerifier(workers=1, timeout_s=10)
    try:
        summary = profile(
            queries,
            spec,
            verifier,
            ProfileConfig(out_dir=str(tmp_path), progress=False),
            SamplingConfig(k=2, batch_queries=2),
            engine="ray",
        )
    finally:
        verifier.close()
    assert [r["rewards"] for r in rows(tmp_path)] == [[1.0, 0.0]] * 3
    assert summary.tampered_samples == 3
    assert load_run_info(tmp_path)["tampered_samples"] == 3


def test_cli_ray_address_needs_the_ray_engine(tiny_model_dir, tmp_path, capsys):
    args = ["profile", "--model", tiny_model_dir, "--dataset", "gsm8k", "--out", str(tmp_path)]
    assert main([*args, "--ray-address", "auto"]) == 2
    assert "--ray-address applies to --engine ray" in capsys.readouterr().err
    assert main([*args, "--engine", "dask"]) == 2
    assert "valid profiling engines: local, ray" in capsys.readouterr().err


def test_without_ray_the_local_engine_runs_and_the_ray_engine_says_how_to_install(
    queries, verifier, tiny_model_dir, tmp_path, monkeypatch
):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as if it were not installed
    monkeypatch.setitem(sys.modules, "ray.data", None)
    summary = run(queries[:2], get_sampler("transformers", tiny_model_dir), verifier, tmp_path / "local")
    assert summary.queries == 2
    with pytest.raises(ImportError, match=r"pip install 'sgpo-curate\[ray\]'"):
        run(
            queries[:2], SamplerSpec("transformers", tiny_model_dir), verifier, tmp_path / "ray", engine="ray"
        )


def test_importing_the_engines_imports_no_ray():
    code = (
        "import sys, sgpo_curate.profiling as p; p.get_engine('ray', address='auto'); "
        "assert 'ray' not in sys.modules, 'ray imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_ray_engine_refuses_a_loaded_sampler(queries, verifier, tiny_model_dir, tmp_path):
    with pytest.raises(TypeError, match=r"pass SamplerSpec\(name, model\)"):
        run(queries[:2], get_sampler("transformers", tiny_model_dir), verifier, tmp_path, engine="ray")


@pytest.mark.parametrize(
    ("engine", "resources", "expected"),
    [
        (RayEngine(), {"CPU": 2.0}, (1, 0, 1)),  # this machine: one sampler, one verifier
        (RayEngine(), {"CPU": 96.0, "GPU": 8.0}, (8, 1, 88)),  # a GPU node: one sampler per GPU
        (RayEngine(gpus_per_generator=2), {"CPU": 32.0, "GPU": 8.0}, (4, 2, 28)),
        (RayEngine(num_generators=3, num_verifiers=2), {"CPU": 64.0}, (3, 0, 2)),
    ],
)
def test_pool_sizes_follow_the_cluster(engine, resources, expected):
    sizes = engine.pool_sizes(resources)
    assert (sizes.generators, sizes.gpus_per_generator, sizes.verifiers) == expected


def test_engine_settings_are_checked():
    with pytest.raises(ValueError, match="num_generators must be >= 1"):
        RayEngine(num_generators=0)
    with pytest.raises(ValueError, match="max_restarts must be >= -1"):
        RayEngine(max_restarts=-2)
