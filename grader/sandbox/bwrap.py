"""The sandbox's file system and namespaces, as bubblewrap arguments.

The root is an empty tmpfs (bubblewrap's), read-only once built, into which go, each at its own
path and read-only: the system files a program needs (``/usr`` and the merged-``/usr`` links, the
loader's cache, the time zone), the Python installation (``python="full"``: the base installation
and the virtual environment; ``"minimal"``: the interpreter and the standard library without
``site-packages``) and the caller's ``read_only`` paths, each bound on its own so that nothing
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
environment that holds only the variables set here, and killed if its supervisor dies.

On the host, that uid must not be root: a process that is uid 0 on the host keeps the owner's
rights on files such as ``/proc/sys/kernel/core_pattern`` even with no capability at all. So
bubblewrap runs unprivileged, as intended upstream, and creates the user namespace itself; when
the grader runs as root, the supervisor starts it as ``nobody`` through a first, privileged
bubblewrap (``outer``) whose only job is a root holding the same allow-list, so that the
unprivileged one can reach paths such as a Python installation under ``/root``.
"""

import os
import sys
from pathlib import Path

BWRAP = "/usr/bin/bwrap"
SETPRIV = "/usr/bin/setpriv"
UID = 1000  # inside the sandbox
HOST_UID = 65534  # outside, when the grader is root: nobody
TMP = Path("/tmp")
WORK = TMP / "work"
HOME = TMP / "home"
OWN_PROCESSES = 4  # bubblewrap's own processes in the tree, beyond the program's
DEVICES = ("null", "zero", "full", "random", "urandom")
ETC = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "alternatives", "nsswitch.conf")
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)


def system() -> tuple[list[Path], dict[str, str]]:
    """(paths bound read-only, links {path: target}) for the system's programs and libraries."""
    paths, links = [Path("/usr")], {}
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = Path("/", name)
        if path.is_symlink():
            links[str(path)] = os.readlink(path)
        elif path.is_dir():
            paths.append(path)
    paths += [Path("/etc", name) for name in ETC if Path("/etc", name).exists()]
    return paths, links


def python(mode: str) -> list[Path]:
    """What the interpreter needs: ``full``, the installation and the virtual environment;
    ``minimal``, the interpreter, its shared library and the standard library (whose
    ``site-packages`` is hidden: ``hidden``)."""
    import sysconfig  # the grader's process only: the supervisor gets the result

    if mode == "full":
        found = [Path(sys.base_prefix), Path(sys.prefix)]
    elif mode == "minimal":
        found = [interpreter(mode), Path(sysconfig.get_paths()["stdlib"])]
        library = sysconfig.get_config_var("LDLIBRARY")
        libdir = sysconfig.get_config_var("LIBDIR")
        if library and libdir and ".so" in library and Path(libdir, library).exists():
            found.append(Path(libdir, library).resolve())
    else:
        raise ValueError(f"View.python must be 'full' or 'minimal', not {mode!r}")
    return [p for p in _outermost(found) if not p.is_relative_to("/usr")]


def hidden(mode: str) -> list[Path]:
    """Folders inside ``python(mode)`` covered by an empty read-only tmpfs: the base
    installation's ``site-packages`` for ``minimal`` (one bind and one cover cost far less than a
    bind per standard-library entry; the cover cannot be lifted without capabilities)."""
    if mode != "minimal":
        return []
    import sysconfig

    site = Path(sysconfig.get_paths()["stdlib"], "site-packages")
    return [site] if site.is_dir() else []


def interpreter(mode: str) -> Path:
    """The Python to run inside: the virtual environment's (``full``) or the base one's."""
    if mode == "full":
        return Path(sys.executable)
    return Path(getattr(sys, "_base_executable", sys.executable)).resolve()


def _outermost(paths: list[Path]) -> list[Path]:
    """The paths, without those inside another of them, in a stable order."""
    unique = sorted({os.path.abspath(p) for p in paths}, key=lambda p: (p.count("/"), p))
    kept: list[str] = []
    for path in unique:
        if not any(path == k or path.startswith(k.rstrip("/") + "/") for k in kept):
            kept.append(path)
    return [Path(p) for p in kept]


def environment(view, limits, bins: list[str]) -> dict[str, str]:
    """Every variable the sandboxed process gets (``bins``: folders to put first on PATH)."""
    env = {
        "PATH": ":".join([*bins, "/usr/local/bin", "/usr/bin", "/bin"]),
        "HOME": str(HOME),
        "TMPDIR": str(TMP),
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


def sources(view, python: list[Path], work: list[Path]) -> tuple[list[Path], list[Path]]:
    """(read-only, writable) host paths the sandbox binds, for ``outer``."""
    paths, _ = system()
    read_only = [*paths, *python, *view.read_only, *work, *view.read_only_at.values()]
    return [p for p in read_only if p.exists()], [p for p in view.writable if p.exists()]


def inner(
    view,
    limits,
    python: list[Path],
    hidden: list[Path],
    env: dict[str, str],
    work: list[Path],
    copies: dict[str, int],
) -> list[str]:
    """The arguments of the (unprivileged) bubblewrap that isolates: ``python`` and ``hidden`` the
    interpreter's paths (``python()`` and ``hidden()``, from the grader's process, whose virtual
    environment the supervisor does not know), ``env`` the whole environment,
    ``work`` the entries to show in the working folder, ``copies`` paths and the descriptors that
    hold their content."""
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
    for name, value in env.items():
        args += ["--setenv", name, value]
    paths, links = system()
    for path, target in links.items():
        args += ["--symlink", target, path]
    # The scratch tmpfs first: a path bound later under /tmp (a course or a virtual environment
    # that lives there) stays visible on top of it.
    args += ["--size", str(limits.tmpfs), "--tmpfs", str(TMP), "--dir", str(HOME), "--dir", str(WORK)]
    for path in _outermost([*paths, *python]):
        args += ["--ro-bind", str(path), str(path)]
    for path in hidden:
        args += ["--size", "4096", "--tmpfs", str(path), "--remount-ro", str(path)]
    args += ["--proc", "/proc", "--tmpfs", "/dev"]
    for device in DEVICES:
        args += ["--dev-bind", f"/dev/{device}", f"/dev/{device}"]
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "0"), ("stdout", "1"), ("stderr", "2")):
        args += ["--symlink", target if name == "fd" else f"/proc/self/fd/{target}", f"/dev/{name}"]
    args += ["--dir", "/dev/shm"]
    for entry in work:
        args += ["--ro-bind", str(entry), str(WORK / entry.name)]
    for inside, host in view.read_only_at.items():
        args += _parents(Path(inside)) + ["--ro-bind", str(host), str(inside)]
    for path in sorted((p for p in view.read_only if p.exists()), key=lambda p: len(p.parts)):
        args += ["--ro-bind", str(path), str(path)]
    for path in view.writable:
        args += ["--bind", str(path), str(path)]
    for path, fd in copies.items():
        args += _parents(Path(path)) + ["--ro-bind-data", str(fd), path]
    args += ["--remount-ro", "/dev", "--chdir", str(WORK), "--remount-ro", "/"]
    return args


def _parents(path: Path) -> list[str]:
    return [arg for parent in reversed(path.parents[:-1]) for arg in ("--dir", str(parent))]


def outer(read_only: list[Path], writable: list[Path]) -> list[str]:
    """The arguments of the privileged bubblewrap that presents the allow-list to the inner one:
    a root holding exactly the paths the inner one binds, every folder above them traversable
    (mode 755), the host's ``/proc`` (the inner one may mount a new proc only where one is fully
    visible) and a ``/dev``; nothing else of the host."""
    paths, links = system()
    args = ["--die-with-parent", "--dev", "/dev", "--bind", "/proc", "/proc", "--dir", "/tmp"]
    for path, target in links.items():
        args += ["--symlink", target, path]
    binds = _outermost([*paths, *read_only, *writable])
    made = {Path("/"), Path("/dev"), Path("/proc"), Path("/tmp")}
    for path in binds:
        for parent in reversed(path.parents):
            if parent not in made:
                args += ["--dir", str(parent)]  # mode 755
                made.add(parent)
        args += ["--bind" if path in writable else "--ro-bind", str(path), str(path)]
    for path in writable:
        if path not in binds:  # inside a read-only path: bound again, writable
            args += ["--bind", str(path), str(path)]
    return args


def demote(uid: int = HOST_UID) -> list[str]:
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
