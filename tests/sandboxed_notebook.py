"""Run one notebook in the grading sandbox, as the autograder's workers do, without nbgrader's
course folders: ``python tests/sandboxed_notebook.py SPEC.json``.

SPEC holds ``notebook``, ``out`` (where the executed notebook goes), ``runtime`` (the kernel's
folder), ``release`` (a release folder holding ``a/n.ipynb``), ``timeout`` (per cell), ``limits``
(``grader.sandbox.Limits`` fields), ``public`` (read-only paths) and, optionally, ``supervisor``
(statements the kernel's supervisor runs first: a test's way to hide the cgroup). Prints a JSON
line with this process's peak RSS in bytes: the grading worker's memory, which no output may blow
up. (From
``VmHWM``: ``getrusage``'s ``ru_maxrss`` keeps the high-water mark of the process it was forked
from, across ``exec``, so a large test runner would hide the worker's own.)
"""

import json
import logging
import os
import sys
from pathlib import Path

import nbformat
from traitlets.config import Config

from grader import sandbox
from grader.execute import ResilientExecute, kernel_settings, sandboxed_kernel


def main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    runtime = Path(spec["runtime"])
    view = sandbox.View(
        read_only=tuple(map(Path, spec["public"])),
        writable=tuple(map(Path, spec.get("writable", ()))),  # a test's way out of the sandbox
        env={"NBGRADER_EXECUTION": "autograde"},
    )
    start = "from grader.sandbox.launch import main"
    sandbox.SUPERVISOR = sandbox.SUPERVISOR.replace(start, spec.get("supervisor", "") + start)
    kernels = sandboxed_kernel(runtime, view, sandbox.Limits(**spec["limits"]))
    os.environ["JUPYTER_PATH"] = str(kernels)
    config = Config()
    kernel_settings(config, runtime, Path(spec["release"]), spec["timeout"])
    nb = nbformat.read(spec["notebook"], as_version=4)
    resources = {
        "metadata": {"path": str(Path(spec["notebook"]).parent)},
        "nbgrader": {"assignment": "a", "notebook": "n"},
    }
    logging.basicConfig(level=logging.WARNING)
    ResilientExecute(config=config, log=logging.getLogger("sandboxed_notebook")).preprocess(nb, resources)
    nbformat.write(nb, spec["out"])
    print(json.dumps({"maxrss": peak_rss()}))


def peak_rss() -> int:
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return int(status["VmHWM"].split()[0]) * 1024


if __name__ == "__main__":
    main(sys.argv[1])
