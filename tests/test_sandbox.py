"""The sandbox against hostile programs: each must end without a pass and leave the host unharmed.

The hostile programs run as one parallel batch (module fixture, 2 workers) so the file stays fast;
each test then checks one program's verdict and the host state it was meant to harm. Isolation
claims are asserted where this machine can provide them (root + unshare + setpriv) and are
otherwise checked to be reported honestly (`network_isolated: False`).
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

from sgpo_curate.sandbox import STATUSES, Sandbox, SandboxConfig, Verdict, detect_isolation

PROJECT = Path(__file__).resolve().parents[1]
HOME = Path(os.path.expanduser("~"))
CAP = 4096
CONFIG = SandboxConfig(timeout_s=2.5, workers=2, memory_mb=512, max_output_bytes=CAP)
FULL_ISOLATION = os.geteuid() == 0 and bool(shutil.which("unshare")) and bool(shutil.which("setpriv"))


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


def hostile_programs(port: int, marker: str) -> dict[str, str]:
    in_project = PROJECT / f"sandbox-escape-{marker}.txt"
    in_home = HOME / f"sandbox-escape-{marker}.txt"
    return {
        "infinite_loop": "while True:\n    pass\n",
        "fork_bomb": (
            "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
        ),
        "memory_bomb": "blocks = []\nwhile True:\n    blocks.append(bytes(128 * 2**20))\n",
        "write_project": f"open({str(in_project)!r}, 'w').write('escaped')\n",
        "write_home": f"open({str(in_home)!r}, 'w').write('escaped')\n",
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
        "kill_parent": "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nassert False\n",
        "kill_host": f"import os, signal\nos.kill({os.getpid()}, signal.SIGKILL)\nassert False\n",
        "kill_everything": "import os, signal\nos.kill(-1, signal.SIGKILL)\nassert False\n",
        "output_flood": "while True:\n    print('x' * 1000)\n",
        "exit_before_tests": "import sys\nsys.exit(0)\nassert 1 == 2, 'the tests'\n",
        "os_exit_before_tests": "import os\nos._exit(0)\nassert 1 == 2, 'the tests'\n",
        "fake_success": (
            "import os\n"
            "print('pass:' + '0' * 32)\nprint('All tests passed!', flush=True)\n"
            "for fd in range(1, 64):\n"
            "    try:\n"
            "        os.write(fd, b'start\\npass:' + b'0' * 32 + b'\\n')\n"
            "    except OSError:\n"
            "        pass\n"
            "os._exit(0)\n"
            "assert 1 == 2, 'the tests'\n"
        ),
        "escape_group": (
            "import os, time\n"
            "if os.fork() == 0:\n"
            "    os.setsid()\n"
            "    time.sleep(60)\n"
            "    os._exit(0)\n"
            "time.sleep(60)\n"
        ),
        "segfault": "import ctypes\nctypes.string_at(0)\n",
        "litter": (
            "import os\n"
            f"for folder in ('/tmp', '/dev/shm', '/var/tmp'):\n"
            f"    os.makedirs(os.path.join(folder, 'sgpo-litter-{marker}', 'deep'))\n"
            f"    open(os.path.join(folder, 'sgpo-litter-{marker}.txt'), 'w').write('x')\n"
            "raise SystemExit(1)\n"
        ),
    }


@pytest.fixture(scope="module")
def hostile():
    """Run every hostile program once, in parallel; yield verdicts and what the host saw."""
    listener = Listener()
    marker = uuid.uuid4().hex
    programs = hostile_programs(listener.port, marker)
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


def test_every_hostile_program_ends_without_a_pass(hostile):
    for name, verdict in hostile["verdicts"].items():
        assert verdict.status in STATUSES
        assert verdict.status not in ("passed", "error"), (name, verdict)


def test_the_host_survives_and_no_sandbox_process_is_left(hostile):
    # This test process is alive (kill_host, kill_parent, kill_everything) and can still start processes.
    assert subprocess.run(["true"]).returncode == 0
    if hostile["isolation"].drop_privileges:
        assert len(hostile["uids"]) == CONFIG.workers
        assert processes_of(hostile["uids"]) == []


def test_infinite_loop_times_out(hostile):
    verdict = hostile["verdicts"]["infinite_loop"]
    assert verdict.status == "timeout"
    assert verdict.metadata["duration_s"] < CONFIG.timeout_s + 2


def test_fork_bomb_is_bounded(hostile):
    verdict = hostile["verdicts"]["fork_bomb"]
    assert verdict.status in ("timeout", "failed", "crashed")
    if hostile["isolation"].drop_privileges:
        assert verdict.metadata["uid"] in hostile["uids"]


def test_memory_bomb_hits_the_address_space_limit(hostile):
    verdict = hostile["verdicts"]["memory_bomb"]
    assert verdict.status in ("failed", "crashed"), verdict
    assert "MemoryError" in verdict.reason or verdict.status == "crashed", verdict


@pytest.mark.skipif(not FULL_ISOLATION, reason="needs root, unshare and setpriv to drop privileges")
def test_writes_outside_scratch_fail_and_leave_nothing(hostile):
    marker = hostile["marker"]
    for name, folder in (("write_project", PROJECT), ("write_home", HOME)):
        verdict = hostile["verdicts"][name]
        assert verdict.status == "failed"
        assert "PermissionError" in verdict.reason
        assert not (folder / f"sandbox-escape-{marker}.txt").exists()


def test_environment_secrets_do_not_reach_the_program(hostile):
    verdict = hostile["verdicts"]["env_secret"]
    assert verdict.status == "failed"
    assert "no token to steal" in verdict.reason
    assert "secret-xyz" not in verdict.stdout + verdict.stderr
    assert "'PATH'" in verdict.stdout  # it did print its environment


def test_network_is_unreachable_where_isolated(hostile):
    verdict = hostile["verdicts"]["socket"]
    assert verdict.status == "failed"
    if hostile["isolation"].network_isolated:
        assert verdict.metadata["network_isolated"] is True
        assert hostile["listener"].connections == 0
    else:
        assert verdict.metadata["network_isolated"] is False


def test_killing_the_parent_does_not_pass(hostile):
    for name in ("kill_parent", "kill_host", "kill_everything"):
        assert hostile["verdicts"][name].status in ("failed", "crashed"), name


def test_output_flood_is_capped(hostile):
    verdict = hostile["verdicts"]["output_flood"]
    assert verdict.status == "timeout"
    assert len(verdict.stdout.encode()) <= CAP
    assert verdict.metadata["stdout_bytes"] > 100 * CAP


def test_exiting_before_the_tests_does_not_pass(hostile):
    verdict = hostile["verdicts"]["exit_before_tests"]
    assert verdict.status == "failed"
    assert "SystemExit(0)" in verdict.reason
    verdict = hostile["verdicts"]["os_exit_before_tests"]
    assert verdict.status == "failed"
    assert verdict.metadata["returncode"] == 0
    assert "no pass marker" in verdict.reason


def test_fake_success_output_does_not_pass(hostile):
    verdict = hostile["verdicts"]["fake_success"]
    assert verdict.status == "failed"
    assert "All tests passed!" in verdict.stdout
    assert verdict.metadata["returncode"] == 0


def test_a_process_that_left_the_group_is_killed(hostile):
    verdict = hostile["verdicts"]["escape_group"]
    assert verdict.status == "timeout"
    if hostile["isolation"].drop_privileges:
        assert processes_of(hostile["uids"]) == []


def test_segfault_is_a_crash(hostile):
    verdict = hostile["verdicts"]["segfault"]
    assert verdict.status == "crashed"
    assert "SIGSEGV" in verdict.reason


@pytest.mark.skipif(not FULL_ISOLATION, reason="needs root, unshare and setpriv to drop privileges")
def test_litter_in_world_writable_folders_is_removed(hostile):
    assert hostile["verdicts"]["litter"].status == "failed"
    for folder in ("/tmp", "/dev/shm", "/var/tmp"):
        assert not os.path.exists(os.path.join(folder, f"sgpo-litter-{hostile['marker']}"))
        assert not os.path.exists(os.path.join(folder, f"sgpo-litter-{hostile['marker']}.txt"))


def test_the_batch_ran_in_parallel(hostile):
    serial = sum(v.metadata["duration_s"] for v in hostile["verdicts"].values())
    assert hostile["elapsed"] < serial * 0.75  # two workers: about half the sum of the runs


@pytest.mark.skipif(not FULL_ISOLATION, reason="needs root, unshare and setpriv")
def test_full_isolation_is_detected_here():
    isolation = detect_isolation(CONFIG)
    assert isolation.network_isolated and isolation.pid_namespace and isolation.drop_privileges


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


def test_scratch_is_home_and_is_removed(sandbox):
    verdict = sandbox.run(
        "import os\nprint(os.getcwd())\nassert os.environ['HOME'] == os.getcwd()\n"
        "open('out.txt', 'w').write('ok')\n"
    )
    assert verdict.status == "passed", verdict
    scratch = verdict.stdout.strip()
    assert scratch and not os.path.exists(scratch)


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
    if sandbox.isolation.drop_privileges:
        assert len({v.metadata["uid"] for v in verdicts}) == 2


@pytest.mark.skipif(not FULL_ISOLATION, reason="uids are leased only as root")
def test_concurrent_sandboxes_never_share_a_uid():
    with Sandbox(SandboxConfig(workers=2)) as first, Sandbox(SandboxConfig(workers=2)) as second:
        seen = [v.metadata["uid"] for box in (first, second) for v in box.run_many(["pass"] * 2)]
        assert set(first.uids).isdisjoint(second.uids)
        assert set(seen) <= set(first.uids) | set(second.uids)


def test_without_network_isolation_it_says_so(caplog):
    config = SandboxConfig(timeout_s=5, workers=1, isolate_network=False)
    with caplog.at_level(logging.WARNING, logger="sgpo_curate.sandbox"):
        with Sandbox(config) as box:
            verdict = box.run("pass")
    assert verdict.status == "passed"
    assert verdict.metadata["network_isolated"] is False
    assert any("WITHOUT network isolation" in r.getMessage() for r in caplog.records)


def test_sandbox_and_verdict_pickle(sandbox):
    sandbox.run("pass")  # its pool exists now
    clone = pickle.loads(pickle.dumps(sandbox))
    assert clone.config == sandbox.config
    assert clone.run("pass").passed
    clone.close()
    verdict = Verdict("failed", "x", metadata={"a": 1})
    assert pickle.loads(pickle.dumps(verdict)) == verdict


@pytest.mark.parametrize("bad", [{"timeout_s": 0}, {"workers": 0}, {"max_processes": 0}, {"memory_mb": -1}])
def test_config_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        SandboxConfig(**bad)


def test_verdict_rejects_unknown_status():
    with pytest.raises(ValueError):
        Verdict("ok", "")
