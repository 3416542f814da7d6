"""Recording named intermediates without passing anything around.

A stage function marks each intermediate worth seeing with one line, ``traced("probs", probs)``,
and otherwise ignores tracing. Outside a ``tracing()`` block ``traced`` does nothing; inside one it
stores the value under the current scope's name. The caller of a stage names its scope after the
weights it hands over, so trace names follow the checkpoint's tree::

    with tracing() as stations:            # stations: a dict, filled in the order computed
        with scope("h.0"):                 # the block that owns params["h"][0]
            with scope("attn"):            # ... and its params["h"][0]["attn"]
                traced("probs", probs)     # -> stations["h.0.attn.probs"]

The state lives in a ``contextvars.ContextVar``, so threads and nested ``tracing()`` blocks each
see their own recorder.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

# (the dict being filled, the current scope's prefix such as "h.0.attn."), or None: not tracing
_recorder: ContextVar[tuple[dict, str] | None] = ContextVar("lib_recorder", default=None)


def traced(name: str, value):
    """Store ``value`` as the station ``name`` of the current scope, if tracing; return ``value``."""
    state = _recorder.get()
    if state is not None:
        stations, prefix = state
        stations[prefix + name] = value
    return value


def recording() -> bool:
    """Whether a ``tracing()`` block is recording the stations reached here."""
    return _recorder.get() is not None


@contextmanager
def tracing() -> Iterator[dict]:
    """Record every station reached inside the block into the dict it yields."""
    stations: dict = {}
    token = _recorder.set((stations, ""))
    try:
        yield stations
    finally:
        _recorder.reset(token)


@contextmanager
def scope(name: str) -> Iterator[None]:
    """Prefix the stations recorded inside the block with ``name.`` (does nothing if not tracing)."""
    state = _recorder.get()
    if state is None:
        yield
        return
    stations, prefix = state
    token = _recorder.set((stations, f"{prefix}{name}."))
    try:
        yield
    finally:
        _recorder.reset(token)
