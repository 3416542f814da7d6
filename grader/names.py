"""Which global names a piece of Python binds and reads, from ``symtable`` (nothing is run).

Used to cut programs down to what they need: the scorer's ``lib`` (``grader.lending``) and the
course cells the scorer runs for a student (``grader.program``).
"""

import symtable


def bound(source: str) -> set[str]:
    """The names the code binds at its top level (assignments, imports, ``def``, ``class``)."""
    table = _table(source)
    if table is None:
        return set()
    return {
        s.get_name() for s in table.get_symbols() if s.is_assigned() or s.is_imported() or s.is_namespace()
    }


def read(source: str) -> set[str]:
    """The global names the code reads, at its top level or in any function, class, lambda or
    comprehension in it (their own locals excluded)."""
    found, tables = set(), [_table(source)]
    while tables:
        table = tables.pop()
        if table is not None:
            found |= {s.get_name() for s in table.get_symbols() if s.is_referenced() and s.is_global()}
            tables += table.get_children()
    return found


def _table(source: str):
    try:
        return symtable.symtable(source, "<code>", "exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
