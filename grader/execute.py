"""nbgrader's ``Execute`` preprocessor, made to survive a kernel that dies or stops answering.

Stock nbgrader fails the whole assignment when the kernel dies (``os._exit``, a crash) or ignores
the interrupt after a timeout, and throws away the notebook, so exercises that were already
answered lose their points too. Here the cell where it happened gets an error output naming the
cause (``KernelDied`` or ``KernelUnresponsive``), the remaining cells stay unexecuted, and the
notebook is written as usual. Kernels are always shut down at once (killed) rather than asked to
exit: their state is of no further use, and one that ignores interrupts would not exit either.
"""

from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat.v4 import new_output
from nbgrader.preprocessors import Execute

KERNEL_DIED = "KernelDied"
KERNEL_UNRESPONSIVE = "KernelUnresponsive"


class ResilientExecute(Execute):
    def preprocess(self, nb, resources, km=None):
        self._stopped = False
        self.shutdown_kernel = "immediate"
        return super().preprocess(nb, resources, km)

    def preprocess_cell(self, cell, resources, index):
        if self._stopped:
            return cell, resources
        try:
            return super().preprocess_cell(cell, resources, index)
        except DeadKernelError:
            self._stop(cell, KERNEL_DIED, "the kernel died while running this cell")
        except CellTimeoutError:
            self._stop(cell, KERNEL_UNRESPONSIVE, "the kernel did not stop when interrupted")
        return cell, resources

    def _stop(self, cell, name: str, message: str) -> None:
        self.log.warning("%s in a cell; the remaining cells are not run", name)
        cell.outputs.append(new_output("error", ename=name, evalue=message, traceback=[f"{name}: {message}"]))
        self._stopped = True
