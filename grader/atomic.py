"""A file written whole or not at all: a reader (formgrader, a browser, the next run after a crash)
never sees half of it. The data goes to a hidden file beside the target, which then replaces it."""

import os
from pathlib import Path


def write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        partial.write_bytes(data)
        os.replace(partial, path)
    except BaseException:  # a full disk: leave no half-written file behind
        partial.unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str) -> None:
    write(path, text.encode("utf-8"))
