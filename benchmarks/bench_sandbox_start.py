"""What one sandbox start costs: CPU seconds of ``grader.sandbox.run`` of ``python -I -S -c pass``
(the grader's side, the supervisor, bubblewrap, the cgroup) against the same command run plainly
(the peer), each counted in a cpuacct group this process is in meanwhile (``bench_grade._counted``;
a sandbox's processes are reaped inside its PID namespace, out of reach of ``RUSAGE_CHILDREN``),
in turn, so that a noisy moment hits both alike. Then the supervisor's own start: the CPU time of
its bootstrap up to its imports (``wrap``'s ``-c`` code without the call to ``main``) against a
bare ``python -I -S -c pass``, and the modules it loads beyond the bare interpreter's.

    python benchmarks/bench_sandbox_start.py --repeat 40
"""

import argparse
import os
import subprocess
import sys

from bench_grade import _counted

from grader import sandbox
from grader.sandbox import Limits, View, bwrap

LIMITS = Limits(memory=2**30, pids=64, cpu_seconds=30, wall_seconds=60, tmpfs=2**26, file_size=2**20)


def start_cost(repeat: int) -> tuple[float, float]:
    """(sandboxed, plain) median CPU seconds per run of ``python -I -S -c pass``."""
    command = [bwrap.interpreter("minimal"), "-I", "-S", "-c", "pass"]
    runs = {"sandboxed": [], "plain": []}
    with _counted() as usage:
        if usage() is None:
            sys.exit("no writable cpuacct cgroup here: the sandbox's CPU time cannot be counted")
        for _ in range(repeat):
            before = usage()
            outcome = sandbox.run(command, View(python="minimal"), LIMITS)
            assert outcome.returncode == 0, outcome.stderr
            middle = usage()
            subprocess.run(command, check=True)
            runs["sandboxed"].append(middle - before)
            runs["plain"].append(usage() - middle)
    return _median(runs["sandboxed"]), _median(runs["plain"])


def supervisor_imports(repeat: int) -> tuple[float, float, list[str]]:
    """(bootstrap, bare) median CPU seconds of a process, and the modules the bootstrap adds."""
    argv = sandbox.wrap(["true"], View(python="minimal"), LIMITS, "/nonexistent")
    imports = argv[argv.index("-c") + 1].rsplit("; ", 1)[0]  # without ``sys.exit(main(...))``
    listing = "; print(' '.join(sorted(sys.modules)))"
    modules = {
        code: set(_output([sys.executable, "-I", "-S", "-c", code + listing]).split())
        for code in ("import sys", imports)
    }
    times = {imports: [], "pass": []}
    for _ in range(repeat):
        for code in times:
            times[code].append(_cpu([sys.executable, "-I", "-S", "-c", code]))
    added = sorted(modules[imports] - modules["import sys"])
    return _median(times[imports]), _median(times["pass"]), added


def _cpu(argv: list[str]) -> float:
    """CPU seconds of one process, from its resource usage."""
    pid = os.posix_spawn(argv[0], argv, {})
    _, status, usage = os.wait4(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, argv
    return usage.ru_utime + usage.ru_stime


def _output(argv: list[str]) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=40)
    repeat = parser.parse_args().repeat
    sandboxed, plain = start_cost(repeat)
    print(
        f"sandbox start: {sandboxed * 1e3:.0f} ms CPU, plain python: {plain * 1e3:.0f} ms, "
        f"sandbox adds {(sandboxed - plain) * 1e3:.0f} ms (median of {repeat})"
    )
    supervisor, bare, added = supervisor_imports(repeat)
    print(
        f"supervisor's start to its imports: {supervisor * 1e3:.1f} ms CPU, bare python -I -S: "
        f"{bare * 1e3:.1f} ms, imports add {(supervisor - bare) * 1e3:.1f} ms; "
        f"modules beyond the bare interpreter's ({len(added)}): {' '.join(added)}"
    )


if __name__ == "__main__":
    main()
