"""Inside the sandbox: the launcher, the program's process and the judge. Standard library only.

`sgpo_curate.sandbox` starts this file as the first code of a fresh `python -I -S` and writes its
orders on stdin (a `marshal`-ed dict: trusted, and no import to pay); its module docstring explains
the design and what can and cannot be forged. This file holds the parts that run inside:

- `main`, the launcher (the new pid namespace's init when there is one; root there, or a user
  namespace's root): starts the program's process, builds the filesystem view (ctypes: mounts),
  starts the judge's process when there are tests, and reports on the trusted pipe how each ended.
- The program's process never descends from a process that loaded ctypes (its classes would stay
  reachable through `object.__subclasses__()`, and `c_char_p(address).value` reads memory without
  any audit event). As root it is forked before the launcher loads ctypes and waits for the view
  (`_program_after_go`); in a user namespace a child installs the seccomp filter and execs a fresh
  interpreter (`_program_process`). Either way `_program_main` drops to the slot's uid (which makes
  the process non-dumpable), sets rlimits, adds the audit hook and runs the program. Plain mode: the
  pass marker is written by `_run_to_the_end`, whose nonce only ever lives on that frame's value
  stack. Judged mode: serves the judge's calls (`_run_served`), answering in plain data.
- `_judge_process`: runs the tests in its own interpreter, with the program's names bound to
  proxies (`Remote`); decodes every answer into exact builtin types before a test sees it; reports
  pass or fail on the trusted pipe.

The host never imports this module at run time (tests import it to unit-test the codec).
"""

from __future__ import annotations

import marshal
import os
import sys

TAMPER_EXIT = 86  # the program's process exits with this after the audit hook caught tampering
NONCE_BYTES = 32
MAX_FRAME = 64 * 2**20  # largest message between the judge and the program's process
MAX_DEPTH = 100  # deepest nesting of a value that crosses between them

# Audit events that reach for the harness's memory, or could read a frame's value stack: each one
# kills the program's process with a tamper report (never raised: a raise would unwind through the
# hook's frame and hand the program a traceback into it).
TAMPER_EVENTS = frozenset(
    {
        "gc.get_objects",
        "gc.get_referrers",
        "gc.get_referents",
        "sys.settrace",
        "sys.setprofile",
        "sys._settraceallthreads",
        "sys._setprofileallthreads",
        "sys.monitoring.register_callback",
        "sys.remote_exec",
        "sys.addaudithook",
        "cpython.remote_debugger_script",
        "cpython.PyInterpreterState_New",  # a subinterpreter would start without this hook
    }
)
# Modules that give raw memory access, test hooks into the interpreter's internals, or
# subinterpreters (which start without the audit hook). Checked on the `import` audit event, which
# also fires when an extension is loaded through its loader directly (the name must match the file).
TAMPER_MODULES = (
    "ctypes",
    "_ctypes",
    "_test",
    "_xxtestfuzz",
    "_xxsubinterpreters",
    "_xxinterpchannels",
    "_interpreters",
    "_interpchannels",
    "_interpqueues",
    "concurrent.interpreters",
)
# Ways to start another interpreter that has no audit hook: harmless in our own filesystem view (no
# /proc, and seccomp denies ptrace), tamper events where the host's /proc is visible (an exec'd
# process there could open /proc/<pid>/mem of a process of the program).
EXEC_EVENTS = frozenset({"os.exec", "os.posix_spawn", "os.spawn", "os.system", "subprocess.Popen"})
EXEC_MODULES = ("_posixsubprocess",)

# Syscalls the program's process may not make (x86_64, aarch64): reading or writing other processes'
# memory (so a process without the audit hook - one the program execs - can never reach the one that
# holds the nonce), namespaces and mounts, kernel keyrings, io_uring, module loading. Refused with
# EPERM. exec itself stays allowed: the harness execs the program's interpreter after installing the
# filter, and a new image starts with none of the old one's memory.
SECCOMP_DENY = {
    "ptrace": (101, 117),
    "process_vm_readv": (310, 270),
    "process_vm_writev": (311, 271),
    "pidfd_getfd": (438, 438),
    "kcmp": (312, 272),
    "bpf": (321, 280),
    "perf_event_open": (298, 241),
    "userfaultfd": (323, 282),
    "keyctl": (250, 219),
    "add_key": (248, 217),
    "request_key": (249, 218),
    "mount": (165, 40),
    "umount2": (166, 39),
    "pivot_root": (155, 41),
    "chroot": (161, 51),
    "unshare": (272, 97),
    "setns": (308, 268),
    "init_module": (175, 105),
    "finit_module": (313, 273),
    "delete_module": (176, 106),
    "kexec_load": (246, 104),
    "kexec_file_load": (320, 294),
    "reboot": (169, 142),
    "io_uring_setup": (425, 425),
    "io_uring_enter": (426, 426),
    "io_uring_register": (427, 427),
    "open_tree": (428, 428),
    "move_mount": (429, 429),
    "fsopen": (430, 430),
    "fsconfig": (431, 431),
    "fsmount": (432, 432),
    "fspick": (433, 433),
    "mount_setattr": (442, 442),
    "personality": (135, 92),
    "swapon": (167, 224),
    "swapoff": (168, 225),
    "acct": (163, 89),
    "quotactl": (179, 60),
}
AUDIT_ARCH = {"x86_64": (0xC000003E, 0), "aarch64": (0xC00000B7, 1)}


# --------------------------------------------------------------------------------------------- launcher


def main() -> None:
    """The launcher: read the orders, build the view, start the processes, report how they ended.

    The program's process must never descend from a process that loaded ctypes (whose classes stay
    reachable through `object.__subclasses__()`: `c_char_p(address).value` reads memory with no
    audit event). As root it is forked first, before ctypes is loaded, and waits until the view is
    built; its own uid change then makes it non-dumpable, which the kernel enforces against ptrace,
    process_vm_readv, pidfd_getfd and /proc/<pid>/mem. Otherwise (a user namespace's root keeps uid
    0 and stays dumpable) a child installs a seccomp filter that denies those and execs a fresh
    interpreter for the program.
    """
    config = marshal.loads(sys.stdin.buffer.read())
    _null_stdin()
    trusted = config["fds"]["trusted"]
    judged = config["mode"] == "judged"
    pipes = (os.pipe(), os.pipe()) if judged else ((-1, -1), (-1, -1))  # (to program, to judge)
    if config["filesystem"]:
        config["root"] = _mountpoint(_view_binds(config["site_packages"]))
    # A venv's `python` link may lead outside the view: without site-packages the real binary does.
    config["interpreter"] = sys.executable if config["site_packages"] else os.path.realpath(sys.executable)
    direct = config["program_uid"] is not None and _setuid_makes_undumpable()
    go = os.pipe() if direct else (-1, -1)
    if direct:
        program = _fork(lambda: _program_after_go(config, go, pipes[0][0], pipes[1][1]))
        os.close(go[0])
    try:
        import resource  # noqa: F401 - loaded once here, before the view hides the host and uids change

        _libc()
        if judged:
            import _json  # noqa: F401 - both processes need these: loaded once, shared by the fork
            import _pickle  # noqa: F401 - (the C modules: `json` and `pickle` would import `re`)
        if not direct:
            config["harness_code"] = _harness_code()  # the exec'd interpreter runs it
        if config["filesystem"]:
            _build_view(config)
        if not direct:
            program = _fork(lambda: _program_process(config, pipes[0][0], pipes[1][1]))
        judge = _start_judge(config, pipes) if judged else None
    except Exception as exc:  # the sandbox's own failure: reported, never the program's
        _line(trusted, f"error:{type(exc).__name__}: {exc}")
        os._exit(2)  # a waiting program process sees the go pipe close, and ends
    _close_launcher_fds(config, pipes)
    if direct:
        os.write(go[1], b"g")
        os.close(go[1])
    _line(trusted, "ready")
    _wait((program, judge), trusted)
    os._exit(0)


def _setuid_makes_undumpable() -> bool:
    """A uid change makes a process non-dumpable unless fs.suid_dumpable is 1 (then: seccomp path)."""
    try:
        with open("/proc/sys/fs/suid_dumpable") as handle:
            return handle.read().strip() != "1"
    except OSError:
        return False


def _null_stdin() -> None:
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)


def _line(fd: int, text: str) -> None:
    os.write(fd, text.replace("\n", " ")[:1000].encode("utf-8", "replace") + b"\n")


def _start_judge(config: dict, pipes) -> int:
    import signal

    # Set before the fork, so that the judge has it from its first instruction: the launcher
    # sends SIGUSR1 when the program's process ends, and the judge must not die of it.
    signal.signal(signal.SIGUSR1, _program_ended)
    return _fork(lambda: _judge_process(config, pipes[0][1], pipes[1][0]))


def _close_launcher_fds(config: dict, pipes) -> None:
    """The launcher keeps only the trusted pipe: every other end belongs to one of its children."""
    fds = config["fds"]
    for fd in (*pipes[0], *pipes[1], fds["status"], fds["nonce"], fds["tests"], fds["judge_log"]):
        if fd is not None and fd >= 0:
            os.close(fd)


def _fork(body) -> int:
    pid = os.fork()
    if pid == 0:
        try:
            body()
        except BaseException as exc:  # noqa: BLE001 - a child must never return into the launcher
            try:
                os.write(2, f"sandbox harness: {type(exc).__name__}: {exc}\n".encode("utf-8", "replace"))
            finally:
                os._exit(3)
        os._exit(0)
    return pid


def _wait(children: tuple[int, int | None], trusted: int) -> None:
    """Reap until both processes ended (orphans of a pid namespace are reaped too, and ignored)."""
    program, judge = children
    names = {program: "program"} | ({judge: "judge"} if judge else {})
    while names:
        try:
            pid, status, usage = os.wait4(-1, 0)
        except ChildProcessError:
            break
        name = names.pop(pid, None)
        if name is None:
            continue
        cpu = usage.ru_utime + usage.ru_stime
        _line(trusted, f"exit:{name}:{os.waitstatus_to_exitcode(status)}:{cpu:.4f}")
        if name == "program" and judge in names:
            try:
                os.kill(judge, 10)  # SIGUSR1: no more answers will come, the judge stops waiting
            except ProcessLookupError:
                pass


# ------------------------------------------------------------------------------------ filesystem view

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
DEVICES = ("null", "zero", "full", "random", "urandom")


_LIBC: list = []


def _libc():
    """(libc, ctypes), loaded once per process (the forked processes inherit it)."""
    if not _LIBC:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]
        _LIBC.extend((libc, ctypes))
    return _LIBC[0], _LIBC[1]


def _mount(libc, ctypes, source, target, fstype, flags, data=None) -> None:
    enc = lambda s: None if s is None else s.encode()  # noqa: E731
    if libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"mount {source} on {target}: {os.strerror(errno)}")


def _build_view(config: dict) -> None:
    """A new root: a size-limited tmpfs with the interpreter's directories bound read-only, a few
    device nodes, private /tmp, /dev/shm and /work; nothing else of the host (no home, no project, no
    /proc). Runs in the launcher's private mount namespace, so nothing here is seen by the host."""
    libc, ctypes = _libc()
    spec = config["filesystem"]
    binds = _view_binds(spec["site_packages"])
    root = config["root"]
    _mount(libc, ctypes, None, "/", None, MS_REC | MS_PRIVATE)
    # noexec: a native extension the program writes (to /tmp, /work) cannot be loaded, so native
    # code only ever comes from the read-only system directories.
    flags = MS_NOSUID | MS_NODEV | MS_NOEXEC
    _mount(libc, ctypes, "tmpfs", root, "tmpfs", flags, f"size={spec['size_mb']}m,mode=755")
    for top in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        host = "/" + top
        if os.path.islink(host):
            os.symlink(os.readlink(host), root + host)
        elif os.path.isdir(host):
            binds.append(host)
    for source in binds:
        _bind(libc, ctypes, source, root + source, read_only=True)
    _make_dev(libc, ctypes, root)
    for path, mode in (("/tmp", 0o1777), ("/dev/shm", 0o1777), ("/work", 0o700)):
        os.makedirs(root + path, exist_ok=True)
        os.chmod(root + path, mode)
    uid = config["program_uid"]
    if uid is not None:
        os.chown(root + "/work", uid, uid)
    os.chroot(root)
    os.chdir("/")


def _view_binds(site_packages: bool) -> list[str]:
    """What the interpreter needs: /usr, /etc, and its own prefix (a pyenv or venv outside /usr)."""
    binds = ["/usr", "/etc"]
    prefixes = [sys.base_prefix] + ([sys.prefix] if site_packages else [])
    for prefix in prefixes:
        prefix = os.path.realpath(prefix)
        if not any(prefix == b or prefix.startswith(b + "/") for b in binds):
            binds.append(prefix)
    return binds


def _mountpoint(binds: list[str]) -> str:
    """An existing directory to mount the new root on, that hides none of the directories to bind."""
    for candidate in ("/tmp", "/mnt", "/media", "/srv", "/opt", "/var/tmp", "/home"):
        inside = [b for b in binds if b == candidate or b.startswith(candidate + "/")]
        if os.path.isdir(candidate) and not os.path.islink(candidate) and not inside:
            return candidate
    raise RuntimeError("no directory to mount the sandbox's root on")


def _bind(libc, ctypes, source: str, target: str, read_only: bool) -> None:
    if os.path.isdir(source):
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        open(target, "a").close()
    _mount(libc, ctypes, source, target, None, MS_BIND | MS_REC)
    if read_only:
        # A remount must keep the flags the source mount has (a user namespace may not drop them).
        kept = os.statvfs(source).f_flag
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID  # no setuid binary gains anything here
        for st, ms in ((os.ST_NOSUID, MS_NOSUID), (os.ST_NODEV, MS_NODEV), (os.ST_NOEXEC, MS_NOEXEC)):
            flags |= ms if kept & st else 0
        flags |= kept & (os.ST_NOATIME | os.ST_NODIRATIME)
        if kept & os.ST_RELATIME:
            flags |= 1 << 21
        _mount(libc, ctypes, None, target, None, flags)


def _make_dev(libc, ctypes, root: str) -> None:
    os.makedirs(root + "/dev", exist_ok=True)
    for name in DEVICES:
        if os.path.exists("/dev/" + name):
            _bind(libc, ctypes, "/dev/" + name, root + "/dev/" + name, read_only=False)


# ------------------------------------------------------------------------------- the program's process


def _program_orders(config: dict, requests: int, replies: int, seccomp: bool) -> dict:
    """What the program's process needs to know (never the tests, never the nonce)."""
    fds = config["fds"]
    plain = config["mode"] == "plain"
    orders = {
        key: config[key]
        for key in (
            "mode",
            "program",
            "module_name",
            "limits",
            "program_uid",
            "filesystem",
            "scratch",
            "interpreter",
        )
    }
    orders.update(
        fds={
            "status": fds["status"],
            "nonce": fds["nonce"] if plain else -1,
            "requests": requests,
            "replies": replies,
        },
        guard={"proc_visible": config["proc_visible"], "judged": not plain, "seccomp": seccomp},
    )
    return orders


def _program_after_go(config: dict, go: tuple[int, int], requests: int, replies: int) -> None:
    """Root path: forked before the launcher loaded ctypes; waits for the view, enters it, runs."""
    os.close(go[1])
    if os.read(go[0], 1) != b"g":
        os._exit(2)  # the launcher could not build the sandbox: nothing to run
    os.close(go[0])
    if config["filesystem"]:
        os.chroot(config["root"])
        os.chdir("/")
    _program_main(_program_orders(config, requests, replies, seccomp=False))


def _program_process(config: dict, requests: int, replies: int) -> None:
    """User-namespace path: the setup that needs ctypes (capabilities, seccomp), then exec of a clean
    interpreter that runs `_program_main`."""
    if config["drop_capabilities"]:
        _drop_capabilities()
    _prctl(38, 1)  # PR_SET_NO_NEW_PRIVS: no exec can gain privileges (and seccomp needs it)
    seccomp = _install_seccomp() if config["seccomp"] else False
    orders = _program_orders(config, requests, replies, seccomp)
    handoff = os.memfd_create("sgpo-sandbox-orders", 0)  # no CLOEXEC: the new image reads it
    _write_all(handoff, marshal.dumps((config["harness_code"], orders)))
    os.lseek(handoff, 0, os.SEEK_SET)
    kept = {0, 1, 2, handoff, *orders["fds"].values()}
    _close_fds_except(kept)
    for fd in kept - {-1}:
        os.set_inheritable(fd, True)  # the launcher's own pipes are close-on-exec (PEP 446)
    python = config["interpreter"]
    flags = ["-I"] + ([] if config["site_packages"] else ["-S"])
    boot = (
        f"import marshal, os; data = os.read({handoff}, 1 << 30); os.close({handoff}); "
        "code, orders = marshal.loads(data); harness = {'__name__': 'sandbox_harness'}; "
        "exec(marshal.loads(code), harness); harness['_program_main'](orders)"
    )
    os.execv(python, [python, *flags, "-c", boot])


def _harness_code() -> bytes:
    """This module's code, marshaled: from its bytecode cache when fresh, else compiled now."""
    import importlib._bootstrap_external as external  # frozen: already loaded at start-up

    source_path = os.path.abspath(__file__)
    cached = external.cache_from_source(source_path)
    try:
        with open(cached, "rb") as handle:
            data = handle.read()
        stat = os.stat(source_path)
        fresh = data[:4] == external.MAGIC_NUMBER and int.from_bytes(data[4:8], "little") == 0
        fresh = fresh and int.from_bytes(data[8:12], "little") == int(stat.st_mtime) & 0xFFFFFFFF
        if fresh and int.from_bytes(data[12:16], "little") == stat.st_size & 0xFFFFFFFF:
            return data[16:]
    except OSError:
        pass
    with open(source_path, encoding="utf-8") as handle:
        return marshal.dumps(compile(handle.read(), source_path, "exec", dont_inherit=True))


def _program_main(orders: dict) -> None:
    """The program's process (ctypes never loaded in it): uid, limits, audit hook, run."""
    fds = orders["fds"]
    status = fds["status"]
    plain = orders["mode"] == "plain"
    if orders["program_uid"] is not None:
        uid = orders["program_uid"]
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)  # a credential change also makes the process non-dumpable
    _close_fds_except({0, 1, 2, *fds.values()})
    sys.executable = orders["interpreter"]  # one that exists in the program's view
    _enter_workdir(orders)
    _write_source(orders["program"])
    _set_limits(orders["limits"])
    guard = orders["guard"]
    _install_guard(status, proc_visible=guard["proc_visible"], judged=guard["judged"])
    if hasattr(sys, "set_int_max_str_digits"):
        sys.set_int_max_str_digits(0)  # an answer may be a big int; the judge accepts it too
    _line(status, f"start:seccomp={int(guard['seccomp'])}")
    module, namespace = _new_module(orders["module_name"], "program.py")
    try:
        code = compile(orders["program"], "program.py", "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as error:
        _finish_failed(status, error, None if plain else fds["replies"])
    if plain:
        _run_plain(code, namespace, status, fds["nonce"])
    else:
        _run_served(code, module, namespace, status, fds["requests"], fds["replies"])


def _write_source(program: str) -> None:
    """`program.py` in the working directory, so `__file__` exists (it holds no secret: the nonce is
    not in it, and in judged mode neither are the tests)."""
    try:
        with open("program.py", "w", encoding="utf-8") as handle:
            handle.write(program)
    except OSError:
        pass


def _become(config: dict, uid: int | None) -> None:
    """The judge's drop: to the slot's judge uid (root mode), or of every capability (a user
    namespace's root)."""
    if uid is not None:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    elif config["drop_capabilities"]:
        _drop_capabilities()
    _prctl(38, 1)  # PR_SET_NO_NEW_PRIVS
    if not config["filesystem"]:
        _prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL: die with the launcher (no pid namespace to do it)


def _prctl(option: int, value: int) -> bool:
    try:
        libc, _ = _libc()
        return libc.prctl(option, value, 0, 0, 0) == 0
    except OSError:
        return False


def _drop_capabilities() -> None:
    libc, ctypes = _libc()
    for cap in range(64):
        libc.prctl(24, cap, 0, 0, 0)  # PR_CAPBSET_DROP (fails harmlessly past the last capability)

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [
            ("effective", ctypes.c_uint32),
            ("permitted", ctypes.c_uint32),
            ("inheritable", ctypes.c_uint32),
        ]

    header, data = Header(0x20080522, 0), (Data * 2)()  # _LINUX_CAPABILITY_VERSION_3, all zero
    if libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset: could not drop capabilities")


def _enter_workdir(config: dict) -> None:
    home = "/work" if config["filesystem"] else config["scratch"]
    os.chdir(home)
    os.environ["HOME"] = home
    os.environ["TMPDIR"] = "/tmp" if config["filesystem"] else home


def _close_fds_except(keep: set[int]) -> None:
    keep = sorted(fd for fd in keep if fd is not None and fd >= 0)
    low = 3
    for fd in keep:
        if fd >= low:
            os.closerange(low, fd)
            low = fd + 1
    os.closerange(low, 65536)


def _set_limits(limits: dict) -> None:
    import resource

    values = [
        (resource.RLIMIT_CPU, (limits["cpu"], limits["cpu"] + 1)),
        (resource.RLIMIT_CORE, (0, 0)),
        (resource.RLIMIT_FSIZE, (limits["fsize"], limits["fsize"])),
        (resource.RLIMIT_NPROC, (limits["nproc"], limits["nproc"])),
    ]
    if limits["memory"] > 0:
        values.append((resource.RLIMIT_AS, (limits["memory"], limits["memory"])))
    for which, value in values:
        resource.setrlimit(which, value)


def _seccomp_program(arch: str) -> bytes:
    """A classic BPF filter: other ABIs are killed; the listed syscalls fail with EPERM; all else runs."""
    import errno
    import struct

    audit_arch, column = AUDIT_ARCH[arch]
    numbers = sorted({pair[column] for pair in SECCOMP_DENY.values()})
    ld_abs, jeq, jge, ret = 0x20, 0x15, 0x35, 0x06
    allow, deny, kill = 0x7FFF0000, 0x00050000 | errno.EPERM, 0x80000000
    n = len(numbers)
    # Layout: 0 load arch; 1 arch check; 2 load nr; 3 x32 check; 4.. one jeq each; then allow, deny, kill.
    code = [(ld_abs, 0, 0, 4), (jeq, 0, n + 4, audit_arch), (ld_abs, 0, 0, 0)]
    code.append((jge, n + 1, 0, 0x40000000) if arch == "x86_64" else (jeq, 0, 0, 0xFFFFFFFF))
    for i, number in enumerate(numbers):
        code.append((jeq, n - i, 0, number))  # to `deny`, which sits n - i instructions after this one
    code += [(ret, 0, 0, allow), (ret, 0, 0, deny), (ret, 0, 0, kill)]
    return b"".join(struct.pack("HBBI", *instruction) for instruction in code)


def _install_seccomp() -> bool:
    """Install the filter on this process (children inherit it; nothing can remove it)."""
    arch = os.uname().machine
    if arch not in AUDIT_ARCH:
        return False
    libc, ctypes = _libc()
    program = _seccomp_program(arch)
    buffer = ctypes.create_string_buffer(program, len(program))

    class Fprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = Fprog(len(program) // 8, ctypes.addressof(buffer))
    if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS, required for an unprivileged filter
        return False
    return libc.prctl(22, 2, ctypes.byref(fprog), 0, 0) == 0  # PR_SET_SECCOMP, SECCOMP_MODE_FILTER


# ctypes events that only load libraries and look up symbols (numpy and torch do it at import); what
# reads or writes memory or calls a foreign function is everything else under "ctypes.".
CTYPES_LOADING = frozenset({"ctypes.dlopen", "ctypes.dlsym", "ctypes.dlsym/handle"})


def _install_guard(status: int, proc_visible: bool, judged: bool) -> None:
    """The audit hook: it holds no secret and never calls the program's code; on an event that reaches
    for the interpreter's memory it reports tampering and ends the process on the spot.

    In judged mode the program's process holds nothing to steal, so importing ctypes (as numpy does)
    is allowed there and only its memory and call events are reported; in plain mode ctypes is
    refused outright: `c_char_p(address).value` reads memory without raising any audit event.
    """
    write, exit_, tamper_events = os.write, os._exit, TAMPER_EVENTS
    blocked_modules = tuple(m for m in TAMPER_MODULES if not (judged and "ctypes" in m))
    blocked_modules += EXEC_MODULES if proc_visible else ()
    exec_events = EXEC_EVENTS if proc_visible else frozenset()
    ctypes_allowed = CTYPES_LOADING if judged else frozenset()
    str_, bytes_ = str, bytes

    def tamper(what: str) -> None:
        write(status, b"tamper:" + what.encode("ascii", "replace")[:200] + b"\n")
        exit_(TAMPER_EXIT)

    def guard(event, args):
        try:
            if event in tamper_events or event in exec_events:
                tamper(event)
            elif event.startswith("ctypes.") and event not in ctypes_allowed:
                tamper(event)
            elif event == "import":
                name = args[0]
                if type(name) is str_ and name.startswith(blocked_modules):
                    tamper("import " + name)
            elif proc_visible and (event == "open" or event == "os.chdir" or event == "os.symlink"):
                path = args[0]
                if type(path) is bytes_:
                    path = path.decode("latin-1")
                if type(path) is str_ and _reaches_process_internals(path):
                    tamper(event + " " + path)
        except BaseException:  # noqa: BLE001 - whatever went wrong in here, the process ends here
            exit_(TAMPER_EXIT)

    sys.addaudithook(guard)


def _reaches_process_internals(path: str) -> bool:
    """Without our own filesystem view, /proc is the host's: a path into a process's entries (its
    memory, descriptors, environment) or onto /dev/fd is tampering. Pure string checks (no code that a
    program could have patched)."""
    if path.startswith(("/dev/fd", "/dev/std")) or path in ("/proc", "/proc/"):
        return True
    start = path.find("/proc/")
    if start < 0:
        return False
    rest = path[start + 6 :]
    head = rest.split("/", 1)[0]
    return head in ("self", "thread-self") or head.isdigit()


def _new_module(name: str, filename: str):
    module = type(sys)(name)
    module.__file__ = filename
    sys.modules[name] = module
    return module, module.__dict__


def _execute(code, namespace) -> bytes:
    exec(code, namespace)
    return b"\n"


def _take(fd: int, read=os.read, close=os.close) -> bytes:
    data = read(fd, NONCE_BYTES)
    close(fd)
    return data


def _run_to_the_end(
    code,
    namespace,
    status,
    nonce_fd,
    write=os.write,
    take=_take,
    run=_execute,
    join=bytes.__add__,
    caught=BaseException,
):
    """Run the program; only if its code object returns normally, write `pass:<nonce>`.

    The nonce is read from its pipe as an argument in the middle of this one expression, before the
    program's first line, and stays on this frame's value stack until the program returned: it is in
    no variable, attribute, closure or global. Python offers no way to read a frame's value stack
    (`f_locals` does not include it); the ways that do (`gc.get_referents`, ctypes, /proc/self/mem,
    a debugger through exec or ptrace) are cut by the audit hook and the seccomp filter. If the
    program raises, exits or is killed, the expression never completes and nothing is written.
    """
    try:
        write(status, join(b"pass:", join(take(nonce_fd), run(code, namespace))))
    except caught as error:
        return error
    return None


def _run_plain(code, namespace, status: int, nonce_fd: int) -> None:
    identity = os.fstat(status).st_ino
    error = _run_to_the_end(code, namespace, status, nonce_fd)
    _flush_std()
    _check_status_pipe(status, identity)
    if error is None:
        os._exit(0)
    _finish_failed(status, error, None)


def _check_status_pipe(status: int, identity: int) -> None:
    """Closing or replacing the status pipe (a descriptor the program was not given) is tampering."""
    try:
        same = os.fstat(status).st_ino == identity
    except OSError:
        same = False
    if not same:
        os._exit(TAMPER_EXIT)


def _flush_std() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:  # noqa: BLE001 - the program may have replaced or closed them
            pass


def _describe(error: BaseException) -> str:
    if isinstance(error, SystemExit):
        return f"program exited (SystemExit({error.code!r})) before it finished"
    try:
        message = str(error).splitlines()[0][:200] if str(error) else ""
    except BaseException:  # noqa: BLE001
        message = ""
    return type(error).__name__ + (": " + message if message else "")


def _finish_failed(status: int, error: BaseException, replies: int | None) -> None:
    try:
        import traceback

        traceback.print_exception(type(error), error, error.__traceback__, limit=-3)
    except BaseException:  # noqa: BLE001
        pass
    reason = _describe(error)
    _flush_std()
    if replies is not None:
        try:
            _send(replies, ["failed", reason])
        except OSError:
            pass
    try:
        _line(status, "fail:" + reason)
    except OSError:
        os._exit(TAMPER_EXIT)
    os._exit(1)


# ------------------------------------------------------------------------ judged mode: serving calls


def _run_served(code, module, namespace, status: int, requests: int, replies: int) -> None:
    """Load the program, then answer the judge's requests until it closes its end."""
    try:
        exec(code, namespace)
    except BaseException as error:  # noqa: BLE001 - the program failed to load: the judge is told
        _finish_failed(status, error, replies)
    _send(replies, ["ready"])
    server = _Server(module)
    try:
        while (request := _receive(requests)) is not None:
            _send(replies, server.answer(request))
    except (OSError, EOFError, MalformedReply):
        pass  # the judge went away: nothing left to answer
    _flush_std()
    os._exit(0)


class _Server:
    """Performs one operation of the judge on the program's module or on an object it returned."""

    def __init__(self, module):
        import _pickle

        self.module = module
        self.handles: list = []
        handles = self.handles

        class Unpickler(_pickle.Unpickler):
            def persistent_load(self, pid):
                return handles[pid]

        self.unpickler = Unpickler

    def answer(self, request: bytes) -> bytes:
        """The reply to one pickled request, as JSON bytes."""
        import io

        try:
            op, *operands = self.unpickler(io.BytesIO(request)).load()
            reply = ["ok", encode(self.perform(op, operands), self.handles)]
            payload = to_json(reply).encode()
            if len(payload) > MAX_FRAME:
                raise ValueError(f"the answer is too large to send ({len(payload)} bytes)")
            return payload
        except StopIteration:
            return b'["stop"]'
        except BaseException as error:  # noqa: BLE001 - everything the program raises goes back as data
            return to_json(["raise", type(error).__name__, _describe(error)]).encode()

    def perform(self, op: str, operands: list):
        if op == "get":
            (name,) = operands
            try:
                return getattr(self.module, name)
            except AttributeError:
                raise NameError(f"name {name!r} is not defined") from None
        target, *rest = operands
        if op == "call":
            args, kwargs = rest
            return target(*args, **kwargs)
        if op == "getattr":
            return getattr(target, rest[0])
        if op == "setattr":
            setattr(target, rest[0], rest[1])
            return None
        if op == "getitem":
            return target[rest[0]]
        if op == "setitem":
            target[rest[0]] = rest[1]
            return None
        if op == "iter":
            return _Opaque(iter(target))
        if op == "next":
            return next(target)
        unary = {"len": len, "bool": bool, "str": str, "repr": repr, "int": int, "float": float}
        if op in unary:
            return unary[op](target)
        if op == "index":
            return target.__index__()
        raise ValueError(f"unknown operation {op!r}")


class _Opaque:
    """Marks a value that must cross as a handle even if it is a plain container (an iterator)."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value


# ------------------------------------------------------------------------------------------ the codec
#
# A value crosses from the program's process to the judge as JSON. Strings, ints, floats, booleans
# and None are themselves; everything else is a list whose first item is a tag. Anything that is not
# plain data (a function, an instance of the program's classes) crosses as a handle `["H", n]`: the
# judge can call it, read its attributes, iterate it, but never compare it by the program's `__eq__`.


def encode(value, handles: list, depth: int = 0):
    """Plain data of `value` (instances of builtin types, subclasses reduced to their base type)."""
    if depth > MAX_DEPTH:
        raise ValueError("value nested too deeply to send")
    if value is None or value is True or value is False:
        return value
    if isinstance(value, _Opaque):
        handles.append(value.value)
        return ["H", len(handles) - 1]
    for kind, tag in _SCALARS:
        if isinstance(value, kind):
            return _encode_scalar(value, kind, tag)
    for kind, tag, items in _CONTAINERS or _containers():
        if isinstance(value, kind):
            return [tag, [encode(item, handles, depth + 1) for item in items(value)]]
    handles.append(value)
    return ["H", len(handles) - 1]


_SCALARS = ((bool, "b"), (int, "i"), (float, "f"), (complex, "c"), (str, "s"), (bytes, "y"), (bytearray, "Y"))


def _encode_scalar(value, kind, tag):
    if kind is bool:
        return bool.__bool__(value)
    if kind is int:
        return int.__index__(value)
    if kind is float:
        return float.__float__(value)
    if kind is str:
        return str.__str__(value)
    if kind is complex:
        return [tag, complex.__getattribute__(value, "real"), complex.__getattribute__(value, "imag")]
    import base64

    return [tag, base64.b64encode(bytes(value)).decode("ascii")]


_CONTAINERS: tuple = ()


def _containers() -> tuple:
    import collections

    global _CONTAINERS
    pairs = lambda d: [[k, v] for k, v in dict.items(d)]  # noqa: E731
    _CONTAINERS = (
        (collections.OrderedDict, "O", pairs),
        (collections.Counter, "X", pairs),
        (dict, "D", pairs),
        (list, "L", list.__iter__),
        (tuple, "T", tuple.__iter__),
        (set, "S", set.__iter__),
        (frozenset, "F", frozenset.__iter__),
        (collections.deque, "Q", collections.deque.__iter__),
        (range, "R", lambda r: [r.start, r.stop, r.step]),
    )
    return _CONTAINERS


class MalformedReply(BaseException):
    """The program's process sent something our encoder never produces: it wrote to our pipe."""


def decode(data, remote):
    """Exact builtin values from `encode`'s output; `remote(n)` makes the proxy of handle n."""
    return _decode(data, remote, 0)


def _decode(data, remote, depth: int):
    import collections

    if depth > MAX_DEPTH + 2:
        raise MalformedReply("nested too deeply")
    kind = type(data)
    if data is None or kind is bool or kind is int or kind is float or kind is str:
        return data
    if kind is not list or not data or type(data[0]) is not str:
        raise MalformedReply(f"unexpected {kind.__name__}")
    tag, rest = data[0], data[1:]
    if tag == "H" and len(rest) == 1 and type(rest[0]) is int:
        return remote(rest[0])
    if tag in ("y", "Y", "c", "R"):
        return _decode_scalar(tag, rest)
    if len(rest) != 1 or type(rest[0]) is not list:
        raise MalformedReply(f"bad {tag!r} value")
    items = [_decode(item, remote, depth + 1) for item in rest[0]]
    builders = {
        "L": list,
        "T": tuple,
        "S": set,
        "F": frozenset,
        "Q": collections.deque,
        "D": lambda xs: dict(_pairs(xs)),
        "O": lambda xs: collections.OrderedDict(_pairs(xs)),
        "X": lambda xs: collections.Counter(dict(_pairs(xs))),
    }
    if tag not in builders:
        raise MalformedReply(f"unknown tag {tag!r}")
    try:
        return builders[tag](items)
    except TypeError as exc:  # an unhashable key or member: not from our encoder
        raise MalformedReply(str(exc)) from None


def _pairs(items: list) -> list:
    if any(type(pair) is not list or len(pair) != 2 for pair in items):
        raise MalformedReply("bad mapping")
    return [(key, value) for key, value in items]


def _decode_scalar(tag: str, rest: list):
    import base64
    import binascii

    try:
        if tag == "y":
            return base64.b64decode(rest[0], validate=True)
        if tag == "Y":
            return bytearray(base64.b64decode(rest[0], validate=True))
        if tag == "c" and all(type(x) in (int, float) for x in rest) and len(rest) == 2:
            return complex(rest[0], rest[1])
        if tag == "R" and len(rest) == 1 and len(rest[0]) == 3 and all(type(x) is int for x in rest[0]):
            return range(*rest[0])
    except (binascii.Error, TypeError, ValueError) as exc:
        raise MalformedReply(str(exc)) from None
    raise MalformedReply(f"bad {tag!r} value")


def to_json(value) -> str:
    """JSON text of `encode`'s output (lists, str, int, float, bool, None), written with the `_json`
    C helpers only: importing `json` would import `re`, a few milliseconds per program."""
    import _json

    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    kind = type(value)
    if kind is str:
        return _json.encode_basestring_ascii(value)
    if kind is int:
        return int.__repr__(value)
    if kind is float:
        if value != value:
            return "NaN"
        if value in (float("inf"), float("-inf")):
            return "Infinity" if value > 0 else "-Infinity"
        return float.__repr__(value)
    if kind is list:
        return "[" + ",".join(to_json(item) for item in value) + "]"
    raise TypeError(f"not part of an encoded value: {kind.__name__}")


def from_json(text: str):
    """The value of one JSON text, read by the `_json` C scanner (no `re`); MalformedReply if it is
    not exactly one value."""
    if not _SCANNER:
        import _json

        _SCANNER.append(_json.make_scanner(_ScanContext()))
    scanner = _SCANNER[0]
    try:
        value, end = scanner(text, 0)
    except (StopIteration, ValueError, RecursionError) as exc:
        raise MalformedReply(f"not JSON: {exc}") from None
    if end != len(text):
        raise MalformedReply("trailing data after the reply")
    return value


_SCANNER: list = []


class _ScanContext:
    """What `_json.make_scanner` reads from a JSONDecoder."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    memo: dict = {}

    @staticmethod
    def parse_constant(name: str) -> float:
        return {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}[name]


def _send(fd: int, message) -> None:
    payload = message if isinstance(message, bytes) else to_json(message).encode()
    _write_all(fd, len(payload).to_bytes(4, "big") + payload)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _receive(fd: int) -> bytes | None:
    """One length-prefixed frame; None at a clean end of the stream."""
    header = _read_exact(fd, 4)
    if header is None:
        return None
    size = int.from_bytes(header, "big")
    if size > MAX_FRAME:
        raise MalformedReply(f"a message of {size} bytes")
    body = _read_exact(fd, size)
    if body is None:
        raise EOFError("the stream ended inside a message")
    return body


def _read_exact(fd: int, size: int) -> bytes | None:
    chunks, left = [], size
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            if left == size:
                return None
            raise EOFError("the stream ended inside a message")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


# ------------------------------------------------------------------------------------------ the judge


class ProgramEnded(BaseException):
    """The program's process ended before the tests finished. A BaseException, so that a test's
    `except Exception:` (expecting the program to raise) cannot swallow it; the channel also
    remembers it, and a judge whose channel broke never passes."""


_ENDED = {"armed": False, "pending": False}


def _program_ended(signum, frame):
    """SIGUSR1 from the launcher: the program's process is gone. While the tests run, interrupt the
    judge's wait for a reply (a leftover child of the program may hold the pipe open); before, note it."""
    if _ENDED["armed"]:
        raise ProgramEnded("the program's process ended before the tests finished")
    _ENDED["pending"] = True


class ProgramError(Exception):
    """An exception of a class the judge does not have (one the program defined)."""


class _Channel:
    """The judge's end: one request, one reply; replies are decoded into exact builtin types."""

    def __init__(self, requests: int, replies: int):
        import _pickle

        class Pickler(_pickle.Pickler):
            def persistent_id(self, obj):  # a Remote travels as its handle
                return obj._ref if type(obj) is Remote else None

        self.requests, self.replies = requests, replies
        self.broken: BaseException | None = None  # the first ProgramEnded / MalformedReply, kept
        self._pickler = Pickler

    def _fail(self, error: BaseException) -> BaseException:
        if self.broken is None:
            self.broken = error
        return error

    def ask(self, op: str, *operands):
        import _pickle
        import io

        buffer = io.BytesIO()
        try:
            self._pickler(buffer, protocol=4).dump((op, *operands))
        except (_pickle.PicklingError, TypeError, AttributeError) as exc:
            raise TypeError(f"cannot pass this value to the program: {exc}") from None
        if self.broken is not None:
            raise self.broken
        try:
            _send(self.requests, buffer.getvalue())
        except BrokenPipeError:
            raise self._fail(ProgramEnded("the program's process ended before the tests finished")) from None
        return self._reply()

    def first(self) -> None:
        reply = self._read()
        if reply == ["ready"]:
            return
        if type(reply) is list and reply[:1] == ["failed"]:
            raise self._fail(
                ProgramEnded(f"the program failed to load: {reply[1] if len(reply) > 1 else ''}")
            )
        raise self._fail(MalformedReply("bad greeting"))

    def _read(self):
        try:
            frame = _receive(self.replies)
        except EOFError:
            frame = None
        except (ProgramEnded, MalformedReply) as error:
            raise self._fail(error) from None
        if frame is None:
            raise self._fail(ProgramEnded("the program's process ended before the tests finished"))
        try:
            return from_json(frame.decode("utf-8"))
        except (MalformedReply, UnicodeDecodeError) as exc:
            raise self._fail(MalformedReply(str(exc))) from None

    def _reply(self):
        import builtins

        reply = self._read()
        if type(reply) is not list or not reply or type(reply[0]) is not str:
            raise self._fail(MalformedReply("bad reply"))
        kind = reply[0]
        if kind == "ok" and len(reply) == 2:
            try:
                return decode(reply[1], lambda ref: Remote(self, ref))
            except MalformedReply as error:
                raise self._fail(error) from None
        if kind == "stop":
            raise StopIteration
        if kind == "raise" and len(reply) == 3 and all(type(x) is str for x in reply[1:]):
            name, message = reply[1], reply[2]
            cls = getattr(builtins, name, None)
            if isinstance(cls, type) and issubclass(cls, Exception) and not issubclass(cls, StopIteration):
                raise cls(message.split(": ", 1)[1] if message.startswith(name + ": ") else message)
            raise ProgramError(message)
        raise self._fail(MalformedReply(f"bad reply {kind!r}"))


class Remote:
    """A value that lives in the program's process. Calls, attribute access, item access, iteration,
    `len`, `bool`, `str`, `int`, `float` go there and come back as plain data; comparison and hashing
    stay here and use identity, so no object of the program's decides whether a test's `==` holds."""

    __slots__ = ("_channel", "_ref")
    _REMOTE_DUNDERS = ("__name__", "__qualname__", "__doc__", "__module__")

    def __init__(self, channel: _Channel, ref: int):
        object.__setattr__(self, "_channel", channel)
        object.__setattr__(self, "_ref", ref)

    def __getattr__(self, name: str):
        if name.startswith("__") and name.endswith("__") and name not in self._REMOTE_DUNDERS:
            raise AttributeError(name)  # protocol probes (copy, pickle, numpy) stay on this side
        return self._channel.ask("getattr", self, name)

    def __setattr__(self, name: str, value) -> None:
        self._channel.ask("setattr", self, name, value)

    def __call__(self, *args, **kwargs):
        return self._channel.ask("call", self, args, kwargs)

    def __getitem__(self, key):
        return self._channel.ask("getitem", self, key)

    def __setitem__(self, key, value) -> None:
        self._channel.ask("setitem", self, key, value)

    def __iter__(self):
        iterator = self._channel.ask("iter", self)
        while True:
            try:
                yield self._channel.ask("next", iterator)
            except StopIteration:
                return

    def __len__(self) -> int:
        return _exact(self._channel.ask("len", self), int)

    def __bool__(self) -> bool:
        return _exact(self._channel.ask("bool", self), bool)

    def __str__(self) -> str:
        return _exact(self._channel.ask("str", self), str)

    def __repr__(self) -> str:
        try:
            return _exact(self._channel.ask("repr", self), str)
        except Exception:  # noqa: BLE001 - repr is for messages; it must not fail
            return f"<program object #{self._ref}>"

    def __int__(self) -> int:
        return _exact(self._channel.ask("int", self), int)

    def __index__(self) -> int:
        return _exact(self._channel.ask("index", self), int)

    def __float__(self) -> float:
        return _exact(self._channel.ask("float", self), float)

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self

    def __reduce__(self):
        raise TypeError("a program object cannot be pickled outside the channel")


def _exact(value, kind):
    if type(value) is not kind:
        raise TypeError(f"the program returned {type(value).__name__} where {kind.__name__} was needed")
    return value


class _TestGlobals(dict):
    """The tests' globals: a name the tests (or the trusted prelude) do not define is looked up in
    the program's module through the channel, unless it is a builtin; the program's names (the
    function under test) come from the program even where a builtin has the name."""

    def __init__(self, channel: _Channel, builtins_dict: dict, program_names: frozenset):
        super().__init__()
        self._channel, self._builtins, self._program_names = channel, builtins_dict, program_names

    def __missing__(self, name: str):
        if name not in self._program_names and (name in self._builtins or name.startswith("__")):
            raise KeyError(name)
        return self._channel.ask("get", name)


def _judge_process(config: dict, requests: int, replies: int) -> None:
    fds = config["fds"]
    trusted, log = fds["trusted"], fds["judge_log"]
    os.dup2(log, 1)
    os.dup2(log, 2)
    _become(config, config["judge_uid"])
    os.chdir("/")
    _close_fds_except({0, 1, 2, trusted, fds["tests"], requests, replies})
    if config["seccomp"]:
        _install_seccomp()
    _set_limits(config["limits"])
    payload = marshal.loads(_read_all(fds["tests"]))
    os.close(fds["tests"])
    outcome = _judge(payload, config["module_name"], _Channel(requests, replies))
    _flush_std()
    _line(trusted, outcome)
    os._exit(0)


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def _judge(payload: dict, module_name: str, channel: _Channel) -> str:
    """Run the tests; `pass`, `fail:<reason>` or `tamper:<reason>`."""
    import builtins

    if hasattr(sys, "set_int_max_str_digits"):
        sys.set_int_max_str_digits(0)
    namespace = _TestGlobals(channel, builtins.__dict__, frozenset(payload["program_names"]))
    namespace.update(__name__=module_name, __builtins__=builtins)
    sys.modules[module_name] = _TestModule(module_name, namespace)
    try:
        _ENDED["armed"] = True
        if _ENDED["pending"]:
            raise ProgramEnded("the program's process ended before the tests started")
        channel.first()
        if payload["prelude"]:
            exec(compile(payload["prelude"], "prelude.py", "exec", dont_inherit=True), namespace)
            for name in payload["program_names"]:
                namespace.pop(name, None)
        exec(compile(payload["tests"], "tests.py", "exec", dont_inherit=True), namespace)
        _ENDED["armed"] = False
    except BaseException as error:  # noqa: BLE001 - every failure of the tests is a verdict
        _ENDED["armed"] = False
        import traceback

        traceback.print_exception(type(error), error, error.__traceback__, limit=-4)
        outcome = "fail:" + _describe(error)
    else:
        outcome = "pass"
    # A broken channel outranks whatever the tests concluded (they may have swallowed the error).
    if isinstance(channel.broken, MalformedReply):
        return f"tamper:malformed reply from the program's process ({channel.broken})"
    if channel.broken is not None:
        return "fail:" + _describe(channel.broken)
    return outcome


class _TestModule(type(sys)):
    """`sys.modules[name]` while the tests run, so pickle finds classes the tests define by name."""

    def __init__(self, name: str, namespace: dict):
        super().__init__(name)
        object.__setattr__(self, "_namespace", namespace)

    def __getattr__(self, name: str):
        try:
            return dict.__getitem__(self._namespace, name)
        except KeyError:
            raise AttributeError(name) from None


if __name__ == "__main__":
    main()
