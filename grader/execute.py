"""nbgrader's ``Execute`` preprocessor, made to run a sandboxed kernel fairly and to survive it.

The kernel runs under a supervisor (``grader.sandbox``) that bounds the notebook as a whole: the
CPU time of the kernel's whole process tree, its time asleep, its memory and processes. The
per-cell timeout (``ExecutePreprocessor.timeout``) is only a generous wall-clock backstop that
interrupts a cell. On top of nbgrader's ``Execute``:

- When the kernel dies, stops answering or is ended by a limit, the cell where it happened gets
  a note of the grader's (``outputs.note``) that says what and where ("the notebook used its 60 s
  of CPU time in cell 14", from the supervisor's report), the remaining cells stay unexecuted, and
  the notebook is written as usual: exercises answered before keep their points. A note, not an
  error output: a student's code can raise an error of any name and message, but no kernel can
  send a note, so a feedback page never shows the student's imitation as the grader's word.
- A notebook whose kernel failed to start, or stopped before any cell the student wrote or
  changed had started, is run once more from the start: a busy machine must not zero it. So is,
  once, one whose kernel was killed from outside (``sandbox.killed_from_outside``: without a
  cgroup, SIGKILL with no limit of its own while the machine's out-of-memory killer was ending
  processes, which a neighbour's kernel can cause), and the log names it; a kernel that dies of
  its own code (an exit, a crash, its own limit) is not run again.
- Time asleep counts against the notebook only while one of its cells runs (a flag file the
  supervisor reads, ``grader.sandbox.cell_starts``): the grader's own pace between cells is not
  the student's.
- What the kernel sends is capped before the grader holds it: ZeroMQ refuses any frame larger
  than ``MAX_MESSAGE`` unread and queues at most ``QUEUED`` messages that the grader has not read
  yet (``CappedKernelClient``); a message of many frames it takes whole, so the grading process's
  own memory is capped too (``grader.autograde.WORKER_MEMORY``); and the notebook keeps at most
  ``MAX_OUTPUT`` bytes of outputs, counted as the grader holds them: every output message whole
  (its metadata too, and ``VALUE_COST`` for each JSON value in it), at least ``OUTPUT_COST`` (a
  million tiny outputs are a million objects to hold, write and validate), and a display update
  once for each output it replaces (one small message can rewrite thousands of outputs shown
  with the same id). A note in the cell says
  when either cap was met. Outputs a cell sends after a refused one, while the connection is
  restored, may be lost with it. Comm (widget) messages are ignored: nbclient would keep the
  widget state the kernel sends in the notebook's metadata, outside every cap, and nothing a
  widget shows is graded.
- An output message that nbformat refuses (a display bundle whose values are not text, an
  output of an unknown kind: any message the student's code forges) is left out with a note in
  its cell, instead of failing the whole notebook.
- Once the kernel is ready (it has bound its sockets), its socket folder, the one host folder it
  could write, is sealed (``grader.sandbox.seal``): the student's code can write only into the
  sandbox's capped tmpfs.
- The kernel is ended by closing the grader's channels (before the kernel is gone: after it,
  ZeroMQ holds each notebook most of a second), then SIGTERM to its supervisor, which kills the
  tree, removes its cgroup and writes its report; ``grader.sandbox.finish`` then removes whatever a killed supervisor left.
"""

import asyncio
import collections
import contextlib
import copy
import os
import signal
import time
from dataclasses import replace
from pathlib import Path

import nbformat
import zmq
from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_core.utils import ensure_async, run_sync
from nbclient.exceptions import CellExecutionComplete, CellTimeoutError, DeadKernelError
from nbgrader.preprocessors import Execute
from traitlets import Bool, Unicode
from traitlets.config import Config

from . import sandbox
from .outputs import KERNEL_STREAMS, note

LIMITS = ("cpu", "idle", "wall", "memory", "pids")  # what a supervisor's report names as the limit reached
MAX_MESSAGE = 16 * 2**20  # bytes of one message from the kernel
# Messages ZeroMQ's receiving thread holds for the grader before it stops reading the kernel's
# stream (the kernel's side then holds them, in the sandbox's memory, and drops what is past its
# own limit): at most QUEUED * MAX_MESSAGE bytes. ZeroMQ's default is 1,000 (16 GB).
QUEUED = 4
MAX_OUTPUT = 64 * 2**20  # bytes of outputs kept per notebook
OUTPUT_COST = 2**10  # bytes an output counts for at least: what the grader holds for the smallest
VALUE_COST = 64  # bytes a JSON value in an output counts for, besides its text: about what it takes in memory
SHUTDOWN_WAIT = 5.0  # seconds the supervisor gets to end the sandbox
IOPUB_WAIT = 30  # seconds to wait for a cell's outputs after its reply
QUIET_AFTER_DROP = 3  # seconds
QUIET_ALIVE_CHECK = 1  # seconds of a quiet output stream after which the kernel is checked to be alive


def sandboxed_kernel(runtime: Path, view: sandbox.View, limits: sandbox.Limits, isolate: bool = True) -> Path:
    """Install the sandboxed kernelspec for kernels whose files live in ``runtime`` (their
    connection files and supervisors' reports there, out of the sandbox's reach; their sockets in
    ``runtime/sockets``, the one folder they may write). Returns the folder to put first on
    ``JUPYTER_PATH``."""
    (runtime / "sockets").mkdir(exist_ok=True)
    view = replace(view, writable=(*view.writable, runtime / "sockets"))
    return sandbox.install_kernel(runtime / "jupyter", view, limits, isolate=isolate)


def kernel_settings(config: Config, runtime: Path, release: Path, timeout: int) -> None:
    """nbgrader's execution settings for the kernel ``sandboxed_kernel`` installed in ``runtime``:
    that kernel whatever the notebook asks for, Unix sockets (it has no network, not even
    loopback), ``timeout`` seconds per cell, the release folder (what is not the student's)."""
    config.Execute.kernel_name = sandbox.KERNEL_NAME
    config.ExecutePreprocessor.timeout = timeout
    # After a cell's reply, its last outputs may lag on a busy machine (or behind an output too
    # large to keep, whose "idle" may be lost with it): wait for them, then go on regardless.
    config.Execute.iopub_timeout = IOPUB_WAIT
    config.Execute.raise_on_iopub_timeout = False
    config.ResilientExecute.release_directory = str(release)
    config.KernelManager.transport = "ipc"
    config.KernelManager.connection_file = str(runtime / "kernel.json")
    config.KernelManager.ip = str(runtime / "sockets" / "kernel")
    config.KernelManager.client_class = f"{__name__}.CappedKernelClient"


class CappedKernelClient(AsyncKernelClient):
    """A kernel client whose sockets refuse messages larger than ``MAX_MESSAGE``: ZeroMQ reads a
    frame's size from its header and drops the connection without reading the rest, so a 500 MB
    print never reaches the grader's memory. ZeroMQ does not reconnect after such a drop, so a
    watcher on the output socket's monitor notes each cut, and the reader of outputs
    (``next_output``) connects again before it reads on.

    The reconnection is the reader's, not the watcher's, because of how libzmq reads: a poll of
    a SUB socket reads the first frame of a waiting message ahead, and a ``disconnect`` before
    the rest is read makes libzmq abort the whole process (``Assertion failed: !_more``,
    src/fq.cpp). So the reader first reads whole every message the cut connection still holds
    (kept, and handed out first), then disconnects and connects, with no await in between."""

    def _context_default(self):
        context = super()._context_default()
        context.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE)
        context.setsockopt(zmq.RCVHWM, QUEUED)
        return context

    def start_channels(self, *args, **kwargs):
        super().start_channels(*args, **kwargs)
        self.dropped = 0
        self._cut = asyncio.Event()
        self._kept: collections.deque[list] = collections.deque()
        self._outputs = zmq.Socket.shadow(self.iopub_channel.socket.underlying)  # reads without awaiting
        monitor = self.iopub_channel.socket.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        self._watcher = asyncio.ensure_future(self._note_cuts(monitor))

    async def _note_cuts(self, monitor) -> None:
        try:
            while True:
                await monitor.recv_multipart()  # the output stream was cut (or the kernel died)
                self.dropped += 1
                self._cut.set()
        finally:
            monitor.close(linger=0)

    async def next_output(self, quiet: float | None) -> dict | None:
        """The next message on the output stream, or None once it stayed quiet ``quiet`` seconds
        (None: wait for as long as it takes)."""
        while True:
            if self._cut.is_set():
                self._reconnect()
            if self._kept:
                return self._message(self._kept.popleft())
            ready = asyncio.ensure_future(self.iopub_channel.socket.poll())
            cut = asyncio.ensure_future(self._cut.wait())
            try:
                done, _ = await asyncio.wait({ready, cut}, timeout=quiet, return_when=asyncio.FIRST_COMPLETED)
            finally:
                ready.cancel()
                cut.cancel()
            if not done:
                return None
            if ready in done and ready.result():
                try:
                    return self._message(self._outputs.recv_multipart(zmq.NOBLOCK))
                except zmq.Again:
                    pass  # another reader took it

    def _reconnect(self) -> None:
        self._cut.clear()
        while True:
            try:
                self._kept.append(self._outputs.recv_multipart(zmq.NOBLOCK))
            except zmq.Again:
                break
        url = self._make_url("iopub")
        try:
            self._outputs.disconnect(url)
        except zmq.ZMQError:
            pass
        self._outputs.connect(url)

    def _message(self, frames: list) -> dict:
        _, signed = self.session.feed_identities(frames)
        return self.session.deserialize(signed)

    def drops(self) -> int:
        """How many times the output stream was cut since the last call."""
        count, self.dropped = self.dropped, 0
        return count

    def stop_channels(self):
        watcher = getattr(self, "_watcher", None)
        if watcher is not None:
            watcher.cancel()
            self._watcher = None
        super().stop_channels()


class ResilientExecute(Execute):
    release_directory = Unicode(
        "", help="nbgrader's release folder: its cells, unchanged, are not the student's code"
    ).tag(config=True)
    take_turns = Bool(
        False,
        help="run each notebook's kernel in a turn beside others, never beside a scorer (sandbox.beside)",
    ).tag(config=True)

    def preprocess(self, nb, resources, km=None):
        """Run the notebook; once more if it stopped before any student code ran. With
        ``take_turns``, its kernel lives only within a turn beside other kernels (``sandbox.turns``):
        a student's scorer waits for it to end, and it for a scorer."""
        with sandbox.beside() if self.take_turns else contextlib.nullcontext():
            return self._preprocess(nb, resources, km)

    def _preprocess(self, nb, resources, km=None):
        self.shutdown_kernel = "immediate"
        self._released = self._released_sources(resources)
        names = resources.get("nbgrader", {})
        self._notebook = "/".join(names.get(key, "?") for key in ("student", "assignment", "notebook"))
        pristine = copy.deepcopy(nb.cells)
        for attempt in (1, 2):
            self._stopped = self._student_started = self._capped = self._cap_noted = False
            self._killed_from_outside = False
            self._output_bytes = 0
            try:
                result = super().preprocess(nb, resources, km)
                if not self._stopped or attempt == 2:
                    return result
                if self._student_started and not self._killed_from_outside:
                    return result
            except Exception:  # the kernel did not start, or stalled while it did
                if self._student_started or attempt == 2:
                    raise  # nbgrader reports the notebook as failed
            self.log.warning("%s; running the notebook again", self._why_again())
            nb.cells = copy.deepcopy(pristine)

    def _why_again(self) -> str:
        """Why the notebook runs again, naming it when it was killed from outside: the log is the
        one place that says a neighbour's memory may have ended it."""
        if not self._killed_from_outside:
            return "the kernel failed before any student code ran"
        return (
            f"the kernel of {self._notebook} was killed from outside (SIGKILL, no limit of its own, while the "
            "machine's out-of-memory killer ended processes: another kernel may have filled the memory)"
        )

    async def async_start_new_kernel_client(self):
        """nbclient's, then the socket folder sealed before any cell runs."""
        kc = await super().async_start_new_kernel_client()
        if self.km.transport == "ipc":
            sandbox.seal(Path(self.km.ip).parent)
        return kc

    start_new_kernel_client = run_sync(async_start_new_kernel_client)

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
        report = self._report_path()
        try:
            if report:
                sandbox.cell_starts(report)
            cell, resources = super().preprocess_cell(cell, resources, index)
        except DeadKernelError:
            self._stop(cell, self._death(index))
        except CellTimeoutError:
            self._stop(cell, f"the kernel stopped responding in cell {index + 1}")
        finally:
            if report:
                sandbox.cell_ends(report)
        if not self._stopped and self.kc is not None and self.kc.drops():
            cell.outputs.append(note(f"an output larger than {MAX_MESSAGE // 2**20} MiB was not kept"))
        if self._capped and not self._cap_noted:
            self._cap_noted = True
            cell.outputs.append(
                note(f"the notebook's outputs passed {MAX_OUTPUT // 2**20} MiB; the rest was not kept")
            )
        return cell, resources

    def _death(self, index: int) -> str:
        """What ended a kernel that died in cell ``index``."""
        report = sandbox.finish(self._report_path()) if self._report_path() else {}
        if report.get("limit") in LIMITS:
            return f"the notebook {sandbox.describe(report)} in cell {index + 1}"
        self._killed_from_outside = sandbox.killed_from_outside(report)
        if self._killed_from_outside:
            return f"the kernel was killed from outside in cell {index + 1} (the machine ran out of memory)"
        return f"the kernel died in cell {index + 1}"

    def _stop(self, cell, why: str) -> None:
        self.log.warning("%s; the remaining cells are not run", why)
        cell.outputs.append(note(f"{why}; the remaining cells were not run"))
        self._stopped = True

    async def _async_poll_output_msg(self, parent_msg_id, cell, cell_index) -> None:
        """nbclient's loop over a cell's outputs, until the kernel says it is idle; but once the
        output stream was cut, that "idle" may have been lost with the message that was too
        large: then it ends when the stream stays quiet for ``QUIET_AFTER_DROP`` seconds. It also
        ends when the stream is quiet and the kernel is gone: a kernel that ignored the timeout's
        interrupt and was then ended by a limit sends no "idle", and nbclient would wait out
        ``IOPUB_WAIT`` for it, holding the notebook's turn (``sandbox.beside``) all the while."""
        while True:
            msg = await self.kc.next_output(QUIET_AFTER_DROP if self.kc.dropped else QUIET_ALIVE_CHECK)
            if msg is None:
                if self.kc.dropped or not await ensure_async(self.km.is_alive()):
                    return
                continue
            parent = msg.get("parent_header")  # the kernel's to forge: any JSON at all
            if isinstance(parent, dict) and parent.get("msg_id") == parent_msg_id:
                try:
                    self.process_message(msg, cell, cell_index)
                except CellExecutionComplete:
                    return

    def process_message(self, msg, cell, cell_index):
        """nbclient's handling of one output message; one it cannot turn into a valid output is
        left out, with a note saying so while the notebook's outputs are under their cap (such a
        message may fail before ``output`` counts it: a content that is a number)."""
        try:
            return super().process_message(msg, cell, cell_index)
        except CellExecutionComplete:
            raise
        except Exception as err:
            if not self._kept({}):  # a note counts against the cap too: a kernel may send millions
                return None
            kind = msg.get("msg_type") if isinstance(msg, dict) else None
            reason = f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}"
            self.log.warning("an output of cell %d was left out (%s)", cell_index + 1, reason)
            cell.outputs.append(
                note(
                    f"an output ({str(kind)[:40]}) that is not a valid notebook output was left out: {reason}"
                )
            )
            return None

    def output(self, outs, msg, display_id, cell_index):
        if not self._kept(msg.get("content", {})):
            return None
        content = msg.get("content")
        if (
            msg.get("msg_type") == "stream"
            and isinstance(content, dict)
            and content.get("name") not in KERNEL_STREAMS
        ):
            msg = {
                **msg,
                "content": {**content, "name": "stdout"},
            }  # a stream of its own naming: the grader's
        return super().output(outs, msg, display_id, cell_index)

    def _update_display_id(self, display_id, msg):
        """nbclient's update of every output shown with ``display_id`` (``update_display``, or a
        new display with the same id): it writes the new content into each of them, so it costs
        that content once per output it replaces."""
        shown = sum(map(len, self._display_id_map.get(display_id, {}).values()))
        if shown and self._kept(msg.get("content", {}), times=shown):
            super()._update_display_id(display_id, msg)

    def handle_comm_msg(self, outs, msg, cell_index):
        """Comm messages (widgets) are ignored: the grader is no widget front end. nbclient's
        would keep whatever widget state the kernel sends in the notebook's metadata, outside
        every cap, and stand in for Output widgets; nothing a widget shows is graded, and the
        feedback page shows no widgets (outputs sent inside an Output widget stay in their
        cell)."""

    def _kept(self, content: dict, times: int = 1) -> bool:
        """Whether ``times`` copies of ``content`` still fit in the notebook's ``MAX_OUTPUT``
        bytes (then they are counted); once they do not, nothing more is kept."""
        if not self._capped:
            self._output_bytes += times * max(_size(content), OUTPUT_COST)
            self._capped = self._output_bytes > MAX_OUTPUT
        return not self._capped

    def _supervisor(self) -> int | None:
        """The kernel's supervisor's pid, while it runs."""
        process = getattr(getattr(self.km, "provisioner", None), "process", None)
        return process.pid if process is not None and process.poll() is None else None

    def _report_path(self) -> str | None:
        connection_file = getattr(self.km, "connection_file", None)
        return sandbox.report_for(connection_file) if connection_file else None

    async def _async_cleanup_kernel(self) -> None:
        """Close the channels, end the sandbox through its supervisor, then clean up as nbclient
        does. (Channels closed after the kernel's end wait most of a second for ZeroMQ.)"""
        report, supervisor = self._report_path(), self._supervisor()
        if getattr(self, "kc", None) is not None:
            await ensure_async(self.kc.stop_channels())
        if supervisor:
            process = self.km.provisioner.process
            os.kill(supervisor, signal.SIGTERM)
            deadline = time.monotonic() + SHUTDOWN_WAIT
            while process.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.005)
        await super()._async_cleanup_kernel()
        if report:
            self._name_if_memory_ran_out(sandbox.finish(report))

    def _name_if_memory_ran_out(self, report: dict) -> None:
        """Without a cgroup, one kernel's code can fill the machine's memory between two looks of
        its supervisor, and the out-of-memory killer may take a neighbour's kernel instead (which
        runs once more). Every notebook whose kernel ran meanwhile is named in the log with the
        most memory its sandbox was seen to hold: the one whose code filled it is among them."""
        killed = report.get("machine_oom_kills")
        if killed and report.get("memory_peak") is not None:
            self.log.warning(
                "while the kernel of %s ran, the machine's out-of-memory killer ended %d process(es); "
                "its sandbox held up to %.2f GiB (its limit: %.2f GiB)",
                getattr(self, "_notebook", "?"),
                killed,
                report["memory_peak"] / 2**30,
                report.get("limits", {}).get("memory", 0) / 2**30,
            )

    _cleanup_kernel = run_sync(_async_cleanup_kernel)


def _size(content: dict) -> int:
    """What an output message's content costs the grader to hold, whole (its metadata too, which
    the kernel may fill as it likes): its strings' characters, and ``VALUE_COST`` for each JSON
    value (``[[]] * 4_000_000`` is 12 MB of JSON and 250 MB of objects). Counted up to just past
    ``MAX_OUTPUT``."""
    total, todo = 0, [content]
    while todo and total <= MAX_OUTPUT:
        value = todo.pop()
        total += VALUE_COST + (len(value) if isinstance(value, str) else 0)
        if isinstance(value, dict):
            todo += [*value.keys(), *value.values()]
        elif isinstance(value, list):
            todo += value
    return total
