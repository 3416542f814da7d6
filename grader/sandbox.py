"""The grading kernel's sandbox: no network, nothing writable but its own folders, no solutions or
hidden references in sight, capped memory and file sizes.

The grading process installs a kernelspec (``install_kernel``) whose command is::

    unshare -rnm -- python sandbox.py [--hide/--show ...] -- python -m ipykernel_launcher -f {connection_file}

``unshare`` (util-linux, unprivileged) puts the kernel in new user, mount and network namespaces:
the network namespace has no interface up, so nothing is reachable, and the kernel talks to nbgrader
over Unix sockets (jupyter's ``ipc`` transport), which work across network namespaces. This file,
run as a script (standard library only, so nothing of the course is imported before the mounts are
in place), then rearranges the mounts from the outermost path inward: an empty tmpfs over every
``--hide`` folder (the repository, the grading output and work folders, /tmp), a bind mount back
for every ``--show`` folder (``lib``, ``grader``, the Python installation) with the hidden
references hidden again inside ``grader``, and the kernel's working folder and runtime folder bound
back writable. Every other mount becomes read-only. Finally it sets resource limits and ``exec``s
the kernel. Where ``unshare`` does not work, the kernel runs with the limits only (with a warning).
"""

import argparse
import ctypes
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import warnings
from functools import cache
from pathlib import Path

KERNEL_NAME = "forwardpass-sandbox"
FILE_SIZE_LIMIT = 256 * 2**20


@cache
def isolation_available() -> bool:
    """Whether unprivileged user, mount and network namespaces work here."""
    if not (shutil.which("unshare") and shutil.which("mount")):
        return False
    probe = subprocess.run(["unshare", "-rnm", "true"], capture_output=True)
    return probe.returncode == 0


def install_kernel(directory: Path, hide: list[Path], show: list[Path], memory: int, threads: int) -> Path:
    """Write the sandboxed kernelspec under ``directory`` (put it first on ``JUPYTER_PATH``)."""
    argv = [sys.executable, str(Path(__file__).resolve())]
    argv += [f"--hide={p}" for p in hide] + [f"--show={p}" for p in show]
    argv += [f"--memory={memory}", f"--threads={threads}"]
    if isolation_available():
        argv = ["unshare", "-rnm", "--", *argv, "--isolate"]
    else:
        warnings.warn(
            "unshare is not available: student code runs without network or file isolation", stacklevel=2
        )
    argv += ["--", sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    spec = {"argv": argv, "display_name": "Python 3 (grading sandbox)", "language": "python"}
    target = directory / "kernels" / KERNEL_NAME
    target.mkdir(parents=True, exist_ok=True)
    (target / "kernel.json").write_text(json.dumps(spec, indent=1))
    return directory


# ---- inside the new namespaces ------------------------------------------------------------------


def isolate(hide: list[str], show: list[str], writable: list[str]) -> None:
    """Mask, bind back, then make every other mount read-only (see the module docstring)."""
    handles = {path: os.open(path, os.O_RDONLY | os.O_DIRECTORY) for path in [*show, *writable]}
    _mount("--make-rprivate", "/")
    plan = [(p, "hide") for p in hide if os.path.isdir(p)] + [(p, "bind") for p in [*show, *writable]]
    for path, kind in sorted(plan, key=lambda item: len(Path(item[0]).parts)):
        os.makedirs(path, exist_ok=True)  # inside a tmpfs mounted just before, never on the host
        if kind == "hide":
            _mount("-t", "tmpfs", "-o", "mode=755,size=1m", "tmpfs", path)
        else:
            fd = handles[path]
            _mount("--no-canonicalize", "--bind", f"/proc/self/fd/{fd}", path, fd=fd)
    for target, options in _mounts():
        virtual = any(target == top or target.startswith(f"{top}/") for top in ("/proc", "/sys"))
        if target not in writable and "ro" not in options and not virtual:
            _mount("-o", "remount,bind,ro", target)


def _mount(*args: str, fd: int | None = None) -> None:
    fds = () if fd is None else (fd,)
    done = subprocess.run(["mount", *args], pass_fds=fds, capture_output=True, text=True)
    if done.returncode:
        raise OSError(f"sandbox: mount {' '.join(args)} failed: {done.stderr.strip()}")


def _mounts() -> list[tuple[str, list[str]]]:
    """(mount point, per-mount options) of every mount, from ``/proc/self/mountinfo``."""
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        target = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])
        found.append((target, fields[5].split(",")))
    return found


def limit(memory: int, threads: int) -> None:
    """Cap the address space and file sizes; a too-large write raises instead of killing."""
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT, FILE_SIZE_LIMIT))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # kept across exec
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(threads)


def die_with_parent() -> None:
    """Ask Linux to kill the kernel when the grading process dies (it is our parent)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def private_home(runtime: Path) -> None:
    """HOME, caches and temp files in the kernel's runtime folder, with matplotlib's font cache
    copied in so that importing matplotlib does not rebuild it."""
    home = runtime / "home"
    matplotlib = home / "matplotlib"
    cache_dir = os.environ.get("MPLCONFIGDIR") or str(Path.home() / ".cache" / "matplotlib")
    if not matplotlib.exists() and os.path.isdir(cache_dir):
        shutil.copytree(cache_dir, matplotlib, ignore=shutil.ignore_patterns("*.lock"))
    matplotlib.mkdir(parents=True, exist_ok=True)
    os.environ.update(
        HOME=str(home),
        IPYTHONDIR=str(home / "ipython"),
        MPLCONFIGDIR=str(matplotlib),
        TMPDIR=str(home),
        XDG_CACHE_HOME=str(home / "cache"),
    )
    os.environ.setdefault("NBGRADER_EXECUTION", "autograde")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hide", action="append", default=[])
    parser.add_argument("--show", action="append", default=[])
    parser.add_argument("--memory", type=int, required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--isolate", action="store_true")
    parser.add_argument("kernel", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    kernel = args.kernel[1:] if args.kernel[:1] == ["--"] else args.kernel
    cwd = os.getcwd()
    runtime = Path(kernel[kernel.index("-f") + 1]).parent
    private_home(runtime)
    if args.isolate:
        isolate(args.hide, args.show, [cwd, str(runtime)])
        os.chdir(cwd)  # onto the writable bind mount
    limit(args.memory, args.threads)
    die_with_parent()
    os.execv(kernel[0], kernel)


if __name__ == "__main__":
    main(sys.argv[1:])
