"""The sandbox's file system and namespaces, as bubblewrap arguments.

The root is an empty tmpfs (bubblewrap's), read-only once built, into which go, each at its own
path and read-only: the system files a program needs (``/usr`` and the merged-``/usr`` links, the
loader's cache, the time zone), the Python installation (``python="full"``: the base installation
and the virtual environment; ``"minimal"``: the interpreter and the standard library, every
folder of installed packages in sight covered) and the caller's ``read_only`` paths, each bound on its own so that nothing
next to them shows. Then a fresh ``/proc`` for the new PID namespace, a read-only ``/dev`` with
``null``, ``zero``, ``full``, ``random`` and ``urandom`` only (``/dev/shm`` is read-only: no
POSIX semaphores, so ``multiprocessing``'s locks fail), and one size-capped tmpfs at
``/tmp`` (mounted before the binds, so a course or a virtual environment under ``/tmp`` shows) holding the working folder ``/tmp/work`` (the current directory, with the entries of
``View.work`` bound read-only into it) and the home folder ``/tmp/home``. The caller's
``writable`` folders are bound last; ``copies`` are small files (a kernel's connection file)
written into the root from descriptors the supervisor opened.

The sandboxed process runs as uid/gid 1000 in a user namespace of its own, in new PID, network
(nothing but a down loopback), IPC, UTS and cgroup namespaces, with every capability dropped, no
new privileges, no further user namespaces (``--disable-userns``: ``unshare -r`` fails), in a new
session (no terminal to push input into, and out of the grader's process group), with a cleared
environment that holds only the variables set here, and killed if its supervisor dies. A seccomp
filter (``seccomp_filter``, compiled by libseccomp) refuses the system calls that reach the most exploited parts of the
host's kernel, which every sandbox shares (io_uring, userfaultfd, perf events, eBPF, keyrings) and
those only a privileged process could use (mounts, namespaces, modules, kexec), every call of
another ABI (x86_64's 32-bit and x32 calls, which would get past a table of 64-bit numbers), sockets
of a family the network namespace does not hold (AF_VSOCK, to a virtual machine's hypervisor), and
what would let one sandbox signal to another through the host files they both read (file locks,
file watches, the page cache: ``LOCK_COMMANDS``).

On the host, that uid must not be root: a process that is uid 0 on the host keeps the owner's
rights on files such as ``/proc/sys/kernel/core_pattern`` even with no capability at all. So
bubblewrap runs unprivileged, as intended upstream, and creates the user namespace itself; when
the grader runs as root, the supervisor starts it as a host user of its own (``host_uid``)
through a first, privileged bubblewrap (``outer``) whose only job is a root holding the same
allow-list, so that the unprivileged one can reach paths such as a Python installation under
``/root``. Of its own, not ``nobody`` shared by every sandbox: the kernel counts some resources
per host user whatever the namespaces (epoll watches above all, ``fs.epoll.max_user_watches``;
also keys, file descriptors in flight, pipe buffers), and one sandbox that used up ``nobody``'s
epoll watches made every other sandbox's ZeroMQ abort (a neighbour's kernel could not start).

Paths are strings (``os.path``), and the view a dict (``View.as_dict()``): the supervisor imports
this module, and its start-up is kept to builtin modules (see ``grader.sandbox.launch``).
"""

import errno
import os
import sys

BWRAP = "/usr/bin/bwrap"
SETPRIV = "/usr/bin/setpriv"
UID = 1000  # inside the sandbox
# Outside, when the grader is root: one host user (and group) per sandbox alive, from its
# supervisor's pid (below 2**22, the largest pid_max), in a range no system assigns (systemd's
# UIDS-GIDS: unused, above its container ranges).
HOST_UIDS = range(0x70000000, 0x70000000 + 2**22)
TMP = "/tmp"
WORK = "/tmp/work"
HOME = "/tmp/home"
OWN_PROCESSES = 4  # bubblewrap's own processes in the tree, beyond the program's
DEVICES = ("null", "zero", "full", "random", "urandom")
ETC = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "alternatives", "nsswitch.conf")
# Where the Pythons in /usr keep installed packages: Debian's ``/usr/lib/python3/dist-packages`` and
# ``/usr/local/lib/python3.11/dist-packages``, Fedora's ``/usr/lib64/python3.12/site-packages``, an
# installation of its own such as ``/usr/local/anaconda3/lib/python3.11/site-packages``.
PACKAGE_FOLDERS = (
    "/usr/lib*/python*/*-packages",
    "/usr/*/lib*/python*/*-packages",
    "/usr/*/*/lib*/python*/*-packages",
)
# CPython's test suite and the modules built for it, in its standard library (``hidden``): the
# ``_test*`` extensions (``_testcapi``, ``_testinternalcapi``...) and the ``_xx*``/``xx*`` ones
# (``_xxsubinterpreters``, examples and experiments).
TEST_MODULES = ("test", "lib-dynload/_test*", "lib-dynload/_xx*", "lib-dynload/xx*")
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)


def system() -> tuple[list[str], dict[str, str]]:
    """(paths bound read-only, links {path: target}) for the system's programs and libraries."""
    paths, links = ["/usr"], {}
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = "/" + name
        if os.path.islink(path):
            links[path] = os.readlink(path)
        elif os.path.isdir(path):
            paths.append(path)
    paths += [f"/etc/{name}" for name in ETC if os.path.exists(f"/etc/{name}")]
    return paths, links


def python(mode: str) -> list[str]:
    """What the interpreter needs: ``full``, the installation and the virtual environment;
    ``minimal``, the interpreter, its shared library and the standard library (whose
    ``site-packages`` is hidden: ``hidden``)."""
    import sysconfig  # the grader's process only: the supervisor gets the result

    if mode == "full":
        found = [sys.base_prefix, sys.prefix]
    elif mode == "minimal":
        found = [interpreter(mode), sysconfig.get_paths()["stdlib"]]
        library = sysconfig.get_config_var("LDLIBRARY")
        libdir = sysconfig.get_config_var("LIBDIR")
        if library and libdir and ".so" in library and os.path.exists(os.path.join(libdir, library)):
            found.append(os.path.realpath(os.path.join(libdir, library)))
    else:
        raise ValueError(f"View.python must be 'full' or 'minimal', not {mode!r}")
    return [p for p in _outermost(found) if not _inside(p, "/usr")]


def hidden(mode: str) -> list[str]:
    """Paths covered, for ``minimal`` (a folder by an empty read-only tmpfs, a file by
    ``/dev/null``): every folder of installed packages the view would show, the base
    installation's ``site-packages`` and those of any Python of the system's
    (``PACKAGE_FOLDERS``: Debian's ``dist-packages`` of ``apt``'s ``python3-scipy``, ``pip``'s
    under ``/usr/local``), which any interpreter inside could put on its path; and CPython's own
    test suite and the extension modules built for it (``TEST_MODULES``), which are no standard
    library a program uses and reach the interpreter's internals with no audit event (red team,
    thirteenth round: ``_testcapi.run_in_subinterp`` ran code in an interpreter that the
    scorer's audit hook, ``grader.audit``, never sees). One bind and one cover cost far less than
    a bind per standard-library entry; a cover cannot be lifted without capabilities, and a path
    the view binds inside one (a NumPy installed there) still shows."""
    if mode != "minimal":
        return []
    import glob
    import sysconfig

    stdlib = sysconfig.get_paths()["stdlib"]
    site = os.path.join(stdlib, "site-packages")
    system = {os.path.realpath(path) for pattern in PACKAGE_FOLDERS for path in glob.glob(pattern)}
    found = {path for path in system if _inside(path, "/usr")}  # a link's target, where /usr shows it
    tests = {path for pattern in TEST_MODULES for path in glob.glob(os.path.join(stdlib, pattern))}
    return sorted(p for p in found | {site} | tests if os.path.isdir(p) or os.path.isfile(p))


def interpreter(mode: str) -> str:
    """The Python to run inside: the virtual environment's (``full``) or the base one's."""
    if mode == "full":
        return sys.executable
    return os.path.realpath(getattr(sys, "_base_executable", sys.executable))


def _inside(path: str, folder: str) -> bool:
    """``path`` is ``folder`` or below it (both absolute and normalized)."""
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _outermost(paths: list[str]) -> list[str]:
    """The paths, absolute, without those inside another of them, in a stable order."""
    unique = sorted({os.path.abspath(p) for p in paths}, key=lambda p: (p.count("/"), p))
    kept: list[str] = []
    for path in unique:
        if not any(_inside(path, k) for k in kept):
            kept.append(path)
    return kept


def _ancestors(path: str) -> list[str]:
    """The folders above ``path``, outermost first, without ``/`` (``Path(path).parents``)."""
    parts = [part for part in path.split("/") if part not in ("", ".")][:-1]
    start = "/" if path.startswith("/") else ""
    return [start + "/".join(parts[: i + 1]) for i in range(len(parts))]


def environment(view, limits, bins: list[str]) -> dict[str, str]:
    """Every variable the sandboxed process gets (``bins``: folders to put first on PATH)."""
    env = {
        "PATH": ":".join([*bins, "/usr/local/bin", "/usr/bin", "/bin"]),
        "HOME": HOME,
        "TMPDIR": TMP,
        "LANG": "C.UTF-8",
        "USER": "student",
        "LOGNAME": "student",
        "PYTHONDONTWRITEBYTECODE": "1",
        **{name: str(limits.threads) for name in THREAD_VARIABLES},
    }
    for name, value in view.env.items():
        if not name.replace("_", "A").isalnum() or name[0].isdigit():
            raise ValueError(f"not an environment variable name: {name!r}")
        env[name] = str(value)
    return env


def sources(view: dict, python: list[str], work: list[str]) -> tuple[list[str], list[str]]:
    """(read-only, writable) host paths the sandbox binds, for ``outer`` (``view``: as a dict)."""
    paths, _ = system()
    read_only = [*paths, *python, *view["read_only"], *work, *view["read_only_at"].values()]
    return [p for p in read_only if os.path.exists(p)], [p for p in view["writable"] if os.path.exists(p)]


def inner(
    view: dict,
    tmpfs: int,
    python: list[str],
    hidden: list[str],
    env: dict[str, str],
    work: list[str],
    copies: dict[str, int],
    seccomp: int,
) -> list[str]:
    """The arguments of the (unprivileged) bubblewrap that isolates: ``view`` as a dict
    (``View.as_dict()``), ``tmpfs`` the bytes of its ``/tmp``, ``python`` and ``hidden`` the
    interpreter's paths (``python()`` and ``hidden()``, from the grader's process, whose virtual
    environment the supervisor does not know), ``env`` the whole environment,
    ``work`` the entries to show in the working folder, ``copies`` paths and the descriptors that
    hold their content, ``seccomp`` a descriptor holding ``seccomp_filter()``."""
    args = [
        "--unshare-all",
        "--unshare-user",
        "--disable-userns",
        "--uid", str(UID),
        "--gid", str(UID),
        "--hostname", "sandbox",
        "--die-with-parent",
        "--new-session",
        "--cap-drop", "ALL",
        "--clearenv",
    ]  # fmt: skip
    args += ["--seccomp", str(seccomp)]
    for name, value in env.items():
        args += ["--setenv", name, value]
    paths, links = system()
    for path, target in links.items():
        args += ["--symlink", target, path]
    # The scratch tmpfs first: a path bound later under /tmp (a course or a virtual environment
    # that lives there) stays visible on top of it.
    args += ["--size", str(tmpfs), "--tmpfs", TMP, "--dir", HOME, "--dir", WORK]
    for path in _outermost([*paths, *python]):
        args += ["--ro-bind", path, path]
    for path in hidden:  # a folder made read-only after the binds, which may need a mount point inside
        args += (
            ["--ro-bind", "/dev/null", path] if os.path.isfile(path) else ["--size", "4096", "--tmpfs", path]
        )
    args += ["--proc", "/proc", "--tmpfs", "/dev"]
    for device in DEVICES:
        args += ["--dev-bind", f"/dev/{device}", f"/dev/{device}"]
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "0"), ("stdout", "1"), ("stderr", "2")):
        args += ["--symlink", target if name == "fd" else f"/proc/self/fd/{target}", f"/dev/{name}"]
    args += ["--dir", "/dev/shm"]
    for entry in work:
        args += ["--ro-bind", entry, os.path.join(WORK, os.path.basename(entry))]
    for inside, host in view["read_only_at"].items():
        args += _parents(inside) + ["--ro-bind", host, inside]
    for path in sorted((p for p in view["read_only"] if os.path.exists(p)), key=_depth):
        args += ["--ro-bind", path, path]
    for path in view["writable"]:
        args += ["--bind", path, path]
    for path, fd in copies.items():
        args += _parents(path) + ["--ro-bind-data", str(fd), path]
    for path in hidden:
        if not os.path.isfile(path):
            args += ["--remount-ro", path]
    args += ["--remount-ro", "/dev", "--chdir", WORK, "--remount-ro", "/"]
    return args


def _depth(path: str) -> int:
    """How many components ``path`` has (``len(Path(path).parts)``)."""
    return len(_ancestors(path)) + (2 if path.startswith("/") else 1)


def _parents(path: str) -> list[str]:
    return [arg for parent in _ancestors(path) for arg in ("--dir", parent)]


def outer(read_only: list[str], writable: list[str]) -> list[str]:
    """The arguments of the privileged bubblewrap that presents the allow-list to the inner one:
    a root holding exactly the paths the inner one binds, every folder above them traversable
    (mode 755), the host's ``/proc`` (the inner one may mount a new proc only where one is fully
    visible) and a ``/dev``; nothing else of the host."""
    paths, links = system()
    args = ["--die-with-parent", "--dev", "/dev", "--bind", "/proc", "/proc", "--dir", "/tmp"]
    for path, target in links.items():
        args += ["--symlink", target, path]
    binds = _outermost([*paths, *read_only, *writable])
    made = {"/dev", "/proc", "/tmp"}
    for path in binds:
        for parent in _ancestors(path):
            if parent not in made:
                args += ["--dir", parent]  # mode 755
                made.add(parent)
        args += ["--bind" if path in writable else "--ro-bind", path, path]
    for path in writable:
        if path not in binds:  # inside a read-only path: bound again, writable
            args += ["--bind", path, path]
    return args


# The system calls refused inside (EPERM): the kernel's most exploited interfaces that no
# student's code, NumPy or a Jupyter kernel needs (io_uring, userfaultfd, perf events, eBPF,
# keyrings), and those that only a privileged process could use (modules, kexec, mounts, the new
# mount API, namespaces, handles, swap, reboot, accounting, the kernel log): each is a way into the
# host's kernel, which every sandbox shares. Tracing stays, within the sandbox (a debugger).
REFUSED_SYSCALLS = (
    "io_uring_setup", "io_uring_enter", "io_uring_register", "userfaultfd", "perf_event_open", "bpf",
    "add_key", "request_key", "keyctl", "init_module", "finit_module", "delete_module", "kexec_load",
    "kexec_file_load", "mount", "umount2", "pivot_root", "open_tree", "move_mount", "fsopen", "fsconfig",
    "fsmount", "fspick", "mount_setattr", "unshare", "setns", "open_by_handle_at", "name_to_handle_at",
    "swapon", "swapoff", "reboot", "acct", "syslog", "quotactl",
    # Watching files for another process's opens and reads (inotify, fanotify): sandboxes share the
    # host's files (the standard library, NumPy), so one that reads them could signal to another.
    "inotify_init", "inotify_init1", "inotify_add_watch", "fanotify_init", "fanotify_mark",
    "cachestat",  # which pages of a file are in the host's page cache: another sandbox's reads
)  # fmt: skip
# Every sandbox sees the same host files, and what the kernel keeps per file is shared by them all
# whatever the namespaces: its locks above all (a lock at a chosen offset of a file both can read,
# which the other finds with F_GETLK, carries 63 bits at a time: student A's kernel, which has the
# whole ``lib``, could answer student B's scorer, which asks with the hidden cases' inputs), a
# directory's change notices (F_NOTIFY, signalled on another's reads) and its pages in the page
# cache (dropped with fadvise, probed with RWF_NOWAIT). So no lock is available inside (ENOLCK: a
# program in a sandbox has no one to share a file with), fadvise is a hint that is never taken
# (it succeeds and does nothing) and a read never asks whether it would wait.
LOCK_COMMANDS = (5, 6, 7, 36, 37, 38)  # fcntl's F_GETLK, F_SETLK(W), F_OFD_GETLK, F_OFD_SETLK(W); flock too
F_NOTIFY = 1026
RWF_NOWAIT = 0x8  # the flags of preadv2 and pwritev2 (their sixth argument)
# The address families a sandbox may open a socket of: those the network namespace holds (local
# sockets, IP on a loopback that is down, netlink). Any other may reach past it: AF_VSOCK reaches
# the hypervisor of a virtual machine (it has no namespace), others the host's hardware or
# kernel (Bluetooth, CAN, AF_ALG's crypto, RDS, TIPC).
SOCKET_FAMILIES = (1, 2, 10, 16)  # AF_UNIX, AF_INET, AF_INET6, AF_NETLINK
FAMILIES = 256  # every family number below this that is not allowed is refused (Linux has 46)
LANDLOCK_CREATE_RULESET_VERSION = 1  # landlock_create_ruleset's flag: ask for the ABI's version
CLONE_THREAD = 0x10000
PROT_EXEC = 0x4  # mmap's and mprotect's flag for memory that runs as code
SHM_EXEC = 0o100000  # shmat's
CLONE_FLAGS = 0  # the argument of clone that holds its flags on x86_64 and arm64 (not on s390)


def seccomp_filter() -> bytes:
    """The BPF program (``bwrap --seccomp``) that refuses ``REFUSED_SYSCALLS`` with EPERM; file
    locks, watches and page-cache probes (``LOCK_COMMANDS``, ``F_NOTIFY``, ``RWF_NOWAIT``); sockets
    of a family not in ``SOCKET_FAMILIES``; and every call of another ABI than the machine's own
    (x86_64's 32-bit ``int 0x80`` and x32, whose numbers differ) with ENOSYS. Compiled by
    libseccomp, which knows each architecture's numbers."""
    seccomp = _pyseccomp()
    rules = seccomp.SyscallFilter(seccomp.ALLOW)
    rules.set_attr(seccomp.Attr.ACT_BADARCH, seccomp.ERRNO(errno.ENOSYS))
    numbers: dict[str, int] = {}  # each call's number on this machine, resolved once (< 0: it has none)
    low = 0xFFFFFFFF  # an int argument: the kernel reads its low 32 bits only, whatever the rest holds

    def refuse(error: int, name: str, *args: tuple[int, int, int]) -> None:
        """Refuse the call ``name`` with ``error`` (where its arguments match ``args``), if this
        machine has it."""
        if name not in numbers:
            numbers[name] = seccomp.resolve_syscall(seccomp.Arch.NATIVE, name)
        if numbers[name] >= 0:
            rules.add_rule(seccomp.ERRNO(error), numbers[name], *(seccomp.Arg(*arg) for arg in args))

    for name in REFUSED_SYSCALLS:
        refuse(errno.EPERM, name)
    refuse(errno.ENOLCK, "flock")
    for command in LOCK_COMMANDS:
        refuse(errno.ENOLCK, "fcntl", (1, seccomp.MASKED_EQ, low, command))
    refuse(errno.EPERM, "fcntl", (1, seccomp.MASKED_EQ, low, F_NOTIFY))
    refuse(0, "fadvise64")  # a hint: succeeds, and nothing is dropped from the cache
    for name in ("preadv2", "pwritev2"):
        refuse(errno.EOPNOTSUPP, name, (5, seccomp.MASKED_EQ, RWF_NOWAIT, RWF_NOWAIT))
    for family in sorted(set(range(FAMILIES)) - set(SOCKET_FAMILIES)):
        for name in ("socket", "socketpair"):
            refuse(errno.EAFNOSUPPORT, name, (0, seccomp.MASKED_EQ, low, family))
    return _exported(rules)


def job_filter() -> bytes:
    """The BPF program that the scorer's harness loads into each job's process before the
    student's first statement (``grader.harness``): from there on, neither it nor its code starts
    another program or another process, whichever route it takes (``grader.audit`` sees the routes
    the interpreter audits, this one every route: ``multiprocessing.util.spawnv_passfds`` and
    ``_posixsubprocess.fork_exec``'s ``preexec_fn`` audit nothing). ``execve`` and ``execveat``,
    ``fork`` and ``vfork`` are refused with EPERM, and so is ``clone`` unless it makes a thread
    (``CLONE_THREAD``: a thread ends with its process, a process may outlive its job and answer
    the next, red team, ninth round). ``clone3`` passes its flags in memory, which a filter cannot
    read: it is refused with ENOSYS, as container runtimes do, and the C library makes its threads
    (BLAS's, OpenMP's, Python's) with ``clone`` instead. No memory becomes code either (``mmap``,
    ``mprotect``, ``pkey_mprotect`` with ``PROT_EXEC``, ``shmat`` with ``SHM_EXEC``: EPERM, as on
    a ``noexec`` mount): machine code is text no scan reads, and a C extension the student's code
    wrote to the scratch folder and loaded answered unseen (red team, thirteenth round); the
    native modules honest code imports are loaded before (``grader.harness._load_native``). The
    harness's own process, which forks the jobs' processes, loads nothing."""
    seccomp = _pyseccomp()
    rules = seccomp.SyscallFilter(seccomp.ALLOW)

    def refuse(error: int, name: str, *args: tuple[int, int, int]) -> None:
        number = seccomp.resolve_syscall(seccomp.Arch.NATIVE, name)
        if number >= 0:  # vfork and fork: not on every architecture (clone does their work)
            rules.add_rule(seccomp.ERRNO(error), number, *(seccomp.Arg(*arg) for arg in args))

    for name in ("execve", "execveat", "fork", "vfork"):
        refuse(errno.EPERM, name)
    refuse(errno.EPERM, "clone", (CLONE_FLAGS, seccomp.MASKED_EQ, CLONE_THREAD, 0))
    refuse(errno.ENOSYS, "clone3")
    for name in ("mmap", "mprotect", "pkey_mprotect"):
        refuse(errno.EPERM, name, (2, seccomp.MASKED_EQ, PROT_EXEC, PROT_EXEC))
    refuse(errno.EPERM, "shmat", (2, seccomp.MASKED_EQ, SHM_EXEC, SHM_EXEC))
    return _exported(rules)


def landlock_abi() -> int:
    """The version of Landlock's interface this kernel offers, 0 if none (``landlock_create_ruleset``
    asked for its version): the scorer's harness puts each notebook's process in a Landlock domain
    of its own (``grader.harness.apart``)."""
    import ctypes  # here, not at the top: the supervisor imports this module and stays small

    from grader.harness import SYS_LANDLOCK_CREATE_RULESET

    libc = ctypes.CDLL(None, use_errno=True)
    return max(libc.syscall(SYS_LANDLOCK_CREATE_RULESET, None, 0, LANDLOCK_CREATE_RULESET_VERSION), 0)


def _pyseccomp():
    try:
        import pyseccomp  # here, not at the top: the supervisor imports this module and stays small
    except (ImportError, RuntimeError) as err:  # RuntimeError: the library itself is missing
        raise RuntimeError(
            f"the sandbox needs libseccomp (Debian's libseccomp2) and pyseccomp: {err}"
        ) from None
    return pyseccomp


def _exported(rules) -> bytes:
    import tempfile

    with tempfile.TemporaryFile() as file:
        rules.export_bpf(file)
        file.seek(0)
        return file.read()


def host_uid(supervisor: int) -> int:
    """The host user (and group) of the sandbox of the supervisor whose pid is ``supervisor``
    (when the grader is root): no other sandbox alive at the same time has it."""
    return HOST_UIDS[supervisor % len(HOST_UIDS)]


def demote(uid: int) -> list[str]:
    """``setpriv`` as ``uid`` with no capability and no way back, between the two bubblewraps."""
    return [
        SETPRIV,
        f"--reuid={uid}",
        f"--regid={uid}",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--no-new-privs",
        "--",
    ]
