"""Text that came from students' code, made safe to store and to show.

Everything a worker sends back (reasons, evidence, logs, the autograded notebook) passes through
``strings`` before the grading process stores it: a lone surrogate (``"\\ud800"``, which JSON can
carry and UTF-8 cannot) becomes U+FFFD, and control characters other than tab and newline (NUL,
carriage return, escape sequences, line separators) are removed, so that SQLite, CSV readers,
spreadsheets and terminals see plain text. The C1 controls (U+0080 to U+009F) go too: a terminal
such as xterm or GNOME Terminal acts on them sent as UTF-8 as on their ESC forms (U+009B is CSI,
U+009D starts an OSC and U+009C ends it), so a kernel's stderr, kept in the student's log, could
move the cursor, rewrite lines or retitle the instructor's terminal when they read it.
"""

import re

CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
SURROGATE = re.compile("[\ud800-\udfff]")


def text(value: str) -> str:
    return CONTROL.sub("", SURROGATE.sub("\ufffd", value))


def strings(value):
    """``value`` (JSON-like: dicts, lists, strings, numbers) with every string made safe."""
    if isinstance(value, str):
        return text(value)
    if isinstance(value, dict):
        return {strings(k): strings(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [strings(v) for v in value]
    return value
