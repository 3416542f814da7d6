"""A file written whole or not at all: a reader (formgrader, a browser, the next run after a crash)
never sees half of it. The data goes to a hidden file beside the target, which then replaces it."""

import os
from pathlib import Path


def write(path: Path, data: bytes, durable: bool = False) -> None:
    """``durable``: on the disk when this returns, the file and its name (synced), not only in the
    system's cache: for a file whose loss in a power cut would cost more than making it again."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        with partial.open("wb") as file:
            file.write(data)
            if durable:
                file.flush()
                os.fsync(file.fileno())
        os.replace(partial, path)
    except BaseException:  # a full disk: leave no half-written file behind
        partial.unlink(missing_ok=True)
        raise
    if durable:
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def write_text(path: Path, text: str) -> None:
    write(path, text.encode("utf-8"))


def reap(folder: Path) -> list[Path]:
    """Remove the hidden partial files under ``folder`` whose writer is gone (a grader killed
    outright in the middle of a write: SIGKILL, the OOM killer, a power cut); returns them. A
    partial file of a writer that still runs is its own."""
    removed = []
    for path in folder.rglob(".*.partial"):
        pid = path.name.removesuffix(".partial").rpartition(".")[2]
        if not pid.isdigit() or not path.is_file() or running(int(pid)):
            continue
        path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def running(pid: int) -> bool:
    """Whether a process ``pid`` runs (one of another user's counts: it is not ours to judge)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True
