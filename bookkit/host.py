"""Which machine ran a page, and when: every timing in the book says where it was measured.

A notebook that times something is run by whoever opens it, and the web book is run by the
machine that builds it. "This machine" means nothing to a reader of the built page, so timings are
printed under a line from ``describe()``: the processor, the number of cores, and the date.
"""

import datetime
import os
import platform
from pathlib import Path


def processor() -> str:
    """The processor's model name, from /proc/cpuinfo on Linux, else what platform reports."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "cpu model") and value.strip():
                return value.strip()
    return platform.processor() or platform.machine() or "an unknown processor"


def describe(now: datetime.datetime | None = None) -> str:
    """For example: "an Intel(R) Xeon(R) CPU @ 2.20GHz with 2 cores, Linux, on 2026-12-01 at 11:40 UTC"."""
    now = now or datetime.datetime.now(datetime.UTC)
    cores = os.cpu_count() or 1
    return (
        f"{processor()} with {cores} core{'s' if cores != 1 else ''}, {platform.system() or 'unknown OS'}, "
        f"on {now:%Y-%m-%d} at {now:%H:%M} UTC"
    )


def measured_on() -> str:
    """The sentence a timing cell prints first."""
    where = (
        "the machine that built this page" if os.environ.get("FORWARD_PASS_BOOK") else "this kernel's machine"
    )
    return f"Measured on {where}: {describe()}."
