"""nbgrader's ``Execute`` preprocessor, made to run a sandboxed kernel fairly and to survive it.

The kernel runs under a supervisor (``grader.sandbox``) that bounds the notebook as a whole: the
CPU time of the kernel's whole process tree, its time asleep, its memory and processes. The
per-cell timeout (``ExecutePreprocessor.timeout``) is only a generous wall-clock backstop that
interrupts a cell. On top of nbgrader's ``Execute``:

- When the kernel dies, stops answering or is ended by a limit, the cell where it happened gets
  an error output that says what and where ("the notebook used its 60 s of CPU time in cell 14",
  from the supervisor's report; ``STOPS`` maps the error names to statuses), the remaining cells
  stay unexecuted, and the notebook is written as usual: exercises answered before keep their
  points.
- A notebook whose kernel failed to start, or stopped before any cell the student wrote or
  changed had started, is run once more from the start: a busy machine must not zero it.
- What the kernel sends is capped before the grader holds it: ZeroMQ refuses any message larger
  than ``MAX_MESSAGE`` unread, and outputs beyond ``MAX_OUTPUT`` bytes per notebook are not kept;
  a note in the cell says so either way.
- The kernel is ended by SIGTERM to its supervisor, which kills the tree, removes its cgroup and
  writes its report; ``grader.sandbox.finish`` then removes whatever a killed supervisor left.
"""

import asyncio
import copy
import os
import signal
import time
from pathlib import Path

import nbformat
import zmq
from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_core.utils import run_sync
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat.v4 import new_output
from nbgrader.preprocessors import Execute
from traitlets import Unicode

from . import sandbox

KERNEL_DIED = "KernelDied"
KERNEL_UNRESPONSIVE = "KernelUnresponsive"
TIME_LIMIT = "TimeLimitReached"
RESOURCE_LIMIT = "ResourceLimitReached"
STOPS = {
    KERNEL_DIED: "kernel_died",
    KERNEL_UNRESPONSIVE: "timeout",
    TIME_LIMIT: "timeout",
    RESOURCE_LIMIT: "kernel_died",
}
LIMIT_ERRORS = {
    "cpu": TIME_LIMIT,
    "idle": TIME_LIMIT,
    "wall": TIME_LIMIT,
    "memory": RESOURCE_LIMIT,
    "pids": RESOURCE_LIMIT,
}
MAX_MESSAGE = 16 * 2**20  # bytes of one message from the kernel
MAX_OUTPUT = 64 * 2**20  # bytes of outputs kept per notebook
SHUTDOWN_WAIT = 5.0  # seconds the supervisor gets to end the sandbox


class CappedKernelClient(AsyncKernelClient):
    """A kernel client whose sockets refuse messages larger than ``MAX_MESSAGE``: ZeroMQ reads a
    frame's size from its header and drops the connection without reading it (the socket then
    reconnects), so a 500 MB print never reaches the grader's memory. A monitor on the output
    socket counts those drops."""

    def _context_default(self):
        context = super()._context_default()
        context.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE)
        return context

    def start_channels(self, *args, **kwargs):
        super().start_channels(*args, **kwargs)
        monitor = self.iopub_channel.socket.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        self._monitor = (monitor, zmq.Socket.shadow(monitor.underlying))  # the second, synchronous

    def drops(self) -> int:
        """How many times the output stream was cut since the last call."""
        monitor = getattr(self, "_monitor", None)
        count = 0
        while monitor and monitor[1].poll(0):
            monitor[1].recv_multipart()
            count += 1
        return count

    def stop_channels(self):
        monitor = getattr(self, "_monitor", None)
        if monitor:
            self.iopub_channel.socket.disable_monitor()
            monitor[0].close(linger=0)
            self._monitor = None
        super().stop_channels()


class ResilientExecute(Execute):
    release_directory = Unicode(
        "", help="nbgrader's release folder: its cells, unchanged, are not the student's code"
    ).tag(config=True)

    def preprocess(self, nb, resources, km=None):
        """Run the notebook; once more if it stopped before any student code ran."""
        self.shutdown_kernel = "immediate"
        self._released = self._released_sources(resources)
        pristine = copy.deepcopy(nb.cells)
        for attempt in (1, 2):
            self._stopped = self._student_started = self._capped = False
            self._output_bytes = 0
            try:
                result = super().preprocess(nb, resources, km)
                if not self._stopped or self._student_started or attempt == 2:
                    return result
            except Exception:  # the kernel did not start, or stalled while it did
                if self._student_started or attempt == 2:
                    raise  # nbgrader reports the notebook as failed
            self.log.warning("the kernel failed before any student code ran; running the notebook again")
            nb.cells = copy.deepcopy(pristine)

    def _released_sources(self, resources) -> set[str]:
        names = resources.get("nbgrader", {})
        path = Path(self.release_directory, names.get("assignment", ""), f"{names.get('notebook', '')}.ipynb")
        if not self.release_directory or not path.is_file():
            return set()
        return {cell.source for cell in nbformat.read(path, as_version=4).cells}

    def _is_student_code(self, cell) -> bool:
        if cell.cell_type != "code" or not cell.source.strip():
            return False
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            return True
        if meta.get("grade") or meta.get("locked"):
            return False  # nbgrader restored it from the instructor's source
        return cell.source not in self._released

    def preprocess_cell(self, cell, resources, index):
        if self._stopped:
            return cell, resources
        self._student_started |= self._is_student_code(cell)
        try:
            cell, resources = super().preprocess_cell(cell, resources, index)
        except DeadKernelError:
            self._stop(cell, *self._death(index))
        except CellTimeoutError:
            self._stop(cell, KERNEL_UNRESPONSIVE, f"the kernel stopped responding in cell {index + 1}")
        if self.kc is not None and self.kc.drops():
            cell.outputs.append(_note(f"an output larger than {MAX_MESSAGE // 2**20} MiB was not kept"))
        return cell, resources

    def _death(self, index: int) -> tuple[str, str]:
        """The error name and message for a kernel that died in cell ``index``."""
        report = sandbox.finish(self._report_path()) if self._report_path() else {}
        limit = report.get("limit")
        if limit in LIMIT_ERRORS:
            return LIMIT_ERRORS[limit], f"the notebook {sandbox.describe(report)} in cell {index + 1}"
        return KERNEL_DIED, f"the kernel died in cell {index + 1}"

    def _stop(self, cell, name: str, message: str) -> None:
        self.log.warning("%s: %s; the remaining cells are not run", name, message)
        cell.outputs.append(new_output("error", ename=name, evalue=message, traceback=[f"{name}: {message}"]))
        self._stopped = True

    def output(self, outs, msg, display_id, cell_index):
        self._output_bytes += _size(msg.get("content", {}))
        if self._output_bytes <= MAX_OUTPUT:
            return super().output(outs, msg, display_id, cell_index)
        if not self._capped:
            self._capped = True
            outs.append(
                _note(f"the notebook's outputs passed {MAX_OUTPUT // 2**20} MiB; the rest was not kept")
            )
        return None

    def _report_path(self) -> str | None:
        connection_file = getattr(self.km, "connection_file", None)
        return sandbox.report_for(connection_file) if connection_file else None

    async def _async_cleanup_kernel(self) -> None:
        """End the sandbox through its supervisor, then clean up as nbclient does."""
        report = self._report_path()
        process = getattr(getattr(self.km, "provisioner", None), "process", None)
        if process is not None and process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            deadline = time.monotonic() + SHUTDOWN_WAIT
            while process.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.005)
        await super()._async_cleanup_kernel()
        if report:
            sandbox.finish(report)

    _cleanup_kernel = run_sync(_async_cleanup_kernel)


def _size(content: dict) -> int:
    """Roughly the bytes an output message holds."""
    if "text" in content:
        return len(content["text"])
    if "data" in content:
        return sum(
            len(value) if isinstance(value, str) else len(str(value)) for value in content["data"].values()
        )
    return sum(len(line) for line in content.get("traceback", []))


def _note(text: str):
    return new_output("stream", name="stderr", text=f"[grader: {text}]\n")
