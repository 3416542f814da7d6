"""What the sandbox's red team shares: attacks as Python source, and a way to find what they left.

Each attack's processes carry a marker word in their command line (``marker``), so that a test
can look for survivors anywhere on the machine once the sandbox is gone (``survivors``).
"""

import os
import uuid
from pathlib import Path

FORK_BOMB = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
# A daemon: a grandchild in a session of its own, orphaned at once.
DOUBLE_FORK = (
    "import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
    "        time.sleep(600)\n    os._exit(0)"
)


def marker() -> str:
    """A word to find the processes of one attack by (their command lines hold it)."""
    return f"redteam-{uuid.uuid4().hex}"


def survivors(word: str) -> list[int]:
    """Processes anywhere on the machine, other than this one, whose command line holds ``word``."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and word.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            pass
    return [pid for pid in found if pid != os.getpid()]
