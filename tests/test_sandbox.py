"""The sandbox against hostile programs: none may pass without its tests passing, none may harm the host.

The hostile programs run as two parallel batches (module fixtures, 2 workers): plain programs, whose
pass means "ran to its end", and judged ones, whose tests run in a separate judge process. Every
forgery program ends with a failing check (`assert 1 == 2, 'the tests'`), so a pass could only be
forged. They are grouped by attack class (the module docstring of `sgpo_curate.sandbox` lists the
classes); each test checks a verdict and, where the program aimed at the host, the host itself.
Isolation claims are asserted where this machine provides them; where a feature is missing the test
says so with a skip reason instead of weakening its assertion.
"""

from __future__ import annotations

import logging
import os
import pickle
import shutil
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

from sgpo_curate import sandbox_harness
from sgpo_curate.sandbox import Sandbox, SandboxConfig, Tests, Verdict, detect_isolation

PROJECT = Path(__file__).resolve().parents[1]
HOME = Path(os.path.expanduser("~"))
CAP = 4096
CONFIG = SandboxConfig(timeout_s=2.5, workers=2, memory_mb=512, max_output_bytes=CAP)
ROOT_TOOLS = os.geteuid() == 0 and bool(shutil.which("unshare"))
TESTS_FAIL = "\nassert 1 == 2, 'the tests'\n"

# Writes `pass:<best guess>` to every descriptor: the first value found that looks like a nonce (32
# hex digits), else zeros. One line only: a wrong marker on the harness's pipe is already tampering,
# so an attacker gets one try. Shared by the forgery programs below.
SPRAY = """
import os, re
def spray(guesses):
    found = [g for g in guesses if re.fullmatch(rb"[0-9a-f]{32}", g)]
    line = b"pass:" + (found or [b"0" * 32])[0] + b"\\n"
    for fd in range(3, 256):
        try:
            os.write(fd, line)
        except OSError:
            pass
"""


def needs(condition: bool, reason: str) -> None:
    if not condition:
        pytest.skip(reason)


def processes_of(uids: list[int]) -> list[int]:
    """Host pids whose real uid is one of `uids` (zombies excluded)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if int(fields["Uid"].split()[0]) in uids and not fields["State"].strip().startswith("Z"):
            found.append(int(entry))
    return found


class Listener:
    """A TCP listener on 127.0.0.1 that records every connection it accepts."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self):
        self._stop.set()
        self._thread.join()
        self.sock.close()


def forgeries() -> dict[str, str]:
    """Programs that try to write a pass marker without reaching their end (class 1-4)."""
    return {
        # The attack of issue 10: walk up the interpreter's frames to the harness, take its secret
        # and its reporting function, write the marker.
        "frame_walk": SPRAY
        + (
            "import sys\n"
            "guesses = []\n"
            "f = sys._getframe().f_back\n"
            "while f is not None:\n"
            "    for value in list(f.f_locals.values()) + list(f.f_globals.values()):\n"
            "        if isinstance(value, (str, bytes)) and len(value) in (32, 64):\n"
            "            guesses.append(value.encode() if isinstance(value, str) else value)\n"
            "    f = f.f_back\n"
            "spray(guesses)\n"
            "os._exit(0)\n"
        )
        + TESTS_FAIL,
        "traceback_frames": SPRAY
        + (
            "try:\n    raise ValueError\nexcept ValueError as e:\n    frame = e.__traceback__.tb_frame\n"
            "guesses = []\n"
            "while frame is not None:\n"
            "    guesses += [v for v in frame.f_locals.values() if isinstance(v, bytes)]\n"
            "    frame = frame.f_back\n"
            "spray(guesses)\nos._exit(0)\n"
        )
        + TESTS_FAIL,
        "code_constants": SPRAY
        + (
            "import sys\nguesses = []\nf = sys._getframe()\n"
            "while f is not None:\n"
            "    guesses += [c for c in f.f_code.co_consts if isinstance(c, bytes)]\n"
            "    guesses += [c.encode() for c in f.f_code.co_consts if isinstance(c, str) and len(c) == 32]\n"
            "    f = f.f_back\n"
            "spray(guesses)\nos._exit(0)\n"
        )
        + TESTS_FAIL,
        "gc_objects": "import gc\nsecrets = [o for o in gc.get_objects() if isinstance(o, bytes)]\n"
        + TESTS_FAIL,
        "gc_referents": "import gc, sys\ngc.get_referents(sys._getframe().f_back)\n" + TESTS_FAIL,
        "gc_referrers": "import gc, sys\ngc.get_referrers(sys)\n" + TESTS_FAIL,
        "own_source_and_harness": SPRAY
        + (
            "import re, sys\ntexts = [open(__file__).read()]\n"
            "for name, module in list(sys.modules.items()):\n"
            "    path = getattr(module, '__file__', None) or ''\n"
            "    if 'harness' in name or 'sandbox' in path:\n"
            "        try:\n            texts.append(open(path).read())\n        except OSError:\n            pass\n"
            "guesses = [m.encode() for t in texts for m in re.findall('[0-9a-f]{32}', t)]\n"
            "spray(guesses)\nos._exit(0)\n"
        )
        + TESTS_FAIL,
        "proc_self_mem": (
            "import re\nmaps = open('/proc/self/maps').read()\nmem = open('/proc/self/mem', 'rb')\n"
            "for line in maps.splitlines():\n"
            "    start, end = (int(x, 16) for x in line.split()[0].split('-'))\n"
            "    try:\n        mem.seek(start)\n        print(re.findall(rb'pass:[0-9a-f]{32}', mem.read(end - start)))\n"
            "    except OSError:\n        pass\n"
        )
        + TESTS_FAIL,
        "proc_self_fd": SPRAY
        + (
            "for name in os.listdir('/proc/self/fd'):\n"
            "    with open('/proc/self/fd/' + name, 'wb') as handle:\n"
            "        handle.write(b'pass:' + b'0' * 32 + b'\\n')\n"
        )
        + TESTS_FAIL,
        "inherited_fds": SPRAY + "spray([])\n" + TESTS_FAIL,
        # Runs to its end, but closes or replaces the descriptor the harness reports on.
        "close_fds_then_finish": "import os\nos.closerange(3, 65536)\n",
        "replace_status_pipe": (
            "import os\nnull = os.open(os.devnull, os.O_WRONLY)\n"
            "for fd in range(3, 64):\n    if fd != null:\n        try:\n            os.dup2(null, fd)\n"
            "        except OSError:\n            pass\n"
        ),
        "leftover_thread": SPRAY
        + (
            "import threading, time\n"
            "def later():\n    time.sleep(0.05)\n    spray([])\n"
            "threading.Thread(target=later).start()\n"
        )
        + TESTS_FAIL,
        "atexit_marker": (
            "import atexit, os\natexit.register(lambda: os.write(1, b'pass:' + b'0' * 32 + b'\\n'))\n"
        )
        + TESTS_FAIL,
        "stdout_replaced": SPRAY
        + (
            "import sys\nclass Out:\n    def write(self, s):\n        return len(s)\n"
            "    def flush(self):\n        spray([])\n"
            "sys.stdout = sys.stderr = Out()\n"
        )
        + TESTS_FAIL,
        "patch_harness_module": SPRAY
        + (
            "import sys\n"
            "for module in list(sys.modules.values()):\n"
            "    for name in ('_line', '_describe', '_flush_std', '_finish_failed', '_check_status_pipe'):\n"
            "        if hasattr(module, name):\n"
            "            setattr(module, name, lambda *a, **k: spray([]))\n"
        )
        + TESTS_FAIL,
        "patch_builtins": (
            "import builtins, sys, os\n"
            "builtins.AssertionError = type('Harmless', (Exception,), {})\n"
            "builtins.print = lambda *a, **k: None\n"
            "sys.exit = os._exit = lambda *a: None\n"
            "sys.excepthook = lambda *a: None\n"
        )
        + TESTS_FAIL,
        "settrace": "import sys\nsys.settrace(lambda *a: None)\n" + TESTS_FAIL,
        "setprofile": "import sys\nsys.setprofile(lambda *a: None)\n" + TESTS_FAIL,
        "thread_settrace": (
            "import threading\nthreading.settrace(lambda *a: None)\n"
            "t = threading.Thread(target=lambda: None)\nt.start()\nt.join()\n"
        )
        + TESTS_FAIL,
        "audit_hook": "import sys\nsys.addaudithook(lambda event, args: None)\n" + TESTS_FAIL,
        "ctypes_memory": ("import ctypes\nprint(ctypes.string_at(id(b'x'), 64))\n") + TESTS_FAIL,
        "test_capi": "import _testcapi\n" + TESTS_FAIL,
        # ctypes classes left in memory by anything that loaded ctypes in this process: reachable
        # through object.__subclasses__() with no import; c_char_p(address).value reads memory with
        # no audit event. Walks the harness frame's value stack (CPython 3.11 layout) for the nonce.
        "ctypes_leftovers": SPRAY
        + (
            "import sys\n"
            "def subclasses(cls, seen):\n"
            "    for sub in type.__subclasses__(cls):\n"
            "        if sub not in seen:\n            seen.add(sub)\n            subclasses(sub, seen)\n"
            "    return seen\n"
            "found = {c.__name__: c for c in subclasses(object, set())}\n"
            "print('ctypes classes:', sorted(n for n in found if 'CData' in n), flush=True)\n"
            "guesses = []\n"
            "if '_SimpleCData' in found:\n"
            "    class Text(found['_SimpleCData']):\n        _type_ = 'z'\n"
            "    def read(address, size):\n"
            "        return b''.join((Text(address + i).value or b'\\0')[:1] for i in range(size))\n"
            "    def pointer(address):\n        return int.from_bytes(read(address, 8), 'little')\n"
            "    f = sys._getframe()\n"
            "    while f is not None and f.f_code.co_name != '_run_to_the_end':\n        f = f.f_back\n"
            "    if f is not None:\n"
            "        frame = pointer(id(f) + 24)\n"
            "        for slot in range(f.f_code.co_nlocals, f.f_code.co_nlocals + 16):\n"
            "            item = pointer(frame + 72 + 8 * slot)\n"
            "            if item > 1 << 16:  # the stack also holds NULLs\n"
            "                guesses.append(read(item + 32, 32))\n"
            "spray(guesses)\nos._exit(0)\n"
        )
        + TESTS_FAIL,
        "subinterpreter": "import _xxsubinterpreters as interpreters\ninterpreters.create()\n" + TESTS_FAIL,
        # Native code the program brings itself: a copy of a stdlib extension in a writable folder.
        "native_extension": (
            "import glob, importlib.machinery, importlib.util, os, shutil, sys\n"
            "for path in glob.glob(os.path.join(sys.base_prefix, 'lib', 'python3*', 'lib-dynload', '*.so')):\n"
            "    name = os.path.basename(path).split('.')[0]\n"
            "    if name not in sys.modules and not name.startswith(('_test', '_ctypes', '_xx')):\n"
            "        break\n"
            "copy = os.path.join(os.getcwd(), os.path.basename(path))\nshutil.copy(path, copy)\n"
            "loader = importlib.machinery.ExtensionFileLoader(name, copy)\n"
            "loader.create_module(importlib.util.spec_from_loader(name, loader))\n"
            "print('loaded', name)\n"
        )
        + TESTS_FAIL,
        # An interpreter without the audit hook (exec is allowed) tries to reach the process that
        # holds the nonce: ptrace and /proc/<pid>/mem.
        "exec_fresh_interpreter": (
            "import os, subprocess, sys\n"
            "spy = (\n"
            "    'import ctypes, os, sys\\n'\n"
            "    'libc = ctypes.CDLL(None, use_errno=True)\\n'\n"
            "    'print(\"ptrace\", libc.ptrace(16, int(sys.argv[1]), 0, 0), os.strerror(ctypes.get_errno()))\\n'\n"
            '    \'print("proc", os.path.exists("/proc/%s/mem" % sys.argv[1]))\\n\'\n'
            ")\n"
            "done = subprocess.run([sys.executable, '-I', '-c', spy, str(os.getpid())], capture_output=True, text=True)\n"
            "print(done.stdout.strip().replace(chr(10), '; '), flush=True)\n"
        )
        + TESTS_FAIL,
        "exec_writes_marker": (
            "import os, sys\n"
            'writer = \'import os\\nfor fd in range(3, 256):\\n    try:\\n        os.write(fd, b"pass:" + b"0" * 32 + b"\\\\n")\\n    except OSError:\\n        pass\\n\'\n'
            "os.execv(sys.executable, [sys.executable, '-I', '-c', writer])\n"
        )
        + TESTS_FAIL,
        "signal_frames": SPRAY
        + (
            "import signal\nfound = []\n"
            "def handler(signum, frame):\n"
            "    while frame is not None:\n"
            "        found.extend(v for v in frame.f_locals.values() if isinstance(v, bytes))\n"
            "        frame = frame.f_back\n"
            "signal.signal(signal.SIGALRM, handler)\nsignal.setitimer(signal.ITIMER_REAL, 0.001, 0.001)\n"
            "for _ in range(200000):\n    pass\n"
            "signal.setitimer(signal.ITIMER_REAL, 0)\nspray(found)\n"
        )
        + TESTS_FAIL,
        "exit_before_tests": "import sys\nsys.exit(0)\n" + TESTS_FAIL,
        "os_exit_before_tests": "import os\nos._exit(0)\n" + TESTS_FAIL,
        "fake_success": (
            "import os\nprint('pass:' + '0' * 32)\nprint('All tests passed!', flush=True)\n"
            "os.write(2, b'ok\\n')\nos._exit(0)\n"
        )
        + TESTS_FAIL,
        "excepthook_swallow": "import sys\nsys.excepthook = lambda *a: None\nraise RuntimeError('the tests')\n",
        "kill_self": "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n" + TESTS_FAIL,
    }


def host_attacks(port: int, marker: str) -> dict[str, str]:
    """Programs that aim at the host (class 6)."""
    in_project = PROJECT / f"sandbox-escape-{marker}.txt"
    in_home = HOME / f"sandbox-escape-{marker}.txt"
    return {
        "infinite_loop": "while True:\n    pass\n",
        "fork_bomb": (
            "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
        ),
        "fork_and_leave": (
            "import os, time\nfor _ in range(5):\n    if os.fork() == 0:\n        os.setsid()\n"
            "        time.sleep(60)\n        os._exit(0)\n"
        )
        + TESTS_FAIL,
        "memory_bomb": "blocks = []\nwhile True:\n    blocks.append(bytes(128 * 2**20))\n",
        "write_project": f"open({str(in_project)!r}, 'w').write('escaped')\n",
        "write_home": f"open({str(in_home)!r}, 'w').write('escaped')\n",
        "read_project": f"print(open({str(PROJECT / 'README.md')!r}).read()[:100])\n",
        "env_secret": (
            "import glob, os\n"
            "print(dict(os.environ))\n"
            "for path in glob.glob('/proc/*/environ'):\n"
            "    try:\n"
            "        print(open(path, 'rb').read())\n"
            "    except OSError:\n"
            "        pass\n"
            "assert 'HF_TOKEN' in os.environ, 'no token to steal'\n"
        ),
        "socket": f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=1).send(b'hi')\n",
        "kill_parent": "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n" + TESTS_FAIL,
        "kill_host": f"import os, signal\nos.kill({os.getpid()}, signal.SIGKILL)\n" + TESTS_FAIL,
        "kill_everything": "import os, signal\nos.kill(-1, signal.SIGKILL)\n" + TESTS_FAIL,
        "output_flood": "while True:\n    print('x' * 1000)\n",
        "escape_group": (
            "import os, time\n"
            "if os.fork() == 0:\n"
            "    os.setsid()\n"
            "    time.sleep(60)\n"
            "    os._exit(0)\n"
            "time.sleep(60)\n"
        ),
        "segfault": "import faulthandler\nfaulthandler._sigsegv()\n",
        # Issue 10: files in world-writable host directories outlived the run.
        "world_writable_host_dirs": (
            "import os\nmade = []\n"
            "for folder in ('/tmp', '/dev/shm', '/var/tmp'):\n"
            "    try:\n"
            f"        os.makedirs(os.path.join(folder, 'sgpo-litter-{marker}', 'deep'))\n"
            f"        open(os.path.join(folder, 'sgpo-litter-{marker}.txt'), 'w').write('x')\n"
            "        made.append(folder)\n"
            "    except OSError:\n"
            "        pass\n"
            "print('made', made)\n"
            "raise SystemExit(1)\n"
        ),
    }


@pytest.fixture(scope="module")
def plain():
    """Run every plain hostile program once, in parallel; yield verdicts and what the host saw."""
    listener = Listener()
    marker = uuid.uuid4().hex
    programs = {**forgeries(), **host_attacks(listener.port, marker)}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_TOKEN", "secret-xyz")
        sandbox = Sandbox(CONFIG)
        start = time.monotonic()
        verdicts = dict(zip(programs, sandbox.run_many(list(programs.values())), strict=True))
        elapsed = time.monotonic() - start
    listener.close()
    yield {
        "verdicts": verdicts,
        "listener": listener,
        "marker": marker,
        "elapsed": elapsed,
        "isolation": sandbox.isolation,
        "uids": sandbox.uids,
    }
    sandbox.close()
    for path in (PROJECT / f"sandbox-escape-{marker}.txt", HOME / f"sandbox-escape-{marker}.txt"):
        path.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox(CONFIG) as box:
        yield box


# ------------------------------------------------------------------------- forged passes (classes 1-4)


def test_no_hostile_program_passes(plain):
    passed = [name for name, verdict in plain["verdicts"].items() if verdict.passed]
    assert passed == []
    errors = {name: v.reason for name, v in plain["verdicts"].items() if v.status == "error"}
    assert errors == {}


@pytest.mark.parametrize(
    "name",
    [
        "frame_walk",
        "traceback_frames",
        "code_constants",
        "own_source_and_harness",
        "inherited_fds",
        "stdout_replaced",
        "signal_frames",
    ],
)
def test_a_forged_marker_is_tampering(plain, name):
    # Frames, tracebacks, code constants, sources and signal frames hold no nonce: what the program
    # writes to the harness's pipe is a guess, and a guess on that pipe is tampering.
    verdict = plain["verdicts"][name]
    assert verdict.status == "tampered", verdict
    assert "status pipe" in verdict.reason


def test_frame_walk_finds_no_secret(plain):
    # The named attack of issue 10: it ran, walked the frames (it reached the spray), and forged nothing.
    verdict = plain["verdicts"]["frame_walk"]
    assert verdict.reason == "a forged pass marker on the status pipe"
    assert verdict.metadata["returncode"] == 0  # it got as far as its os._exit(0)


@pytest.mark.parametrize(
    "name, event",
    [
        ("gc_objects", "gc.get_objects"),
        ("gc_referents", "gc.get_referents"),
        ("gc_referrers", "gc.get_referrers"),
        ("settrace", "sys.settrace"),
        ("setprofile", "sys.setprofile"),
        ("thread_settrace", "sys.settrace"),
        ("audit_hook", "sys.addaudithook"),
        ("ctypes_memory", "import ctypes"),
        ("test_capi", "import _testcapi"),
        ("subinterpreter", "import _xxsubinterpreters"),
    ],
)
def test_reaching_for_interpreter_memory_is_tampering(plain, name, event):
    verdict = plain["verdicts"][name]
    assert verdict.status == "tampered", verdict
    assert verdict.reason.startswith(event)
    assert verdict.metadata["returncode"] == sandbox_harness.TAMPER_EXIT


@pytest.mark.parametrize("name", ["close_fds_then_finish", "replace_status_pipe"])
def test_closing_or_replacing_the_status_pipe_is_tampering(plain, name):
    # These programs do reach their end: what makes them tampered is the descriptor they touched.
    verdict = plain["verdicts"][name]
    assert verdict.status == "tampered", verdict
    assert "status pipe" in verdict.reason


def test_proc_self_is_out_of_reach(plain):
    for name in ("proc_self_mem", "proc_self_fd"):
        verdict = plain["verdicts"][name]
        if plain["isolation"].filesystem_isolated:
            assert verdict.status == "failed", verdict  # there is no /proc in the program's view
            assert "FileNotFoundError" in verdict.reason
        else:
            assert verdict.status == "tampered", verdict
            assert "/proc/" in verdict.reason


def test_native_code_from_a_writable_folder_is_refused(plain):
    needs(
        plain["isolation"].filesystem_isolated,
        "no mount namespace here (writable host folders may allow exec)",
    )
    verdict = plain["verdicts"]["native_extension"]
    assert verdict.status == "failed", verdict
    assert "ImportError" in verdict.reason and "loaded" not in verdict.stdout  # noexec tmpfs


def test_the_seccomp_path_holds_too():
    # As root with drop_privileges=False (and in a user namespace) the program's process keeps uid 0:
    # a child installs the seccomp filter and execs a fresh interpreter for it. The same attacks.
    needs(ROOT_TOOLS, "needs root and unshare")
    needs(os.uname().machine in ("x86_64", "aarch64"), "no seccomp filter on this architecture")
    attacks = forgeries()
    names = ["ctypes_leftovers", "exec_fresh_interpreter", "frame_walk", "gc_objects"]
    with Sandbox(SandboxConfig(timeout_s=5, workers=2, drop_privileges=False)) as box:
        assert box.isolation.seccomp and box.isolation.filesystem_isolated
        leftovers, spy, walk, gc_walk = box.run_many([attacks[n] for n in names])
    assert leftovers.stdout.startswith("ctypes classes: []") and leftovers.status == "tampered"
    assert spy.stdout.strip() == "ptrace -1 Operation not permitted; proc False"
    assert walk.status == "tampered" and gc_walk.status == "tampered"


def test_the_program_process_never_loaded_ctypes(plain):
    # The harness needs ctypes for mounts and seccomp, then execs a fresh interpreter for the program.
    verdict = plain["verdicts"]["ctypes_leftovers"]
    assert verdict.stdout.startswith("ctypes classes: []"), verdict.stdout
    assert (verdict.status, verdict.reason) == ("tampered", "a forged pass marker on the status pipe")


def test_an_interpreter_without_the_hook_reaches_nothing(plain):
    # exec is allowed where there is our own view: the new process has no audit hook, but ptrace is
    # EPERM (seccomp) and there is no /proc; where /proc is the host's, exec is a tamper event.
    verdict = plain["verdicts"]["exec_fresh_interpreter"]
    if plain["isolation"].filesystem_isolated:
        isolation = plain["isolation"]
        needs(isolation.seccomp or isolation.drop_privileges, "neither seccomp nor a uid change here")
        assert verdict.status == "failed", verdict
        assert verdict.stdout.strip() == "ptrace -1 Operation not permitted; proc False"
    else:
        assert verdict.status == "tampered" and verdict.reason.startswith("import _posixsubprocess")
    # An interpreter exec'd in its place inherits the status pipe: what it writes there is tampering.
    assert plain["verdicts"]["exec_writes_marker"].status == "tampered"


def test_ending_early_does_not_pass(plain):
    verdicts = plain["verdicts"]
    assert verdicts["exit_before_tests"].reason == "program exited (SystemExit(0)) before it finished"
    early = verdicts["os_exit_before_tests"]
    assert (early.status, early.metadata["returncode"]) == ("failed", 0)
    assert "no pass marker" in early.reason
    fake = verdicts["fake_success"]
    assert fake.status == "failed" and "All tests passed!" in fake.stdout
    assert verdicts["kill_self"].status == "crashed"


def test_hooks_left_behind_do_not_pass(plain):
    for name in (
        "atexit_marker",
        "leftover_thread",
        "excepthook_swallow",
        "patch_builtins",
        "patch_harness_module",
    ):
        verdict = plain["verdicts"][name]
        assert verdict.status in ("failed", "tampered"), (name, verdict)
    # The harness holds its own AssertionError: the patched one does not stop the assert.
    assert plain["verdicts"]["patch_builtins"].reason == "AssertionError: the tests"
    assert plain["verdicts"]["excepthook_swallow"].reason == "RuntimeError: the tests"


# ----------------------------------------------------------------------------------- the host (class 6)


def test_the_host_survives_and_no_sandbox_process_is_left(plain):
    # This test process is alive (kill_host, kill_parent, kill_everything) and can still start processes.
    assert subprocess.run(["true"]).returncode == 0
    needs(plain["isolation"].drop_privileges, "not root here: programs run as this user, no uid to sweep")
    assert len(plain["uids"]) == 2 * CONFIG.workers
    assert processes_of(plain["uids"]) == []  # fork_bomb, fork_and_leave and escape_group included


def test_infinite_loop_times_out(plain):
    verdict = plain["verdicts"]["infinite_loop"]
    assert verdict.status == "timeout"
    assert verdict.metadata["duration_s"] < CONFIG.timeout_s + 2


def test_fork_bomb_is_bounded(plain):
    verdict = plain["verdicts"]["fork_bomb"]
    assert verdict.status in ("timeout", "failed", "crashed"), verdict
    needs(plain["isolation"].drop_privileges, "not root here: no per-slot uid bounds the fork bomb")
    assert verdict.metadata["uid"] in plain["uids"]


def test_memory_bomb_hits_the_address_space_limit(plain):
    verdict = plain["verdicts"]["memory_bomb"]
    assert (verdict.status, verdict.reason) == ("failed", "MemoryError"), verdict


def test_writes_outside_the_program_view_fail_and_leave_nothing(plain):
    needs(plain["isolation"].drop_privileges, "needs root to run programs as an unprivileged uid")
    marker = plain["marker"]
    for name, folder in (("write_project", PROJECT), ("write_home", HOME)):
        verdict = plain["verdicts"][name]
        assert verdict.status == "failed"
        # Without a view: no permission as the sandbox uid. With one: the folder is not there (or,
        # for a home that holds the interpreter, only the interpreter's read-only directory is).
        assert "PermissionError" in verdict.reason or "FileNotFoundError" in verdict.reason
        assert not (folder / f"sandbox-escape-{marker}.txt").exists()


def test_project_files_are_hidden(plain):
    needs(plain["isolation"].filesystem_isolated, "no mount namespace here: the host's files are visible")
    verdict = plain["verdicts"]["read_project"]
    assert verdict.status == "failed" and "FileNotFoundError" in verdict.reason
    assert verdict.stdout == ""


def test_world_writable_host_directories_keep_nothing(plain):
    marker = plain["marker"]
    verdict = plain["verdicts"]["world_writable_host_dirs"]
    assert verdict.status == "failed"
    for folder in ("/tmp", "/dev/shm", "/var/tmp"):
        assert not os.path.exists(os.path.join(folder, f"sgpo-litter-{marker}"))
        assert not os.path.exists(os.path.join(folder, f"sgpo-litter-{marker}.txt"))
    if plain["isolation"].filesystem_isolated:
        # The writes happened, in the program's own /tmp and /dev/shm (there is no /var/tmp there).
        assert verdict.stdout.strip() == "made ['/tmp', '/dev/shm']"


def test_environment_secrets_do_not_reach_the_program(plain):
    verdict = plain["verdicts"]["env_secret"]
    assert verdict.status in ("failed", "tampered")  # /proc/*/environ is a tamper event without a view
    assert "secret-xyz" not in verdict.stdout + verdict.stderr
    if verdict.status == "failed":
        assert "no token to steal" in verdict.reason
        assert "'PATH'" in verdict.stdout  # it did print its environment


def test_network_is_unreachable(plain):
    needs(plain["isolation"].network_isolated, "no network namespace here")
    verdict = plain["verdicts"]["socket"]
    assert verdict.status == "failed"
    assert verdict.metadata["network_isolated"] is True
    assert plain["listener"].connections == 0


def test_killing_the_parent_does_not_pass(plain):
    for name in ("kill_parent", "kill_host", "kill_everything"):
        assert plain["verdicts"][name].status in ("failed", "crashed"), name


def test_output_flood_is_capped(plain):
    verdict = plain["verdicts"]["output_flood"]
    assert verdict.status == "timeout"
    assert len(verdict.stdout.encode()) <= CAP
    assert verdict.metadata["stdout_bytes"] > 100 * CAP


def test_a_process_that_left_the_group_is_killed(plain):
    verdict = plain["verdicts"]["escape_group"]
    assert verdict.status == "timeout"
    needs(plain["isolation"].drop_privileges, "not root here: no per-slot uid to look for leftovers")
    assert processes_of(plain["uids"]) == []


def test_segfault_is_a_crash(plain):
    verdict = plain["verdicts"]["segfault"]
    assert verdict.status == "crashed"
    assert "SIGSEGV" in verdict.reason


def test_the_batch_ran_in_parallel(plain):
    serial = sum(v.metadata["duration_s"] for v in plain["verdicts"].values())
    assert plain["elapsed"] < serial * 0.75  # two workers: about half the sum of the runs


def test_full_isolation_is_detected_here():
    needs(ROOT_TOOLS, "needs root and unshare for namespaces with unprivileged uids")
    isolation = detect_isolation(CONFIG)
    assert isolation.network_isolated and isolation.pid_namespace and isolation.drop_privileges
    assert isolation.filesystem_isolated
    assert not isolation.seccomp  # as root the uid change (non-dumpable) does seccomp's job


def test_the_program_sees_its_own_filesystem(sandbox, tmp_path):
    needs(sandbox.isolation.filesystem_isolated, "no mount namespace here")
    # Files the host has right now, in its home, its project and its /tmp: none may be visible.
    markers = [folder / f"sgpo-visible-{uuid.uuid4().hex}" for folder in (HOME, PROJECT, tmp_path)]
    for marker in markers:
        marker.write_text("host")
    try:
        verdict = sandbox.run(
            "import os\n"
            "print(sorted(os.listdir('/')))\n"
            "print(os.getcwd(), os.environ['HOME'], os.environ['TMPDIR'], os.listdir('/tmp'))\n"
            "try:\n    open('/usr/sgpo-probe', 'w')\nexcept OSError as e:\n    print(type(e).__name__)\n"
            f"print([os.path.exists(p) for p in {[str(m) for m in markers]!r}])\n"
        )
    finally:
        for marker in markers:
            marker.unlink()
    assert verdict.status == "passed", verdict
    top, where, refused, visible = verdict.stdout.splitlines()
    assert "proc" not in top and "work" in top
    assert where == "/work /work /tmp []"
    assert refused in ("OSError", "PermissionError")  # read-only bind mount (EROFS) or no permission
    assert visible == "[False, False, False]"


# ------------------------------------------------------------------------------- judged mode (class 5)

ADD_TESTS = Tests("assert add(1, 2) == 3\nassert add(-1, 1) == 0\nassert abs(add(0.5, 0.25) - 0.75) < 1e-9\n")


def judged_attacks() -> dict[str, str]:
    """Programs judged by ADD_TESTS: only `correct` and `ctypes_import` may pass."""
    return {
        "correct": "def add(a, b):\n    return a + b\n",
        "wrong": "def add(a, b):\n    return a - b\n",
        "always_equal": (
            "class Anything:\n    def __eq__(self, other):\n        return True\n"
            "    __hash__ = object.__hash__\n    def __sub__(self, other):\n        return 0\n"
            "def add(a, b):\n    return Anything()\n"
        ),
        "int_subclass": (
            "class Int(int):\n    def __eq__(self, other):\n        return True\n    __hash__ = int.__hash__\n"
            "def add(a, b):\n    return Int(0)\n"
        ),
        "patched_builtins": (
            "import builtins\nbuiltins.abs = lambda x: 0\nbuiltins.AssertionError = Warning\n"
            "def add(a, b):\n    return 0\n"
        ),
        "shadowing_abs": "abs = lambda x: 0\ndef add(a, b):\n    return 0\n",
        "exit_at_import": "import os\nos._exit(0)\n",
        "exit_in_call": "import sys\ndef add(a, b):\n    sys.exit(0)\n",
        "kill_in_call": "import os, signal\ndef add(a, b):\n    os.kill(-1, signal.SIGKILL)\n",
        "forge_on_every_fd": SPRAY + "spray([])\ndef add(a, b):\n    return 0\n",
        # The judge's own verdict line, on every descriptor (the trusted pipe must be out of reach).
        "write_judge_verdict": (
            "import os\nfor fd in range(3, 256):\n    try:\n        os.write(fd, b'pass\\n')\n"
            "    except OSError:\n        pass\ndef add(a, b):\n    return 0\n"
        ),
        "json_on_the_reply_pipe": (
            "import os\n"
            "for fd in range(3, 64):\n    try:\n        os.write(fd, b'\\x00\\x00\\x00\\x06[\"ok\"]')\n"
            "    except OSError:\n        pass\n"
            "def add(a, b):\n    return 0\n"
        ),
        # Looks for a piece of the tests (built at run time, so its own source and globals do not
        # hold it) in every harness frame and every file it can read.
        "peek_at_the_tests": (
            "import os, sys\nneedle = ') - ' + str(0.5 + 0.25)\nfound = False\nf = sys._getframe().f_back\n"
            "while f is not None:\n"
            "    found |= needle in repr([v for v in f.f_locals.values() if v is not globals()])\n"
            "    f = f.f_back\n"
            "for root, dirs, files in os.walk('/'):\n"
            "    if root.startswith(('/usr', '/etc', '/proc', '/sys', '/dev', '/root', '/home', sys.prefix)):\n"
            "        dirs[:] = []\n        continue\n"
            "    for name in files:\n        try:\n"
            "            found |= needle.encode() in open(os.path.join(root, name), 'rb').read(1 << 20)\n"
            "        except OSError:\n            pass\n"
            "print('found the tests:', found)\n"
            "def add(a, b):\n    return 0\n"
        ),
        "opaque_answer": "def add(a, b):\n    return lambda: a + b\n",
        "gc_in_call": "import gc\ndef add(a, b):\n    gc.get_objects()\n    return a + b\n",
        # Importing ctypes is harmless here (nothing to steal; numpy does it); reading memory is not.
        "ctypes_import": "import ctypes\ndef add(a, b):\n    return a + b\n",
        "ctypes_read": "import ctypes\ndef add(a, b):\n    return ctypes.string_at(id(a), 8) and a + b\n",
    }


@pytest.fixture(scope="module")
def judged():
    programs = judged_attacks()
    with Sandbox(CONFIG) as box:
        verdicts = box.run_many(list(programs.values()), tests=[ADD_TESTS] * len(programs))
        isolation = box.isolation
    return {"verdicts": dict(zip(programs, verdicts, strict=True)), "isolation": isolation}


def test_judged_only_the_correct_program_passes(judged):
    statuses = {name: v.status for name, v in judged["verdicts"].items()}
    assert [name for name, status in statuses.items() if status == "passed"] == ["correct", "ctypes_import"]
    assert "error" not in statuses.values(), judged["verdicts"]
    assert judged["verdicts"]["correct"].metadata["judged"] is True
    assert judged["verdicts"]["wrong"].reason == "AssertionError"


@pytest.mark.parametrize(
    "name", ["always_equal", "int_subclass", "patched_builtins", "shadowing_abs", "opaque_answer"]
)
def test_judged_comparisons_are_the_judges(judged, name):
    # Answers arrive as exact builtin values (an int subclass as its int) or as handles compared by
    # identity; the tests' `abs` and `AssertionError` are the judge's own.
    verdict = judged["verdicts"][name]
    assert (verdict.status, verdict.reason) == ("failed", "AssertionError"), verdict


def test_judged_program_that_ends_early_fails(judged):
    verdicts = judged["verdicts"]
    assert verdicts["exit_at_import"].status == "failed"
    assert "process ended before the tests" in verdicts["exit_at_import"].reason
    assert verdicts["exit_in_call"].status == "failed"
    assert "SystemExit" in verdicts["exit_in_call"].reason
    assert verdicts["kill_in_call"].status in ("crashed", "failed")


def test_judged_writes_to_the_pipes_are_tampering(judged):
    assert judged["verdicts"]["forge_on_every_fd"].status == "tampered"
    assert judged["verdicts"]["write_judge_verdict"].status == "tampered"
    verdict = judged["verdicts"]["json_on_the_reply_pipe"]
    assert verdict.status == "tampered", verdict
    assert judged["verdicts"]["gc_in_call"].status == "tampered"
    assert judged["verdicts"]["ctypes_read"].status == "tampered"


def test_judged_tests_that_swallow_errors_do_not_pass_a_dead_program(sandbox):
    # Tests that expect errors (`except:`) would swallow the judge's "program ended" error too; the
    # judge remembers that its channel broke, and a broken channel never passes.
    tests = Tests("for x in range(3):\n    try:\n        add(x, 1)\n    except:\n        pass\n")
    dies, raises = "import os\ndef add(a, b):\n    os._exit(0)\n", "def add(a, b):\n    raise ValueError(a)\n"
    died, raised = sandbox.run_many([dies, raises], tests=[tests, tests])
    assert died.status == "failed" and "process ended" in died.reason
    assert raised.status == "passed"  # the control: an exception the tests expect is fine


def test_judged_program_cannot_see_the_tests(judged):
    verdict = judged["verdicts"]["peek_at_the_tests"]
    assert verdict.status == "failed"
    assert "found the tests: False" in verdict.stdout


def test_judged_program_sees_its_arguments_and_the_judge_its_exceptions(sandbox):
    program = (
        "class Node:\n    def __init__(self, value, left=None):\n        self.value, self.left = value, left\n"
        "def depth(node):\n    return 0 if node is None else 1 + depth(node.left)\n"
        "def parse(text):\n    if not text:\n        raise ValueError('empty')\n    return int(text)\n"
        "def counts(xs):\n    return {x: xs.count(x) for x in xs}, (x for x in xs), range(3), b'\\x00', 1e999\n"
    )
    tests = Tests(
        "root = Node(1, Node(2))\nroot.left.left = Node(3)\nassert depth(root) == 3\n"
        "try:\n    parse('')\n    raise RuntimeError('no error')\nexcept ValueError as e:\n    assert str(e) == 'empty'\n"
        "mapping, gen, r, raw, inf = counts([1, 1, 2])\n"
        "assert mapping == {1: 2, 2: 1} and type(mapping) is dict\n"
        "assert list(gen) == [1, 1, 2] and r == range(3) and raw == b'\\x00' and inf == float('inf')\n"
        "assert parse.__name__ == 'parse'\n"
    )
    verdict = sandbox.run(program, tests=tests)
    assert verdict.status == "passed", (verdict, verdict.metadata.get("judge_output"))


def test_judged_prelude_and_program_names(sandbox):
    # A HumanEval-like stub: its helper stays the judge's (the program's `double` is ignored), the
    # function under test comes from the program even though the prelude (and builtins) define it.
    prelude = "def double(x):\n    return 2 * x\ndef sum(xs):\n    '''stub'''\n"
    tests = Tests("assert sum([1, 2]) == double(2) - 1\n", prelude=prelude, program_names=("sum",))
    good = "def double(x):\n    return 0\ndef sum(xs):\n    return xs[0] + xs[1]\n"
    lazy = "def double(x):\n    return 0\ndef sum(xs):\n    return 0\n"  # right only with its own double
    assert [v.status for v in sandbox.run_many([good, lazy], tests=[tests, tests])] == ["passed", "failed"]


# ------------------------------------------------------------------------------------- plain behaviour


def test_results_are_judged_correctly(sandbox):
    programs = [
        "x = 1\nassert x == 1\n",
        "assert 1 == 2, 'nope'\n",
        "def f(:\n",
        "import sys\nsys.exit(3)\n",
        "import sys\nprint(repr(sys.stdin.read()))\n",
        "raise KeyboardInterrupt\n",
    ]
    passed, failed, syntax, exited, stdin, interrupt = sandbox.run_many(programs)
    assert passed.status == "passed" and passed.passed
    assert (failed.status, failed.reason) == ("failed", "AssertionError: nope")
    assert syntax.status == "failed" and syntax.reason.startswith("SyntaxError")
    assert exited.status == "failed" and "SystemExit(3)" in exited.reason
    assert stdin.status == "passed" and stdin.stdout == "''\n"  # the nonce never shows on stdin
    assert interrupt.status == "failed" and "KeyboardInterrupt" in interrupt.reason


def test_scratch_is_home_and_nothing_is_left(sandbox):
    verdict = sandbox.run(
        "import os\nprint(os.getcwd())\nassert os.environ['HOME'] == os.getcwd()\n"
        "open('out.txt', 'w').write('ok')\nassert open(__file__).read().startswith('import os')\n"
    )
    assert verdict.status == "passed", verdict
    scratch = verdict.stdout.strip()
    if sandbox.isolation.filesystem_isolated:
        assert scratch == "/work"  # a directory of the program's own tmpfs
    else:
        assert scratch.startswith(tempfile_root()) and not os.path.exists(scratch)


def tempfile_root() -> str:
    import tempfile

    return tempfile.gettempdir()


def test_module_name_skips_main_blocks(sandbox):
    program = "if __name__ == '__main__':\n    input()\n"
    assert sandbox.run(program).status == "failed"  # EOFError: stdin is /dev/null
    assert sandbox.run(program, module_name="solution").status == "passed"


def test_cpu_limit_is_a_timeout():
    with Sandbox(SandboxConfig(timeout_s=20, cpu_time_s=1, workers=1)) as box:
        verdict = box.run("while True:\n    pass\n")
    assert verdict.status == "timeout"
    assert "CPU" in verdict.reason
    assert verdict.metadata["duration_s"] < 15


def test_parallel_workers_use_distinct_slots(sandbox):
    start = time.monotonic()
    verdicts = sandbox.run_many(["import time\ntime.sleep(0.6)\nprint(1)"] * 4)
    elapsed = time.monotonic() - start
    assert [v.status for v in verdicts] == ["passed"] * 4
    assert elapsed < 0.75 * sum(v.metadata["duration_s"] for v in verdicts)  # two at a time, not one
    needs(sandbox.isolation.drop_privileges, "not root here: every slot runs as this user")
    assert len({v.metadata["uid"] for v in verdicts}) == 2


def test_concurrent_sandboxes_never_share_a_uid():
    needs(os.geteuid() == 0, "uids are leased only as root")
    with Sandbox(SandboxConfig(workers=2)) as first, Sandbox(SandboxConfig(workers=2)) as second:
        seen = [v.metadata["uid"] for box in (first, second) for v in box.run_many(["pass"] * 2)]
        assert set(first.uids).isdisjoint(second.uids)
        assert set(seen) <= set(first.uids) | set(second.uids)


def test_without_isolation_it_says_so(caplog):
    config = SandboxConfig(timeout_s=5, workers=1, isolate_network=False, isolate_filesystem=False)
    with caplog.at_level(logging.WARNING, logger="sgpo_curate.sandbox"):
        with Sandbox(config) as box:
            verdict = box.run("pass")
    assert verdict.status == "passed"
    assert verdict.metadata["network_isolated"] is False
    assert verdict.metadata["filesystem_isolated"] is False
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "WITHOUT network isolation" in messages and "host's filesystem" in messages


def test_sandbox_and_verdict_pickle(sandbox):
    sandbox.run("pass")  # its pool exists now
    clone = pickle.loads(pickle.dumps(sandbox))
    assert clone.config == sandbox.config
    assert clone.run("pass").passed
    clone.close()
    verdict = Verdict("tampered", "x", metadata={"a": 1})
    assert pickle.loads(pickle.dumps(verdict)) == verdict


@pytest.mark.parametrize(
    "bad", [{"timeout_s": 0}, {"workers": 0}, {"max_processes": 0}, {"memory_mb": -1}, {"scratch_mb": 0}]
)
def test_config_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        SandboxConfig(**bad)


def test_verdict_rejects_unknown_status():
    with pytest.raises(ValueError):
        Verdict("ok", "")


def test_run_many_checks_its_arguments(sandbox):
    with pytest.raises(ValueError, match="2 test suites for 1 programs"):
        sandbox.run_many(["pass"], tests=["assert True", None])
    with pytest.raises(TypeError):
        sandbox.run("pass", tests=3)  # type: ignore[arg-type]
