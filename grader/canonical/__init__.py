"""Python code rewritten to one canonical form, so that rewrites that keep its data flow do not
keep it from being compared (``grader.similarity``). The form is for fingerprints, not for running:
it keeps what is computed from what, and drops what only steers (a ``try``'s handlers, a ``with``'s
context, an input check's test).

A copier who wants lib's code to look like their own, without understanding it, rewrites it
mechanically (red team, rounds four to seven). Each module undoes one kind of rewrite:

- ``folds``: rewrites of the syntax. ``(x,)[0]``, ``getattr(np, 'me' + 'an')``, an alias ``m =
  np.mean``, ``a.__add__(b)`` and ``np.add(a, b)``, a ``pass`` or a stray string after every
  statement, a block that runs its body once (``for _ in range(1)``, ``while True: ...; break``,
  ``if True``, ``try``, ``with``), ``x.mean()`` for ``np.mean(x)``, the two sides of ``+``, ``*``,
  ``==`` and ``<`` in either order. Code honest students write is left as it is but for that
  order and those spellings; an input check (``if ...: raise``) is its ``raise`` alone, first in
  its block; an operator spelt as a call is the operator (``operator.sub(a, b)``, ``def _sub(a, b):
  return a - b``); ``b if not c else a`` is ``a if c else b``; ``del n`` is nothing.
- ``dataflow``: rewrites that only move data about, in each function. A tuple assignment split
  in its parts, a temporary used once replaced by its value, a thunk only called (``n = lambda:
  e``, read ``n()``) its value, a store nobody reads (or read only after it is bound again) dropped
  (``x, _ = v, 0``, ``_ = 0`` after every statement, ``_r = e; return _r``, each call lifted into
  a temporary of its own); keyword arguments sorted.
- ``wrappers``: calls of functions that only pass their arguments on (``I(x)`` for ``x``),
  replaced by what they return; a name bound to NumPy's at the top of a cell (``_mean = np.mean``)
  is NumPy's.
- ``form``: the three together, ``canonical`` (source to source) and ``normalized`` (a tree),
  within a time budget (``within``).

Every rule that leaves code out is one a copier can put lib's code behind (red team, eighth
round: a ``try``'s handler, a ``with``'s context, an input check's test, a store read through
``locals()``, a decoy wrapper named like a call of lib's; ninth: an element ``(0, e)[0]`` leaves
out, an argument a wrapper ignores). So there are two forms: the canonical
form, and the one that leaves out no code that can run (``keep``); a student's code is compared in
both (``similarity.evidence``), and a copy must escape both. Wrappers and names of NumPy's are
substituted by scope: a function's own names are its own.

Code that does not parse is returned unchanged.
"""

from .dataflow import dataflow
from .form import canonical, normalized, within
from .wrappers import inline_wrappers, wrappers

__all__ = ["canonical", "dataflow", "inline_wrappers", "normalized", "within", "wrappers"]
