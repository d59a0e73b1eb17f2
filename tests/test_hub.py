"""Publishing against a Hub-compatible server on 127.0.0.1, with the real clients in subprocesses.

`HF_ENDPOINT` is read when `huggingface_hub` / `datasets` are imported, so every client (our `publish` via
the CLI, `hf download`, `datasets.load_dataset`) runs in a fresh subprocess whose environment points at
the server started here (`tests/hub_server.py`).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import curation_helpers as helpers  # noqa: E402  (tests/ is on pytest's pythonpath)
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hub_server import HubServer  # noqa: E402
from huggingface_hub import DatasetCard

from sgpo_curate.curation import CurateConfig, curate, write_curated

REJECTED = "hf_rejected_token"
TIMEOUT = 240


@pytest.fixture(scope="module")
def hub():
    with HubServer(rejected_tokens=(REJECTED,)) as server:
        yield server
    assert server.unknown_routes == [], (
        f"clients hit routes the server does not serve: {server.unknown_routes}"
    )


def client_env(hub, tmp_path: Path, token: str | None = "dummy") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}  # conftest sets HF_HUB_OFFLINE
    env.update(
        HF_ENDPOINT=hub.url,
        HF_HUB_DISABLE_XET="1",
        HF_HOME=str(tmp_path / "hf-home"),
        HF_DATASETS_CACHE=str(tmp_path / "hf-datasets"),
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_DISABLE_UPDATE_CHECK="1",
        HF_HUB_DISABLE_PROGRESS_BARS="1",
        OMP_NUM_THREADS="1",
    )
    if token is not None:
        env["HF_TOKEN"] = token
    return env


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=TIMEOUT)


def sgpo(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "sgpo_curate.cli", *args], env)


def load_rows(env: dict[str, str], repo_id: str, config: str) -> list[dict]:
    code = (
        f"import json, datasets; ds = datasets.load_dataset({repo_id!r}, {config!r}, split='train'); "
        "print(json.dumps(ds.to_list()))"
    )
    proc = run([sys.executable, "-c", code], env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def curated_dir(path: Path, model: str = helpers.MODEL, config_name: str | None = None, raw: bool = False):
    profiles = (
        helpers.make_pool()
        if model == helpers.MODEL
        else [helpers.make_profile(i, i % 9, model=model) for i in range(30)]
    )
    result = curate(profiles, CurateConfig(config_name=config_name))
    write_curated(result, path, helpers.RUN_INFO | {"model": model}, profiles=profiles if raw else None)
    return result


def test_publish_then_hf_download_and_load_dataset_give_the_same_rows(hub, tmp_path):
    result = curated_dir(tmp_path / "curated", raw=True)
    env = client_env(hub, tmp_path)
    published = sgpo(env, "publish", str(tmp_path / "curated"), "--repo", "org/toy-sgpo", "--private")
    assert published.returncode == 0, published.stderr[-3000:]
    assert "pushed config(s) tiny-llama" in published.stdout
    assert hub.state.repos[("dataset", "org/toy-sgpo")].private

    hf = str(Path(sys.executable).with_name("hf"))
    download = run(
        [hf, "download", "org/toy-sgpo", "--repo-type", "dataset", "--local-dir", str(tmp_path / "dl")], env
    )
    assert download.returncode == 0, download.stderr[-3000:]
    parquet = tmp_path / "dl" / "data" / "tiny-llama" / "train-00000-of-00001.parquet"
    expected = result.dataset.to_list()
    assert pq.read_table(parquet).to_pylist() == expected
    assert load_rows(env, "org/toy-sgpo", "tiny-llama") == expected

    card = DatasetCard.load(tmp_path / "dl" / "README.md")
    assert [c["config_name"] for c in card.data.to_dict()["configs"]] == ["tiny-llama", "tiny-llama-raw"]
    assert "hf download org/toy-sgpo --repo-type dataset" in card.text
    raw = load_rows(env, "org/toy-sgpo", "tiny-llama-raw")
    assert len(raw) == len(helpers.make_pool()) and all(len(row["rewards"]) == 8 for row in raw)
    for name in ("pass_rate_histogram", "group_size_distribution", "rollouts_vs_uniform"):
        assert (tmp_path / "dl" / "plots" / "tiny-llama" / f"{name}.png").is_file()
    assert not (tmp_path / "dl" / "rejects").exists(), "rejects stay local"


def test_second_config_leaves_the_first_intact_and_republishing_is_a_no_op(hub, tmp_path):
    repo = "org/two-models"
    first = curated_dir(tmp_path / "a")
    second = curated_dir(tmp_path / "b", model="org/other-model", config_name="other")
    env = client_env(hub, tmp_path)

    assert sgpo(env, "publish", str(tmp_path / "a"), "--repo", repo).returncode == 0
    files_after_first = hub.files(repo)
    commits_after_first = len(hub.commits(repo))
    proc = sgpo(env, "publish", str(tmp_path / "b"), "--repo", repo)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "configs in the repo: other, tiny-llama" in proc.stdout
    assert len(hub.commits(repo)) == commits_after_first + 1
    files = hub.files(repo)
    for path, data in files_after_first.items():
        if path != "README.md":
            assert files[path] == data, f"{path} changed when another config was added"
    card = DatasetCard(files["README.md"].decode())
    assert [c["config_name"] for c in card.data.to_dict()["configs"]] == ["other", "tiny-llama"]
    assert "## Config `tiny-llama`" in card.text and "## Config `other`" in card.text

    assert load_rows(env, repo, "tiny-llama") == first.dataset.to_list()
    assert load_rows(env, repo, "other") == second.dataset.to_list()

    commits = len(hub.commits(repo))
    for folder in ("b", "a"):  # the same content again, from either model's folder
        again = sgpo(env, "publish", str(tmp_path / folder), "--repo", repo)
        assert again.returncode == 0, again.stderr[-3000:]
        assert "unchanged, nothing pushed" in again.stdout
    assert len(hub.commits(repo)) == commits, "re-publishing the same content made a commit"
    assert hub.files(repo) == files


def remote_paths(hub, repo: str, config: str) -> set[str]:
    return {
        p
        for p in hub.files(repo)
        if p.split("/")[:2] in (["data", config], ["raw", config], ["plots", config])
    }


def local_paths(folder: Path, config: str) -> set[str]:
    return {
        p.relative_to(folder).as_posix()
        for top in ("data", "raw", "plots")
        for p in (folder / top / config).glob("*")
    }


def split_into_two_shards(folder: Path, config: str) -> None:
    """Write a config's data as two parquet shards, as a bigger dataset would be."""
    single = folder / "data" / config / "train-00000-of-00001.parquet"
    table = pq.read_table(single)
    half = table.num_rows // 2
    for index, part in enumerate((table.slice(0, half), table.slice(half))):
        pq.write_table(part, single.with_name(f"train-{index:05d}-of-00002.parquet"))
    single.unlink()


def test_republishing_a_config_with_fewer_files_deletes_the_stale_ones(hub, tmp_path):
    """First: two data shards, the raw config and every plot. Then: one shard, no raw, one plot fewer.
    The remote copy must equal the new one (a stale shard would add its rows to `load_dataset`), the card
    must stop listing the raw config, and another config's files stay as they were."""
    repo, env = "org/shrinking", client_env(hub, tmp_path)
    curated_dir(tmp_path / "other", model="org/other-model", config_name="other")
    assert sgpo(env, "publish", str(tmp_path / "other"), "--repo", repo).returncode == 0
    others = {p: d for p, d in hub.files(repo).items() if p != "README.md"}

    curated_dir(tmp_path / "big", raw=True)
    split_into_two_shards(tmp_path / "big", "tiny-llama")
    proc = sgpo(env, "publish", str(tmp_path / "big"), "--repo", repo)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert remote_paths(hub, repo, "tiny-llama") == local_paths(tmp_path / "big", "tiny-llama")

    result = curated_dir(tmp_path / "small")
    (tmp_path / "small" / "plots" / "tiny-llama" / "rollouts_vs_uniform.png").unlink()
    proc = sgpo(env, "publish", str(tmp_path / "small"), "--repo", repo)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert remote_paths(hub, repo, "tiny-llama") == local_paths(tmp_path / "small", "tiny-llama")
    assert "data/tiny-llama/train-00000-of-00001.parquet" in hub.files(repo)
    assert load_rows(env, repo, "tiny-llama") == result.dataset.to_list()
    card = DatasetCard(hub.files(repo)["README.md"].decode())
    assert [c["config_name"] for c in card.data.to_dict()["configs"]] == ["other", "tiny-llama"]
    for path, data in others.items():
        assert hub.files(repo)[path] == data, f"{path} of another config changed"


OTHER_TOOL_CARD = """---
language:
- en
pretty_name: Human labels
configs:
- config_name: human-labels
  data_files:
  - split: train
    path: labels/*.parquet
other_tool:
  version: 3
  reviewed: true
---

# Human labels
"""


def other_tool_commits(env: dict[str, str], repo: str, files: dict[str, Path]) -> None:
    """Another tool writes to the repo with the plain Hub client."""
    code = (
        "import json, sys; from huggingface_hub import HfApi, CommitOperationAdd; api = HfApi(); "
        "files = json.loads(sys.argv[2]); "
        "api.create_repo(sys.argv[1], repo_type='dataset', exist_ok=True); "
        "api.create_commit(sys.argv[1], [CommitOperationAdd(p, l) for p, l in files.items()], "
        "repo_type='dataset', commit_message='labels')"
    )
    files_json = json.dumps({p: str(local) for p, local in files.items()})
    proc = run([sys.executable, "-c", code, repo, files_json], env)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_configs_and_metadata_another_tool_put_in_the_card_survive_a_publish(hub, tmp_path):
    repo, env = "org/shared", client_env(hub, tmp_path)
    labels = [{"id": "toy/1", "label": "easy"}, {"id": "toy/2", "label": "hard"}]
    pq.write_table(pa.Table.from_pylist(labels), tmp_path / "labels.parquet")
    (tmp_path / "README.md").write_text(OTHER_TOOL_CARD)
    other_tool_commits(
        env, repo, {"README.md": tmp_path / "README.md", "labels/train.parquet": tmp_path / "labels.parquet"}
    )
    theirs = DatasetCard(OTHER_TOOL_CARD).data.to_dict()

    curated_dir(tmp_path / "curated")
    for attempt in range(2):  # the second publish finds nothing to change
        commits = len(hub.commits(repo))
        proc = sgpo(env, "publish", str(tmp_path / "curated"), "--repo", repo)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert len(hub.commits(repo)) == commits + (1 - attempt)

    card = DatasetCard(hub.files(repo)["README.md"].decode()).data.to_dict()
    assert [c["config_name"] for c in card["configs"]] == ["human-labels", "tiny-llama"]
    assert card["configs"][0] == theirs["configs"][0]
    assert card["language"] == ["en"] and card["other_tool"] == theirs["other_tool"]
    assert "tiny-llama" in card["sgpo_profiles"]
    assert hub.files(repo)["labels/train.parquet"] == (tmp_path / "labels.parquet").read_bytes()
    assert load_rows(env, repo, "human-labels") == labels


def test_rejected_or_missing_token_is_a_clear_error_and_never_printed(hub, tmp_path):
    curated_dir(tmp_path / "curated")
    rejected = sgpo(
        client_env(hub, tmp_path, token=REJECTED),
        "-v",
        "publish",
        str(tmp_path / "curated"),
        "--repo",
        "org/denied",
    )  # debug logging on: still no token in the output
    assert rejected.returncode == 2
    assert "rejected the token (HTTP 401)" in rejected.stderr
    assert "HF_TOKEN" in rejected.stderr and "hf auth login" in rejected.stderr
    assert REJECTED not in rejected.stdout + rejected.stderr
    assert "Traceback" not in rejected.stderr

    missing = sgpo(
        client_env(hub, tmp_path, token=None), "publish", str(tmp_path / "curated"), "--repo", "org/denied"
    )
    assert missing.returncode == 2
    assert "no Hugging Face token found" in missing.stderr and "HF_TOKEN" in missing.stderr
    assert ("dataset", "org/denied") not in hub.state.repos


def test_publish_to_a_branch_leaves_main_alone(hub, tmp_path):
    curated_dir(tmp_path / "curated")
    env = client_env(hub, tmp_path)
    proc = sgpo(env, "publish", str(tmp_path / "curated"), "--repo", "org/branchy", "--revision", "v2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert set(hub.files("org/branchy", revision="main")) == {".gitattributes"}
    assert "data/tiny-llama/train-00000-of-00001.parquet" in hub.files("org/branchy", revision="v2")


def _request(url: str, method: str = "GET", headers: dict[str, str] | None = None):
    request = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_server_resolve_headers_ranges_and_errors(hub, tmp_path):
    """The parts of the protocol the clients rely on without asserting them loudly."""
    curated_dir(tmp_path / "curated")
    assert (
        sgpo(
            client_env(hub, tmp_path), "publish", str(tmp_path / "curated"), "--repo", "org/proto"
        ).returncode
        == 0
    )
    data = hub.files("org/proto")["data/tiny-llama/train-00000-of-00001.parquet"]
    url = f"{hub.url}/datasets/org/proto/resolve/main/data/tiny-llama/train-00000-of-00001.parquet"
    status, headers, body = _request(url, "HEAD")
    assert status == 200 and body == b""
    assert headers["X-Repo-Commit"] == hub.commits("org/proto")[-1].oid
    assert headers["X-Linked-Size"] == headers["Content-Length"] == str(len(data))
    assert headers["X-Linked-Etag"].strip('"') == hashlib.sha256(data).hexdigest()
    status, headers, body = _request(url, headers={"Range": "bytes=4-11"})
    assert status == 206 and body == data[4:12] and headers["Content-Range"] == f"bytes 4-11/{len(data)}"
    cases = [
        (f"{hub.url}/datasets/org/proto/resolve/main/nope.txt", "EntryNotFound"),
        (f"{hub.url}/datasets/org/nothing/resolve/main/README.md", "RepoNotFound"),
        (f"{hub.url}/api/datasets/org/proto/revision/no-such-branch", "RevisionNotFound"),
        (f"{hub.url}/api/datasets/org/proto/tree/main/no-such-folder", "EntryNotFound"),
    ]
    for case_url, code in cases:
        status, headers, _ = _request(case_url)
        assert (status, headers.get("X-Error-Code")) == (404, code), case_url
    status, _, body = _request(f"{hub.url}/api/datasets/org/proto/tree/main/data?recursive=true")
    assert status == 200
    assert {e["path"] for e in json.loads(body)} == {
        "data/tiny-llama",
        "data/tiny-llama/train-00000-of-00001.parquet",
    }


def test_publish_checks_the_folder_before_any_network(tmp_path):
    from sgpo_curate.hub import publish

    curated_dir(tmp_path / "curated")
    with pytest.raises(FileNotFoundError, match="no config 'nope'"):
        publish(tmp_path / "curated", "org/x", config_name="nope", token="unused")
    with pytest.raises(FileNotFoundError, match="no curated config"):
        publish(tmp_path / "empty", "org/x", token="unused")


def test_a_commit_made_meanwhile_is_refused_and_nothing_is_half_written(hub, tmp_path):
    """Another writer commits between our read of the head and our commit: the Hub answers 412, we say so
    and exit 1 without a traceback, and the repo holds their commit and nothing of ours. A rerun publishes."""
    repo, env = "org/race", client_env(hub, tmp_path)
    curated_dir(tmp_path / "a")
    assert sgpo(env, "publish", str(tmp_path / "a"), "--repo", repo).returncode == 0
    curated_dir(tmp_path / "b", model="org/other-model", config_name="other")
    hub.before("preupload", lambda: hub.commit(repo, {"notes.md": b"theirs\n"}, "their commit"))
    raced = sgpo(env, "publish", str(tmp_path / "b"), "--repo", repo)
    assert raced.returncode == 1, raced.stderr[-3000:]
    assert "someone else committed to 'main'" in raced.stderr and "nothing was committed" in raced.stderr
    assert "Traceback" not in raced.stderr
    assert hub.commits(repo)[-1].title == "their commit"
    assert not any(path.startswith(("data/other/", "curation/other")) for path in hub.files(repo))
    rerun = sgpo(env, "publish", str(tmp_path / "b"), "--repo", repo)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    files = hub.files(repo)
    assert files["notes.md"] == b"theirs\n" and "data/other/train-00000-of-00001.parquet" in files


def test_a_dropped_connection_or_a_server_error_commits_nothing_and_says_so(hub, tmp_path):
    repo, env = "org/flaky", client_env(hub, tmp_path)
    curated_dir(tmp_path / "a")
    assert sgpo(env, "publish", str(tmp_path / "a"), "--repo", repo).returncode == 0
    commits = len(hub.commits(repo))
    curated_dir(tmp_path / "b", model="org/other-model", config_name="other")
    try:
        hub.fail("commit", disconnect=True, times=5)
        dropped = sgpo(env, "publish", str(tmp_path / "b"), "--repo", repo)
        hub.clear_faults()
        hub.fail("commit", status=503, message="Service Unavailable", times=20)
        refused = sgpo(env, "publish", str(tmp_path / "b"), "--repo", repo)
    finally:
        hub.clear_faults()
    assert dropped.returncode == 1 and "lost the connection" in dropped.stderr, dropped.stderr[-3000:]
    assert refused.returncode == 1 and "answered HTTP 503" in refused.stderr, refused.stderr[-3000:]
    assert "Traceback" not in dropped.stderr + refused.stderr
    assert len(hub.commits(repo)) == commits, "a failed publish left a commit"
    assert sgpo(env, "publish", str(tmp_path / "b"), "--repo", repo).returncode == 0


def test_a_pull_request_with_its_message_and_an_explicit_token(hub, tmp_path):
    """hf's names: --create-pr opens a pull request (main untouched), --commit-message titles it, --token
    stands in for HF_TOKEN."""
    repo = "org/reviewed"
    curated_dir(tmp_path / "curated")
    env = client_env(hub, tmp_path, token=None)
    proc = sgpo(
        env,
        "publish",
        str(tmp_path / "curated"),
        "--repo",
        repo,
        "--create-pr",
        "--commit-message",
        "Add tiny-llama profiles",
        "--token",
        "hf_explicit",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "pull request: " in proc.stdout and "/discussions/1" in proc.stdout
    assert "hf_explicit" not in proc.stdout + proc.stderr
    assert set(hub.files(repo)) == {".gitattributes"}
    pr = hub.commits(repo, branch="refs/pr/1")[-1]
    assert (
        pr.title == "Add tiny-llama profiles" and "data/tiny-llama/train-00000-of-00001.parquet" in pr.files
    )
    both = sgpo(env, "publish", str(tmp_path / "curated"), "--repo", repo, "--create-pr", "--revision", "v2")
    assert both.returncode == 2 and "pull request is opened against main" in both.stderr


def test_a_readme_on_the_hub_keeps_its_text(hub, tmp_path):
    repo, env = "org/documented", client_env(hub, tmp_path)
    (tmp_path / "README.md").write_text("# Our dataset\n\nWritten by hand: how we collected it.\n")
    other_tool_commits(env, repo, {"README.md": tmp_path / "README.md"})
    curated_dir(tmp_path / "curated")
    assert sgpo(env, "publish", str(tmp_path / "curated"), "--repo", repo).returncode == 0
    card = hub.files(repo)["README.md"].decode()
    assert card.index("Written by hand") < card.index("<!-- sgpo-curate:start")
    assert "## Config `tiny-llama`" in card
