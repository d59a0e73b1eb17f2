"""Publishing curated configs to the Hugging Face Hub: the only module of the package that talks to it.

`publish(local_dir, repo_id)` pushes what `write_curated` wrote (`DatasetFolder.publish_files`: one config per
profiled model) in a single commit: the config's parquet, its plots and summary, and a README card re-rendered
for every config the repo will hold, so a second model's config lands next to the first one and leaves it
intact. A republished config's remote files that the new version lacks (a shard, a plot, the raw config) are
deleted in the same commit; configs, metadata keys and README text that someone else put in the repo are kept
(`sgpo_curate.cards` merges the card). Unchanged files are skipped by the Hub client's pre-upload check (it
compares our hashes with the remote file oids), so publishing the same folder twice creates no second commit.

One commit or none: everything goes in one `create_commit` whose parent is the head read at the start, so a
commit someone else made in between is refused by the Hub (HTTP 412) instead of being overwritten, and a
dropped connection leaves the repo as it was (uploaded LFS objects that no commit names are invisible).
Failures end as a `HubError` that says what happened and what to do; the token is never in a message.

The endpoint comes from `huggingface_hub` (`HF_ENDPOINT`), the token from the argument, `HF_TOKEN` or
`hf auth login`.

    sgpo-curate publish curated/ --repo ORG/NAME [--config-name NAME] [--revision BRANCH] [--private]
        [--create-pr] [--commit-message TEXT] [--token TOKEN]
"""

from __future__ import annotations

import importlib
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sgpo_curate.dataset_folder import (
    CARD_FILE,
    SUMMARY_DIR,
    ConfigSummary,
    DatasetFolder,
    config_prefixes,
    is_summary_path,
)
from sgpo_curate.errors import InputError

logger = logging.getLogger(__name__)

REPO_TYPE = "dataset"
TOKEN_HELP = "set HF_TOKEN to a token with write access, or run `hf auth login`"


class HubError(RuntimeError):
    """Publishing failed for a reason outside this program (the Hub refused, the network broke). The message
    says what happened and what to do, never holds the token; the CLI prints it without a traceback."""


class HubAuthError(HubError, PermissionError):
    """No token, or the Hub rejected it (401/403): bad input, fixed by the user (CLI exit code 2)."""


class HubConflictError(HubError):
    """Someone else committed to the branch while we were publishing (HTTP 412); nothing was committed."""


class HubConnectionError(HubError):
    """The connection to the Hub broke, or the Hub answered with a server error; rerunning is safe."""


@dataclass(frozen=True)
class PublishConfig:
    """Where and how `publish` pushes (the `sgpo-curate publish` flags; names as in `hf upload`)."""

    repo_id: str = field(metadata={"help": "The dataset repo, ORG/NAME (created when missing)."})
    config_name: str | None = field(
        default=None, metadata={"help": "Push only this config; default: every config in the folder."}
    )
    revision: str | None = field(
        default=None,
        metadata={"help": "Branch to commit to (created from main when missing); default: main."},
    )
    private: bool = field(
        default=False, metadata={"help": "Create the repo private (an existing repo keeps its visibility)."}
    )
    token: str | None = field(
        default=None,
        metadata={"help": "A token with write access; default: HF_TOKEN or the one `hf auth login` saved."},
    )
    commit_message: str | None = field(
        default=None, metadata={"help": "The commit's title; default: 'Add sGPO config(s) NAMES'."}
    )
    create_pr: bool = field(
        default=False, metadata={"help": "Open a pull request against main instead of committing to it."}
    )

    def __post_init__(self) -> None:
        if not _REPO_ID.match(self.repo_id):
            raise InputError(f"repo id {self.repo_id!r}: write ORG/NAME (letters, digits, '-', '_', '.')")
        if self.create_pr and self.revision not in (None, "main"):
            raise InputError(
                f"a pull request is opened against main: drop --revision {self.revision!r} or --create-pr"
            )


_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class PublishResult:
    """What `publish` did.

    Args:
        repo_id (`str`): the dataset repo.
        configs (`tuple[str, ...]`): configs pushed by this call.
        all_configs (`tuple[str, ...]`): configs the repo's card lists after it.
        commit (`str`): the head commit after publishing (of the pull request, with `create_pr`).
        changed (`bool`): False when nothing differed from the remote files (no commit was made).
        url (`str`): the repo's URL.
        pr_url (`str`, *optional*): the pull request opened with `create_pr`.
    """

    repo_id: str
    configs: tuple[str, ...]
    all_configs: tuple[str, ...]
    commit: str
    changed: bool
    url: str
    pr_url: str | None = None


def publish(
    local_dir: str | os.PathLike,
    repo_id: str,
    config_name: str | None = None,
    revision: str | None = None,
    private: bool = False,
    token: str | None = None,
    commit_message: str | None = None,
    create_pr: bool = False,
) -> PublishResult:
    """Push curated configs from `local_dir` to a Hub dataset repo, creating the repo when needed.

    Args:
        local_dir (`str` or `Path`): a folder written by `write_curated` (`data/`, `plots/`, `curation/`).
        repo_id (`str`): `ORG/NAME` of the dataset repo.
        config_name (`str`, *optional*): push only this config; default: every config in `local_dir`.
        revision (`str`, *optional*): branch to commit to (created from `main` if missing); default `main`.
        private (`bool`): create the repo private (an existing repo keeps its visibility).
        token (`str`, *optional*): a write token; default `HF_TOKEN` or the one saved by `hf auth login`.
        commit_message (`str`, *optional*): the commit's title; default names the configs.
        create_pr (`bool`): open a pull request against `main` instead of committing to it.

    Returns:
        `PublishResult`: the pushed configs, the head commit and whether anything changed.

    Raises:
        `HubAuthError`: no token, or the Hub answered 401/403.
        `HubConflictError`: the branch moved while publishing (nothing was committed; rerun).
        `HubConnectionError`: the network or the Hub failed (rerun; unchanged files are not sent again).
        `FileNotFoundError`: `local_dir` holds no curated config (or not `config_name`).

    Example:
        >>> from sgpo_curate import publish
        >>> publish("curated/", "me/gsm8k-sgpo", config_name="SmolLM2-135M-Instruct")  # doctest: +SKIP
    """
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    PublishConfig(repo_id, config_name, revision, private, token, commit_message, create_pr)  # its checks
    folder = DatasetFolder(local_dir)
    summaries = _local_summaries(folder, config_name)
    api = HfApi(token=_resolve_token(token))
    where = f"publishing to {repo_id} at {api.endpoint}"
    try:
        return _publish(api, folder, summaries, repo_id, revision, private, commit_message, create_pr)
    except HfHubHTTPError as exc:
        raise _http_error(exc, where, revision or "main") from None
    except _transport_errors() as exc:
        raise HubConnectionError(
            f"lost the connection to {where} ({type(exc).__name__}: {exc}). A commit is all or nothing: rerun "
            "the same command (files the Hub already has are not sent again)"
        ) from None


def _http_error(exc, where: str, branch: str) -> BaseException:
    """The `HubError` for an HTTP error answer, or `exc` itself when it is not one we can explain."""
    status = getattr(exc.response, "status_code", None)
    if status in (401, 403):
        return HubAuthError(f"{where}: the Hub rejected the token (HTTP {status}): {TOKEN_HELP}")
    if status == 412:
        return HubConflictError(
            f"{where}: someone else committed to {branch!r} while this publish was running (HTTP 412); "
            "nothing was committed. Rerun the same command to publish on top of their commit"
        )
    if status == 429 or (status is not None and status >= 500):
        return HubConnectionError(
            f"{where}: the Hub answered HTTP {status} ({_server_message(exc)}); nothing was committed. "
            "Rerun the same command later"
        )
    return exc


def _server_message(exc) -> str:
    response = exc.response
    return response.headers.get("X-Error-Message") or str(exc).splitlines()[0]


def _transport_errors() -> tuple[type[BaseException], ...]:
    """Exceptions of a broken connection, whichever HTTP client this `huggingface_hub` uses."""
    errors: list[type[BaseException]] = [ConnectionError, TimeoutError]
    for module, name in (
        ("httpx2", "TransportError"),
        ("httpx", "TransportError"),
        ("requests", "ConnectionError"),
    ):
        try:
            errors.append(getattr(importlib.import_module(module), name))
        except ImportError:
            continue
    return tuple(errors)


def _resolve_token(token: str | None) -> str:
    from huggingface_hub import get_token

    token = token or get_token()
    if not token:
        raise HubAuthError(f"no Hugging Face token found: {TOKEN_HELP}")
    return token


def _local_summaries(folder: DatasetFolder, config_name: str | None) -> list[ConfigSummary]:
    names = folder.config_names()
    if config_name is not None:
        names = [n for n in names if n == config_name]
    if not names:
        which = f"config {config_name!r}" if config_name else "curated config"
        raise FileNotFoundError(
            f"no {which} in {folder.root} (expected {SUMMARY_DIR}/<config>.json from `sgpo-curate curate`)"
        )
    return [folder.read_summary(name) for name in names]


def _publish(
    api,
    folder: DatasetFolder,
    summaries: list[ConfigSummary],
    repo_id: str,
    revision: str | None,
    private: bool,
    commit_message: str | None,
    create_pr: bool,
) -> PublishResult:
    from huggingface_hub import CommitOperationAdd

    repo_url = api.create_repo(repo_id, repo_type=REPO_TYPE, private=private, exist_ok=True)
    if revision not in (None, "main"):
        api.create_branch(repo_id, branch=revision, repo_type=REPO_TYPE, exist_ok=True)
    branch = revision or "main"
    head = api.repo_info(repo_id, repo_type=REPO_TYPE, revision=branch).sha
    remote_files = set(api.list_repo_files(repo_id, repo_type=REPO_TYPE, revision=head))
    names = [s.config_name for s in summaries]
    others = _remote_summaries(api, repo_id, head, remote_files, exclude=names)
    existing_card = _download_text(api, repo_id, head, CARD_FILE) if CARD_FILE in remote_files else None
    from sgpo_curate.cards import render_card

    card = render_card(summaries + others, repo_id=repo_id, existing=existing_card)
    local_files = folder.publish_files(names)
    operations = [
        CommitOperationAdd(path_in_repo=rel, path_or_fileobj=str(path)) for rel, path in local_files
    ]
    operations.append(CommitOperationAdd(path_in_repo=CARD_FILE, path_or_fileobj=card.encode("utf-8")))
    operations += _stale_deletions(remote_files, {rel for rel, _ in local_files}, names)
    info = api.create_commit(
        repo_id,
        operations,
        repo_type=REPO_TYPE,
        revision=branch,
        commit_message=commit_message or f"Add sGPO config(s) {', '.join(names)}",
        parent_commit=head,
        create_pr=create_pr,
    )
    changed = info.oid != head
    all_configs = tuple(sorted({*names, *(s.config_name for s in others)}))
    logger.info(
        "%s %s at %s (%s)",
        "published" if changed else "unchanged, nothing pushed:",
        repo_id,
        info.oid[:10],
        ", ".join(names),
    )
    return PublishResult(repo_id, tuple(names), all_configs, info.oid, changed, str(repo_url), info.pr_url)


def _stale_deletions(remote_files: set[str], pushed: set[str], names: Sequence[str]) -> list:
    """Delete remote data, raw and plot files of the pushed configs that the new version no longer has."""
    from huggingface_hub import CommitOperationDelete

    prefixes = config_prefixes(names)
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
) -> list[ConfigSummary]:
    """Summaries of configs already in the repo that this call does not replace."""
    out = []
    for path in sorted(p for p in remote_files if is_summary_path(p)):
        summary = ConfigSummary.from_json(_download_text(api, repo_id, revision, path))
        if summary.config_name not in exclude:
            out.append(summary)
    return out
