"""Publishing curated configs to the Hugging Face Hub: the only module of the package that talks to it.

`publish(local_dir, repo_id)` pushes what `write_curated` wrote (one config per profiled model) in a single
commit: the config's parquet under `data/<config>/`, its plots and summary, and a README card re-rendered
for every config the repo will hold, so a second model's config lands next to the first one and leaves it
intact. A republished config's remote files that the new version lacks (a shard, a plot, the raw config) are
deleted in the same commit; configs and metadata keys that another tool put in the remote card are kept.
Unchanged files are skipped by the Hub client's pre-upload check (it compares our hashes with the
remote file oids), so publishing the same folder twice creates no second commit.

The endpoint comes from `huggingface_hub` (`HF_ENDPOINT`), the token from the argument, `HF_TOKEN` or
`hf auth login`; it is never logged.

    sgpo-curate publish curated/ --repo ORG/NAME [--config NAME] [--revision BRANCH] [--private]
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sgpo_curate.cards import SUMMARY_DIR, read_summaries, render_card

logger = logging.getLogger(__name__)

REPO_TYPE = "dataset"
TOKEN_HELP = "set HF_TOKEN to a token with write access, or run `hf auth login`"


class HubAuthError(PermissionError):
    """No token, or the Hub rejected it (401/403). The message says how to fix it and never holds the token."""


@dataclass(frozen=True)
class PublishResult:
    """What `publish` did.

    Args:
        repo_id (`str`): the dataset repo.
        configs (`tuple[str, ...]`): configs pushed by this call.
        all_configs (`tuple[str, ...]`): configs the repo's card lists after it.
        commit (`str`): the repo's head commit after publishing.
        changed (`bool`): False when nothing differed from the remote files (no commit was made).
        url (`str`): the repo's URL.
    """

    repo_id: str
    configs: tuple[str, ...]
    all_configs: tuple[str, ...]
    commit: str
    changed: bool
    url: str


def publish(
    local_dir: str | Path,
    repo_id: str,
    config_name: str | None = None,
    revision: str | None = None,
    private: bool = False,
    token: str | None = None,
) -> PublishResult:
    """Push curated configs from `local_dir` to a Hub dataset repo, creating the repo when needed.

    Args:
        local_dir (`str` or `Path`): a folder written by `write_curated` (`data/`, `plots/`, `curation/`).
        repo_id (`str`): `ORG/NAME` of the dataset repo.
        config_name (`str`, *optional*): push only this config; default: every config in `local_dir`.
        revision (`str`, *optional*): branch to commit to (created from `main` if missing); default `main`.
        private (`bool`): create the repo private (an existing repo keeps its visibility).
        token (`str`, *optional*): a write token; default `HF_TOKEN` or the one saved by `hf auth login`.

    Returns:
        `PublishResult`: the pushed configs, the head commit and whether anything changed.

    Raises:
        `HubAuthError`: no token, or the Hub answered 401/403.
        `FileNotFoundError`: `local_dir` holds no curated config (or not `config_name`).

    Example:
        >>> from sgpo_curate import publish
        >>> publish("curated/", "me/gsm8k-sgpo", config_name="SmolLM2-135M-Instruct")  # doctest: +SKIP
    """
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    local_dir = Path(local_dir)
    summaries = _local_summaries(local_dir, config_name)
    api = HfApi(token=_resolve_token(token))
    try:
        return _publish(api, local_dir, summaries, repo_id, revision, private)
    except HfHubHTTPError as exc:
        status = getattr(exc.response, "status_code", None)
        if status in (401, 403):
            raise HubAuthError(
                f"the Hub at {api.endpoint} rejected the token (HTTP {status}) while publishing to {repo_id}: "
                f"{TOKEN_HELP}"
            ) from None
        raise


def _resolve_token(token: str | None) -> str:
    from huggingface_hub import get_token

    token = token or get_token()
    if not token:
        raise HubAuthError(f"no Hugging Face token found: {TOKEN_HELP}")
    return token


def _local_summaries(local_dir: Path, config_name: str | None) -> list[dict[str, Any]]:
    summaries = read_summaries(local_dir)
    if config_name is not None:
        summaries = [s for s in summaries if s["config_name"] == config_name]
    if not summaries:
        which = f"config {config_name!r}" if config_name else "curated config"
        raise FileNotFoundError(
            f"no {which} in {local_dir} (expected {SUMMARY_DIR}/<config>.json from `sgpo-curate curate`)"
        )
    return summaries


def _publish(
    api, local_dir: Path, summaries: list[dict[str, Any]], repo_id: str, revision: str | None, private: bool
) -> PublishResult:
    from huggingface_hub import CommitOperationAdd

    repo_url = api.create_repo(repo_id, repo_type=REPO_TYPE, private=private, exist_ok=True)
    if revision not in (None, "main"):
        api.create_branch(repo_id, branch=revision, repo_type=REPO_TYPE, exist_ok=True)
    branch = revision or "main"
    head = api.repo_info(repo_id, repo_type=REPO_TYPE, revision=branch).sha
    remote_files = set(api.list_repo_files(repo_id, repo_type=REPO_TYPE, revision=head))
    names = [s["config_name"] for s in summaries]
    others = _remote_summaries(api, repo_id, head, remote_files, exclude=names)
    remote_card = _remote_card_metadata(api, repo_id, head, remote_files)
    card = render_card(
        summaries + others,
        repo_id=repo_id,
        extra_configs=[
            c for c in remote_card.get("configs") or [] if isinstance(c, Mapping) and c.get("config_name")
        ],
        extra_metadata=remote_card,
    )
    local_files = _config_files(local_dir, names)
    operations = [
        CommitOperationAdd(path_in_repo=rel, path_or_fileobj=str(path)) for rel, path in local_files
    ]
    operations.append(CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=card.encode("utf-8")))
    operations += _stale_deletions(remote_files, {rel for rel, _ in local_files}, names)
    info = api.create_commit(
        repo_id,
        operations,
        repo_type=REPO_TYPE,
        revision=branch,
        commit_message=f"Add sGPO config(s) {', '.join(names)}",
        parent_commit=head,
    )
    changed = info.oid != head
    all_configs = tuple(sorted({*names, *(s["config_name"] for s in others)}))
    logger.info(
        "%s %s at %s (%s)",
        "published" if changed else "unchanged, nothing pushed:",
        repo_id,
        info.oid[:10],
        ", ".join(names),
    )
    return PublishResult(repo_id, tuple(names), all_configs, info.oid, changed, str(repo_url))


def _config_files(local_dir: Path, names: Sequence[str]) -> list[tuple[str, Path]]:
    """(path in repo, local path) of every file of the given configs; the data folder must hold parquet."""
    files: list[tuple[str, Path]] = []
    for name in names:
        data = sorted((local_dir / "data" / name).glob("*.parquet"))
        if not data:
            raise FileNotFoundError(f"config {name!r} has no parquet under {local_dir / 'data' / name}")
        plots = sorted((local_dir / "plots" / name).glob("*.png"))
        raw = sorted((local_dir / "raw" / name).glob("*.parquet"))
        for path in [*data, *raw, *plots, local_dir / SUMMARY_DIR / f"{name}.json"]:
            files.append((path.relative_to(local_dir).as_posix(), path))
    return files


def _stale_deletions(remote_files: set[str], pushed: set[str], names: Sequence[str]) -> list:
    """Delete remote data/plot files of the pushed configs that the new version no longer has."""
    from huggingface_hub import CommitOperationDelete

    prefixes = tuple(f"{top}/{name}/" for name in names for top in ("data", "raw", "plots"))
    return [
        CommitOperationDelete(path_in_repo=p)
        for p in sorted(remote_files)
        if p.startswith(prefixes) and p not in pushed
    ]


def _download_text(api, repo_id: str, revision: str, filename: str) -> str:
    path = api.hf_hub_download(repo_id, filename, repo_type=REPO_TYPE, revision=revision)
    return Path(path).read_text(encoding="utf-8")


def _remote_summaries(
    api, repo_id: str, revision: str, remote_files: set[str], exclude: Sequence[str]
) -> list[dict[str, Any]]:
    """Summaries of configs already in the repo that this call does not replace."""
    out = []
    for path in sorted(remote_files):
        if path.startswith(f"{SUMMARY_DIR}/") and path.endswith(".json") and path.count("/") == 1:
            summary = json.loads(_download_text(api, repo_id, revision, path))
            if summary.get("config_name") not in exclude:
                out.append(summary)
    return out


def _remote_card_metadata(api, repo_id: str, revision: str, remote_files: set[str]) -> dict[str, Any]:
    """The YAML metadata of the repo's current card, so configs and keys other tools put there survive."""
    from huggingface_hub import DatasetCard

    if "README.md" not in remote_files:
        return {}
    return DatasetCard(_download_text(api, repo_id, revision, "README.md")).data.to_dict()
