"""Why nbgrader could not grade a notebook, in words an instructor understands.

nbgrader reports a failure in its log: ``[ERROR]`` records and Python tracebacks, whose frames and
closing exception line are indented (by 4 spaces in the log ``capture_log`` collects, by none in
``traceback.format_exc``). ``reason`` takes the first traceback's exception (the cause; nbgrader's
own ``NbGraderException`` only says "see the traceback above"), explains the kinds this course has
met and quotes the rest; without a traceback it quotes nbgrader's last error or warning. Every
answer names the exception or message it comes from and where the whole log is.
"""

import re

GENERIC = ("NbGraderException", "Please see the", "There was an error processing")
EXPLAINED = (  # (pattern in the exception line, what it means)
    (r"KeyError: 'grade_id'|does not have a grade_id|failed to validate", "its grading metadata is damaged"),
    (r"Inconsistent checksums", "a locked cell was changed in a way nbgrader could not undo"),
    (r"NoSuchKernel", "the grading kernel is not installed"),
    (r"Kernel died before replying|Kernel didn't respond|kernel_info", "the kernel did not start"),
    (r"MemoryError", "the grader ran out of memory on it"),
    (r"NotJSONError|not appear to be JSON|UnicodeDecodeError", "the file is not a readable notebook"),
    (r"OperationalError|DatabaseError", "nbgrader's gradebook could not be used"),
    (r"PermissionError|FileNotFoundError|IsADirectoryError|OSError", "a file could not be read or written"),
)
RECORD = re.compile(r"^\[(?P<level>ERROR|CRITICAL|WARNING)\]\s*(?P<message>.+)$")


def reason(outcome: dict, log: str = "") -> str:
    """The row reason for a notebook nbgrader did not grade; ``outcome`` is ``course.run``'s result,
    ``log`` where the worker's log is (named in the reason)."""
    text = f"{outcome.get('log') or ''}\n{outcome.get('error') or ''}"
    cause = next((line for line in exceptions(text) if not line.startswith(GENERIC)), None)
    if cause is None:
        cause = _last_record(text)
    where = f" (nbgrader's log: {log})" if log else ""
    if cause is None:
        what = (
            "nbgrader failed without a message"
            if not outcome.get("success")
            else "nbgrader wrote no graded notebook"
        )
        return f"not graded: {what}{where}"
    meaning = next((words for pattern, words in EXPLAINED if re.search(pattern, cause)), "")
    return f"nbgrader could not grade the notebook{': ' + meaning if meaning else ''} ({cause[:300]}){where}"


def exceptions(text: str):
    """The exception line of each traceback in ``text``, first line of its message only."""
    lines = text.splitlines()
    for start, line in enumerate(lines):
        if not line.rstrip().endswith("Traceback (most recent call last):"):
            continue
        frames = None  # indentation of the "File ..." lines
        for following in lines[start + 1 :]:
            stripped = following.strip()
            indent = len(following) - len(following.lstrip())
            if stripped.startswith("File "):
                frames = indent if frames is None else min(frames, indent)
            elif frames is not None and stripped and indent < frames:
                yield stripped
                break


def _last_record(text: str) -> str | None:
    """nbgrader's last error (else warning) record that says more than "see above"."""
    records = [m for line in text.splitlines() if (m := RECORD.match(line.strip()))]
    for level in (("ERROR", "CRITICAL"), ("WARNING",)):
        found = [
            m["message"] for m in records if m["level"] in level and not m["message"].startswith(GENERIC)
        ]
        if found:
            return found[-1]
    return None
