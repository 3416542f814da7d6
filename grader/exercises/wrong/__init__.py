"""Wrong implementations of the course's stages, one per stage, shared by every chapter that
grades it: each is a right implementation with knobs, and turning one knob makes one known mistake.

A chapter declares an exercise's known mistakes as a table, ``table(variant, {name: (knobs,
hint)})``: each row is ``variant`` with those knobs set, so a mistake is its knobs and its hint.
Two chapters that grade the same stage (LayerNorm in chapters 2 and 5, the loss in 3 and 5, the
attention weights in 2, 4 and 5) turn the same knobs of the same code, and where they say the same
thing they share the rows too (the upper-case tables of these modules). With every knob at its
default a variant is the right function: ``tests/test_exercises.py`` checks it against the
exercise's reference on every case, visible and hidden.

The modules follow ``lib``'s stages: ``embedding`` (text to vectors), ``norms``, ``activations``
(GELU, softmax), ``attention`` (scores, weights, heads, RoPE, the KV cache), ``mlp``, ``block``
(the block and the whole forward pass), ``head`` (the LM head and the loss), ``sampling`` and
``cost`` (parameters, FLOPs, cache bytes).
"""

import functools
from collections.abc import Callable

from ...exercise import Mistake


def table(
    variant: Callable, rows: dict[str, tuple[dict, str]], wrap: Callable | None = None
) -> tuple[Mistake, ...]:
    """Known mistakes from ``{name: (knobs, hint)}``: each ``variant`` with its knobs, passed
    through ``wrap`` (a runner) if given; ``Mistake.right`` is ``variant`` with none turned."""
    wrap = wrap or (lambda fn: fn)
    return tuple(
        Mistake(name, wrap(functools.partial(variant, **knobs)), hint, right=wrap(variant))
        for name, (knobs, hint) in rows.items()
    )
