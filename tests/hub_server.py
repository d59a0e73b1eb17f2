"""A Hub-compatible HTTP server for tests: stdlib `http.server`, threaded, on 127.0.0.1, random port.

It implements the routes the installed `huggingface_hub` / `datasets` clients use to create a repo, push
files (preupload -> LFS batch + PUT -> NDJSON commit), read repo info, list trees and resolve files, with
git-like storage in memory: every commit is an immutable snapshot `path -> blob`, branches point at
commits, LFS objects are stored by sha256. Anything else is answered 404 and recorded in
`unknown_routes`, so a test can assert that no client call went unserved.

Routes (ground truth: the client sources in site-packages, `hf_api.py`, `_commit_api.py`, `lfs.py`,
`file_download.py`, `hf_file_system.py`):

    POST /api/repos/create
    GET  /api/{type}s/{ns}/{name}[/revision/{rev}]
    POST /api/validate-yaml
    POST /api/{type}s/{id}/preupload/{rev}          uploadMode lfs for binary/data files, oid of existing files
    POST /[{type}s/]{id}.git/info/lfs/objects/batch  upload actions pointing at PUT /_lfs/{sha256}
    PUT  /_lfs/{sha256}
    POST /api/{type}s/{id}/commit/{rev}             NDJSON: header, file, lfsFile, deletedFile, deletedFolder
    GET  /api/{type}s/{id}/tree/{rev}[/{path}]      ?recursive=
    POST /api/{type}s/{id}/paths-info/{rev}
    GET  /api/{type}s/{id}/refs, /api/{type}s/{id}/commits/{rev}
    POST /api/{type}s/{id}/branch/{branch}
    HEAD|GET /[{type}s/]{id}/resolve/{rev}/{path}   X-Repo-Commit, ETag, X-Linked-Etag/Size, Range -> 206
    GET  /api/whoami-v2

Tokens listed in `rejected_tokens` get 401 "Invalid credentials in Authorization header" everywhere, as
the Hub answers a revoked token; writes without any token get 401 too. A commit with `?create_pr=1` lands on a
new `refs/pr/N` branch and answers the pull request's URL.

Failing on demand: `hub.fail(route, status=503)` answers the next request of a route with that error,
`hub.fail(route, disconnect=True)` closes the connection without an answer (a network failure), and
`hub.before(route, action)` runs `action()` before serving it: with `hub.commit(...)`, another writer's
commit that lands between a client's read and its write. Route names are the `route_*` handlers' (`commit`,
`preupload`, `lfs_put`, `repo_info`, ...); `times` says how many requests a fault applies to.

    with HubServer() as hub:
        env = {"HF_ENDPOINT": hub.url, ...}
        ...
        assert len(hub.commits("org/name")) == 2
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

logger = logging.getLogger("hub_server")

REPO_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
LFS_SUFFIXES = (
    ".parquet",
    ".arrow",
    ".png",
    ".jpg",
    ".jpeg",
    ".gif",
    ".bin",
    ".safetensors",
    ".pt",
    ".gz",
    ".zip",
    ".npy",
)
LFS_MIN_SIZE = 10 * 1024 * 1024
GITATTRIBUTES = b"".join(f"*{s} filter=lfs diff=lfs merge=lfs -text\n".encode() for s in LFS_SUFFIXES)


def git_blob_sha1(data: bytes) -> str:
    """The git object id of a blob (what the Hub reports as a regular file's oid)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


@dataclass(frozen=True)
class Blob:
    data: bytes
    lfs: bool

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def oid(self) -> str:
        """The git oid: of the content for regular files, of the pointer file for LFS ones."""
        return git_blob_sha1(lfs_pointer(self.sha256, len(self.data)) if self.lfs else self.data)


@dataclass(frozen=True)
class Commit:
    oid: str
    parent: str | None
    title: str
    files: dict[str, Blob]
    date: str


@dataclass
class Repo:
    repo_type: str
    repo_id: str
    private: bool
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    created: str = ""

    def resolve(self, revision: str) -> Commit | None:
        oid = self.branches.get(revision, revision)
        return self.commits.get(oid)

    def history(self, branch: str = "main") -> list[Commit]:
        """Commits reachable from `branch`, oldest first."""
        out, oid = [], self.branches.get(branch)
        while oid is not None:
            out.append(self.commits[oid])
            oid = self.commits[oid].parent
        return out[::-1]


class HubError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


@dataclass
class Fault:
    """What to do to the next `times` requests of a route instead of (or before) serving them."""

    route: str
    status: int | None = None
    message: str = "injected failure"
    disconnect: bool = False
    action: Callable[[], None] | None = None
    times: int = 1


class HubState:
    """Repos, LFS objects, a request log and pending faults, shared by the handler threads under one lock."""

    def __init__(self, rejected_tokens: tuple[str, ...] = ()):
        self.lock = threading.RLock()
        self.repos: dict[tuple[str, str], Repo] = {}
        self.lfs_objects: dict[str, bytes] = {}
        self.rejected_tokens = set(rejected_tokens)
        self.requests: list[tuple[str, str, int]] = []
        self.unknown_routes: list[str] = []
        self.faults: list[Fault] = []
        self._counter = 0

    def take_fault(self, route: str) -> Fault | None:
        """The first pending fault of `route`, counted down (and dropped when used up)."""
        with self.lock:
            fault = next((f for f in self.faults if f.route == route), None)
            if fault is not None:
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
            return fault

    def repo(self, repo_type: str, repo_id: str) -> Repo:
        repo = self.repos.get((repo_type, repo_id))
        if repo is None:
            raise HubError(404, f"Repository {repo_id} not found", "RepoNotFound")
        return repo

    def commit_at(self, repo: Repo, revision: str) -> Commit:
        commit = repo.resolve(revision)
        if commit is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return commit

    def new_commit(self, repo: Repo, branch: str, title: str, files: dict[str, Blob]) -> Commit:
        self._counter += 1
        parent = repo.branches.get(branch)
        digest = hashlib.sha1(f"{repo.repo_id}\0{parent}\0{title}\0{self._counter}".encode())
        for path in sorted(files):
            digest.update(f"{path}\0{files[path].oid}\0".encode())
        commit = Commit(digest.hexdigest(), parent, title, dict(files), _now())
        repo.commits[commit.oid] = commit
        repo.branches[branch] = commit.oid
        return commit


class HubServer:
    """A threaded Hub-compatible server on 127.0.0.1 (random port) for tests.

    Args:
        rejected_tokens (`tuple[str, ...]`): tokens answered with 401, as a revoked token is on the Hub.
    """

    def __init__(self, rejected_tokens: tuple[str, ...] = ("hf_rejected_token",)):
        self.state = HubState(rejected_tokens)
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> HubServer:
        handler = type("BoundHubHandler", (HubHandler,), {"state": self.state})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="hub-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ what tests look at

    def commits(self, repo_id: str, repo_type: str = "dataset", branch: str = "main") -> list[Commit]:
        """Commits on `branch`, oldest first (the first one is the repo's creation)."""
        with self.state.lock:
            return self.state.repo(repo_type, repo_id).history(branch)

    def files(self, repo_id: str, repo_type: str = "dataset", revision: str = "main") -> dict[str, bytes]:
        with self.state.lock:
            repo = self.state.repo(repo_type, repo_id)
            return {p: b.data for p, b in self.state.commit_at(repo, revision).files.items()}

    @property
    def unknown_routes(self) -> list[str]:
        return list(self.state.unknown_routes)

    # ------------------------------------------------------------------ failing on demand

    def fail(
        self,
        route: str,
        status: int | None = None,
        message: str = "injected failure",
        disconnect: bool = False,
        times: int = 1,
    ) -> None:
        """Answer the next `times` requests of `route` with HTTP `status`, or drop their connection."""
        if (status is None) == (not disconnect):
            raise ValueError("give a status or disconnect=True")
        with self.state.lock:
            self.state.faults.append(Fault(route, status, message, disconnect, times=times))

    def before(self, route: str, action: Callable[[], None], times: int = 1) -> None:
        """Run `action()` before serving the next `times` requests of `route`."""
        with self.state.lock:
            self.state.faults.append(Fault(route, action=action, times=times))

    def clear_faults(self) -> None:
        with self.state.lock:
            self.state.faults.clear()

    def commit(
        self,
        repo_id: str,
        files: dict[str, bytes],
        title: str,
        repo_type: str = "dataset",
        branch: str = "main",
    ) -> Commit:
        """Commit `files` (added or replaced) directly: another writer, as seen by the clients under test."""
        with self.state.lock:
            repo = self.state.repo(repo_type, repo_id)
            head = self.state.commit_at(repo, branch)
            blobs = {path: Blob(data, lfs=path.endswith(LFS_SUFFIXES)) for path, data in files.items()}
            return self.state.new_commit(repo, branch, title, head.files | blobs)

    @property
    def requests(self) -> list[tuple[str, str, int]]:
        return list(self.state.requests)


_ID = r"(?P<repo_id>[^/]+/[^/]+?)"
_TYPE = r"(?P<type>models|datasets|spaces)"
_PREFIX = r"(?:(?P<type>datasets|spaces)/)?"
ROUTES: list[tuple[str, re.Pattern, str]] = [
    ("GET", re.compile(r"^/api/whoami-v2$"), "whoami"),
    ("GET", re.compile(r"^/api/agent-harnesses$"), "agent_harnesses"),
    ("POST", re.compile(r"^/api/repos/create$"), "create_repo"),
    ("POST", re.compile(r"^/api/validate-yaml$"), "validate_yaml"),
    ("POST", re.compile(rf"^/api/{_TYPE}/{_ID}/preupload/(?P<rev>[^/]+)$"), "preupload"),
    ("POST", re.compile(rf"^/api/{_TYPE}/{_ID}/commit/(?P<rev>[^/]+)$"), "commit"),
    ("POST", re.compile(rf"^/api/{_TYPE}/{_ID}/paths-info/(?P<rev>[^/]+)$"), "paths_info"),
    ("POST", re.compile(rf"^/api/{_TYPE}/{_ID}/branch/(?P<rev>[^/]+)$"), "create_branch"),
    ("GET", re.compile(rf"^/api/{_TYPE}/{_ID}/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?$"), "tree"),
    ("GET", re.compile(rf"^/api/{_TYPE}/{_ID}/refs$"), "refs"),
    ("GET", re.compile(rf"^/api/{_TYPE}/{_ID}/commits/(?P<rev>[^/]+)$"), "list_commits"),
    ("GET", re.compile(rf"^/api/{_TYPE}/{_ID}(?:/revision/(?P<rev>[^/]+))?$"), "repo_info"),
    ("POST", re.compile(rf"^/{_PREFIX}{_ID}\.git/info/lfs/objects/batch$"), "lfs_batch"),
    ("PUT", re.compile(r"^/_lfs/(?P<oid>[0-9a-f]{64})$"), "lfs_put"),
    ("GET", re.compile(rf"^/{_PREFIX}{_ID}/resolve/(?P<rev>[^/]+)/(?P<path>.+)$"), "resolve"),
    ("HEAD", re.compile(rf"^/{_PREFIX}{_ID}/resolve/(?P<rev>[^/]+)/(?P<path>.+)$"), "resolve"),
]


class HubHandler(BaseHTTPRequestHandler):
    """One request. `state` is set on a per-server subclass."""

    protocol_version = "HTTP/1.1"
    state: HubState

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - signature of the base class
        logger.debug("%s %s", self.address_string(), format % args)

    # ------------------------------------------------------------------ plumbing

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _dispatch(self, method: str) -> None:
        self.body = self._read_body()
        split = urlsplit(self.path)
        self.query = parse_qs(split.query)
        status = 500
        try:
            self._check_token()
            for route_method, pattern, name in ROUTES:
                match = pattern.match(split.path)
                if route_method == method and match:
                    self.params = {k: unquote(v) for k, v in match.groupdict().items() if v is not None}
                    self.repo_type = REPO_TYPES.get(self.params.get("type", "models"), "model")
                    status = self._serve(name)
                    break
            else:
                with self.state.lock:
                    self.state.unknown_routes.append(f"{method} {self.path}")
                logger.warning("hub_server: unknown route %s %s", method, self.path)
                status = self._error(HubError(404, f"unknown route {method} {split.path}"))
        except HubError as exc:
            status = self._error(exc)
        except Exception as exc:  # a server bug: answer 500 with the reason so the client error shows it
            logger.exception("hub_server: %s %s failed", method, self.path)
            status = self._error(HubError(500, f"{type(exc).__name__}: {exc}"))
        with self.state.lock:
            self.state.requests.append((method, self.path, status))

    def _serve(self, name: str) -> int:
        fault = self.state.take_fault(name)
        if fault is not None and fault.action is not None:
            fault.action()
        elif fault is not None and fault.disconnect:
            self.close_connection = True  # no answer at all: the client sees the connection drop
            return 0
        elif fault is not None:
            raise HubError(fault.status, fault.message)
        return getattr(self, f"route_{name}")()

    def _token(self) -> str | None:
        auth = self.headers.get("Authorization") or ""
        return auth[7:] if auth.startswith("Bearer ") else None

    def _check_token(self) -> None:
        if self._token() in self.state.rejected_tokens:
            raise HubError(401, "Invalid credentials in Authorization header")

    def _require_token(self) -> None:
        if not self._token():
            raise HubError(401, "You must be authenticated to access this resource")

    def _send(
        self,
        status: int,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> int:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        return status

    def _json(self, payload, status: int = 200, headers: dict[str, str] | None = None) -> int:
        return self._send(status, json.dumps(payload).encode(), headers)

    def _error(self, exc: HubError) -> int:
        headers = {"X-Error-Message": exc.message}
        if exc.code:
            headers["X-Error-Code"] = exc.code
        return self._json({"error": exc.message}, exc.status, headers)

    def _repo(self) -> Repo:
        repo = self.state.repo(self.repo_type, self.params["repo_id"])
        if repo.private and not self._token():
            raise HubError(404, f"Repository {repo.repo_id} not found", "RepoNotFound")
        return repo

    def _base(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def _repo_url(self, repo: Repo) -> str:
        prefix = "" if repo.repo_type == "model" else f"{repo.repo_type}s/"
        return f"{self._base()}/{prefix}{repo.repo_id}"

    # ------------------------------------------------------------------ routes

    def route_whoami(self) -> int:
        self._require_token()
        return self._json({"type": "user", "name": "tester", "auth": {"accessToken": {"role": "write"}}})

    def route_agent_harnesses(self) -> int:
        # The `hf` CLI fetches this registry once a day to label its user agent; empty = detect nothing.
        return self._json({"standardEnvVars": [], "harnesses": {}})

    def route_create_repo(self) -> int:
        self._require_token()
        payload = json.loads(self.body or b"{}")
        repo_type = payload.get("type") or "model"
        namespace = payload.get("organization") or "tester"
        repo_id = f"{namespace}/{payload['name']}"
        with self.state.lock:
            if (repo_type, repo_id) in self.state.repos:
                # The Hub's 409 body carries the url: `create_repo(exist_ok=True)` reads it.
                existing = self.state.repos[(repo_type, repo_id)]
                message = f"You already created this {repo_type} repo"
                return self._json(
                    {"error": message, "url": self._repo_url(existing)}, 409, {"X-Error-Message": message}
                )
            private = payload.get("visibility") == "private" or bool(payload.get("private"))
            repo = Repo(repo_type, repo_id, private, created=_now())
            self.state.repos[(repo_type, repo_id)] = repo
            self.state.new_commit(
                repo, "main", "initial commit", {".gitattributes": Blob(GITATTRIBUTES, lfs=False)}
            )
        return self._json({"url": self._repo_url(repo), "name": repo_id, "id": repo_id})

    def route_repo_info(self) -> int:
        with self.state.lock:
            repo = self._repo()
            commit = self.state.commit_at(repo, self.params.get("rev", "main"))
            readme = commit.files.get("README.md")
            card = _front_matter(readme.data.decode()) if readme else None
            info = {
                "_id": hashlib.sha1(repo.repo_id.encode()).hexdigest()[:24],
                "id": repo.repo_id,
                "author": repo.repo_id.split("/")[0],
                "sha": commit.oid,
                "lastModified": commit.date,
                "createdAt": repo.created,
                "private": repo.private,
                "gated": False,
                "disabled": False,
                "downloads": 0,
                "likes": 0,
                "tags": [],
                "siblings": [{"rfilename": path} for path in sorted(commit.files)],
            }
            if card:
                info["cardData"] = card
        return self._json(info)

    def route_validate_yaml(self) -> int:
        payload = json.loads(self.body or b"{}")
        try:
            meta = _front_matter(payload.get("content", ""))
        except yaml.YAMLError as exc:
            raise HubError(400, f"Invalid YAML in README.md: {exc}") from None
        errors = []
        for entry in (meta or {}).get("configs") or []:
            if not isinstance(entry, dict) or "config_name" not in entry:
                errors.append({"message": f"configs entry without config_name: {entry!r}"})
        if errors:
            raise HubError(400, "; ".join(e["message"] for e in errors))
        return self._json({"errors": [], "warnings": []})

    def route_preupload(self) -> int:
        self._require_token()
        payload = json.loads(self.body or b"{}")
        with self.state.lock:
            commit = self.state.commit_at(self._repo(), self.params["rev"])
            files = []
            for item in payload.get("files", []):
                sample = base64.b64decode(item.get("sample", ""))
                lfs = (
                    item["path"].endswith(LFS_SUFFIXES)
                    or item.get("size", 0) >= LFS_MIN_SIZE
                    or b"\0" in sample
                )
                existing = commit.files.get(item["path"])
                oid = None if existing is None else (existing.sha256 if existing.lfs else existing.oid)
                files.append(
                    {
                        "path": item["path"],
                        "uploadMode": "lfs" if lfs else "regular",
                        "shouldIgnore": False,
                        "oid": oid,
                    }
                )
        return self._json({"files": files, "commitOid": commit.oid})

    def route_lfs_batch(self) -> int:
        self._require_token()
        payload = json.loads(self.body or b"{}")
        with self.state.lock:
            self._repo()
            objects = []
            for obj in payload.get("objects", []):
                entry = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
                if obj["oid"] not in self.state.lfs_objects:
                    entry["actions"] = {"upload": {"href": f"{self._base()}/_lfs/{obj['oid']}", "header": {}}}
                objects.append(entry)
        return self._send(
            200,
            json.dumps({"transfer": "basic", "objects": objects}).encode(),
            content_type="application/vnd.git-lfs+json",
        )

    def route_lfs_put(self) -> int:
        oid = self.params["oid"]
        if hashlib.sha256(self.body).hexdigest() != oid:
            raise HubError(400, f"uploaded content does not match sha256 {oid}")
        with self.state.lock:
            self.state.lfs_objects[oid] = self.body
        return self._send(200)

    def route_commit(self) -> int:
        self._require_token()
        lines = [json.loads(line) for line in self.body.decode().splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise HubError(400, "commit payload must start with a header line")
        header = lines[0]["value"]
        branch = self.params["rev"]
        create_pr = self.query.get("create_pr", ["0"])[0].lower() in ("1", "true")
        with self.state.lock:
            repo = self._repo()
            head = self.state.commit_at(repo, branch)
            if branch not in repo.branches:
                raise HubError(400, f"cannot commit to {branch!r}: not a branch")
            if header.get("parentCommit") and header["parentCommit"] != head.oid:
                raise HubError(412, "A commit has happened since the parent commit was read")
            files = dict(head.files)
            for line in lines[1:]:
                _apply_operation(files, line["key"], line["value"], self.state.lfs_objects)
            pr_url = None
            if create_pr:  # a pull request: a new refs/pr/N branch from the head, the commit on it
                number = 1 + sum(name.startswith("refs/pr/") for name in repo.branches)
                branch = f"refs/pr/{number}"
                repo.branches[branch] = head.oid
                pr_url = f"{self._repo_url(repo)}/discussions/{number}"
            commit = self.state.new_commit(repo, branch, header.get("summary") or "commit", files)
        return self._json(
            {
                "success": True,
                "commitOid": commit.oid,
                "pullRequestUrl": pr_url,
                "commitUrl": f"{self._repo_url(repo)}/commit/{commit.oid}",
            }
        )

    def route_create_branch(self) -> int:
        self._require_token()
        payload = json.loads(self.body or b"{}")
        with self.state.lock:
            repo = self._repo()
            if self.params["rev"] in repo.branches:
                raise HubError(409, f"Reference already exists: refs/heads/{self.params['rev']}")
            start = self.state.commit_at(repo, payload.get("startingPoint") or "main")
            repo.branches[self.params["rev"]] = start.oid
        return self._json({})

    def route_tree(self) -> int:
        recursive = self.query.get("recursive", ["false"])[0].lower() in ("1", "true")
        expand = self.query.get("expand", ["false"])[0].lower() in ("1", "true")
        prefix = (self.params.get("path") or "").strip("/")
        with self.state.lock:
            commit = self.state.commit_at(self._repo(), self.params["rev"])
            entries = _tree_entries(commit, prefix, recursive, expand)
        if entries is None:
            raise HubError(404, f"Entry not found: {prefix}", "EntryNotFound")
        return self._json(entries)

    def route_paths_info(self) -> int:
        content_type = self.headers.get("Content-Type", "")
        form = json.loads(self.body) if "json" in content_type else parse_qs(self.body.decode())
        paths = form.get("paths", [])
        paths = [paths] if isinstance(paths, str) else paths
        expand = str(
            (form.get("expand") or ["false"])[0]
            if isinstance(form.get("expand"), list)
            else form.get("expand", False)
        ).lower() in ("1", "true")
        with self.state.lock:
            commit = self.state.commit_at(self._repo(), self.params["rev"])
            everything = {e["path"]: e for e in _tree_entries(commit, "", True, expand) or []}
        return self._json([everything[p.strip("/")] for p in paths if p.strip("/") in everything])

    def route_refs(self) -> int:
        with self.state.lock:
            repo = self._repo()
            branches = [
                {"name": n, "ref": f"refs/heads/{n}", "targetCommit": oid} for n, oid in repo.branches.items()
            ]
        return self._json({"branches": branches, "tags": [], "converts": []})

    def route_list_commits(self) -> int:
        with self.state.lock:
            repo = self._repo()
            self.state.commit_at(repo, self.params["rev"])
            history = repo.history(self.params["rev"])[::-1]
        return self._json(
            [
                {
                    "id": c.oid,
                    "title": c.title,
                    "message": "",
                    "authors": [{"user": "tester"}],
                    "date": c.date,
                }
                for c in history
            ]
        )

    def route_resolve(self) -> int:
        path = self.params["path"]
        with self.state.lock:
            commit = self.state.commit_at(self._repo(), self.params["rev"])
            blob = commit.files.get(path)
        if blob is None:
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound")
        headers = {
            "X-Repo-Commit": commit.oid,
            "Accept-Ranges": "bytes",
            "ETag": f'"{blob.sha256 if blob.lfs else blob.oid}"',
        }
        if blob.lfs:
            headers["X-Linked-Etag"] = f'"{blob.sha256}"'
            headers["X-Linked-Size"] = str(len(blob.data))
        data, status = blob.data, 200
        byte_range = _parse_range(self.headers.get("Range"), len(data))
        if byte_range is not None:
            start, end = byte_range
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            data, status = data[start : end + 1], 206
        return self._send(status, data, headers, content_type="application/octet-stream")


def _front_matter(text: str) -> dict | None:
    match = re.match(r"^---\s*\n(.*?\n)?---\s*(\n|$)", text, re.DOTALL)
    if not match:
        return None
    return yaml.safe_load(match.group(1) or "") or {}


def _apply_operation(files: dict[str, Blob], key: str, value: dict, lfs_objects: dict[str, bytes]) -> None:
    path = value["path"].strip("/")
    if key == "file":
        files[path] = Blob(base64.b64decode(value["content"]), lfs=False)
    elif key == "lfsFile":
        data = lfs_objects.get(value["oid"])
        if data is None:
            raise HubError(422, f"LFS object {value['oid']} for {path} was never uploaded")
        files[path] = Blob(data, lfs=True)
    elif key == "deletedFile":
        if path not in files:
            raise HubError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
        del files[path]
    elif key == "deletedFolder":
        for name in [p for p in files if p.startswith(path + "/")]:
            del files[name]
    else:
        raise HubError(400, f"unknown commit operation {key!r}")


def _tree_entries(commit: Commit, prefix: str, recursive: bool, expand: bool) -> list[dict] | None:
    """Tree listing under `prefix` (None when it is not a folder of the commit)."""
    base = f"{prefix}/" if prefix else ""
    under = {p: b for p, b in commit.files.items() if p.startswith(base)}
    if prefix and not under:
        return None
    dirs: set[str] = set()
    files: list[str] = []
    for path in under:
        rest = path[len(base) :].split("/")
        for depth in range(1, len(rest)):
            if recursive or depth == 1:
                dirs.add(base + "/".join(rest[:depth]))
        if recursive or len(rest) == 1:
            files.append(path)
    last_commit = {"id": commit.oid, "title": commit.title, "date": commit.date}
    entries = []
    for d in sorted(dirs):
        entry = {
            "type": "directory",
            "oid": hashlib.sha1(f"{commit.oid}:{d}".encode()).hexdigest(),
            "size": 0,
            "path": d,
        }
        entries.append(entry | ({"lastCommit": last_commit} if expand else {}))
    for path in sorted(files):
        blob = commit.files[path]
        entry = {"type": "file", "oid": blob.oid, "size": len(blob.data), "path": path}
        if blob.lfs:
            entry["lfs"] = {
                "oid": blob.sha256,
                "size": len(blob.data),
                "pointerSize": len(lfs_pointer(blob.sha256, len(blob.data))),
            }
        entries.append(entry | ({"lastCommit": last_commit} if expand else {}))
    return entries


def _parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, end) inclusive from `bytes=a-b`, `bytes=a-` or `bytes=-n`; None for no or a multi range."""
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    first, _, last = header[6:].partition("-")
    if first == "":
        start, end = max(0, size - int(last)), size - 1
    else:
        start, end = int(first), (int(last) if last else size - 1)
    if start >= size or start > end:
        raise HubError(416, f"range {header} not satisfiable for {size} bytes")
    return start, min(end, size - 1)
