"""Honest implementations of lib's functions, written as students write them: what the copy scan
(``grader.integrity``) leaves out of lib's fingerprint, with the released stub and the course's
solution.

A copy of lib's function is told from honest code by what lib's code has that honest code does
not. The stub and the solution are one honest answer each; these are the others, the ones honest
students were seen to write that hold most of lib's code: the plain composition of lib's public
parts (SwiGLU as three calls of ``linear`` with ``.get("b")``, an embedding as ``token_embedding``
plus a guarded ``position_embedding``), the in-place softmax NumPy's ``out=`` invites, the causal
mask as ``np.tri`` with a default key count and a check (false-positive sweep, 66 honest answers:
"86% of lib.causal_mask"). The
canonical form inlines temporaries and one-line helpers, so the more honest code is factored, the
closer it comes to lib's nested one-expression form: 100% of ``lib.swiglu`` for an answer on
``linear``, 89% of ``lib.embed`` for one on chapter 1's functions, 81% of ``lib.softmax`` in
place (red team, seventh round). Once these are left out, what is left of such a function is
too short to tell a copy from an answer (``similarity.MIN_KGRAMS``), and it is not compared: a
copy of it is the answer anyway.

Keyed by lib's name for the function (``integrity._lib_name``); each entry is the source of a
notebook cell (its functions' bodies count, the helpers it defines inlined as in the scan). An
entry makes every token k-gram it holds no evidence of copying, for every exercise lib's function
implements: add only code an honest student writes from the exercise's docstring, never lib's
own (``tests/test_similarity.py`` checks each runs and agrees with lib).
"""

from functools import cache

from . import similarity

HONEST: dict[str, tuple[str, ...]] = {
    "lib.softmax": (
        """
def softmax(x, axis=-1):
    x = np.asarray(x, dtype=float)
    e = x - x.max(axis=axis, keepdims=True)
    np.exp(e, out=e)
    e /= e.sum(axis=axis, keepdims=True)
    return e
""",
    ),
    "lib.causal_mask": (
        """
def causal_mask(T, S=None):
    S = T if S is None else S
    if S < T:
        raise ValueError(f"{T} queries but only {S} keys")
    return np.tri(T, S, k=S - T, dtype=bool)
""",
    ),
    "lib.swiglu": (
        """
def swiglu(x, params):
    gate = linear(x, params["gate_proj"]["w"], params["gate_proj"].get("b"))
    up = linear(x, params["up_proj"]["w"], params["up_proj"].get("b"))
    return linear(silu(gate) * up, params["down_proj"]["w"], params["down_proj"].get("b"))
""",
        """
def linear(x, w, b=None):
    return x @ w if b is None else x @ w + b

def swiglu(x, params):
    g = linear(x, params["gate_proj"]["w"], params["gate_proj"].get("b"))
    u = linear(x, params["up_proj"]["w"], params["up_proj"].get("b"))
    return linear(g / (1 + np.exp(-g)) * u, params["down_proj"]["w"], params["down_proj"].get("b"))
""",
        """
def _proj(x, p):
    return linear(x, p["w"], p.get("b"))

def swiglu(x, params, act=silu):
    return _proj(act(_proj(x, params["gate_proj"])) * _proj(x, params["up_proj"]), params["down_proj"])
""",
    ),
    "lib.mlp": (
        """
def mlp(x, params):
    h = gelu(linear(x, params["c_fc"]["w"], params["c_fc"].get("b")))
    return linear(h, params["c_proj"]["w"], params["c_proj"].get("b"))
""",
    ),
    "lib.embed": (
        """
def embed(ids, wte, wpe=None, start=0):
    x = token_embedding(ids, wte)
    if wpe is not None:
        x = x + position_embedding(x.shape[-2], wpe, start)
    return x
""",
        """
def token_embedding(ids, wte):
    return wte[ids]

def position_embedding(n, wpe, start=0):
    return wpe[start:start + n]

def embed(ids, wte, wpe=None, start=0):
    x = token_embedding(ids, wte)
    if wpe is not None:
        x = x + position_embedding(x.shape[-2], wpe, start)
    return x
""",
    ),
}


@cache
def bodies(function: str) -> tuple[str, ...]:
    """The honest alternatives to lib's ``function``, as ``similarity.bodies`` compares code."""
    return tuple(similarity.bodies(source) for source in HONEST.get(function, ()))
