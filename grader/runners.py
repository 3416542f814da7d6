"""How a check calls a function whose answer is not one array, and the stand-ins it passes.

A runner turns the student's function into a function of a case's inputs (``Exercise.runner``):

- ``sampler(sample_next)`` draws ``n`` tokens from one generator seeded with ``seed`` and returns
  them (mode ``"draws"``, compared exactly with ``lib``'s draws) or their frequencies (mode
  ``"frequencies"``, compared with the exact filtered distribution);
- ``packed(attend_with_cache)`` checks the shapes of ``(out, cache_k, cache_v)`` and concatenates
  them into one array.

``ToyLM`` is the tiny fixed "model" chapter 4's ``generate`` is called with.

NumPy and the standard library only: the scorer's harness loads this module inside the sandbox
(as ``runners``), where it applies the runners itself and unpickles the stand-ins.
"""

import numpy as np


def _one_id(token, V):
    """The token id ``sample_next`` returned, one of the ``V`` ids (else the error says what it was)."""
    arr = np.asarray(token)
    if arr.size != 1 or arr.dtype.kind not in "iu":
        raise TypeError(f"sample_next must return one integer token id, got {token!r}")
    token = int(arr.reshape(-1)[0])
    if not 0 <= token < V:
        raise ValueError(f"sample_next returned token id {token}, outside 0 .. {V - 1} (V = {V})")
    return token


def draw(sample_next, logits, seed, n, settings):
    """``n`` tokens from ``sample_next`` with one generator seeded with ``seed``; ``settings`` (a
    list of keyword dicts: temperature, top_k, top_p) are used in turn."""
    generator = np.random.default_rng(seed)
    out = np.empty(n, dtype=np.int64)
    for i in range(n):
        chosen, before, given = settings[i % len(settings)], generator.bit_generator.state, logits.copy()
        out[i] = _one_id(sample_next(given, generator, **chosen), logits.shape[-1])
        if not np.array_equal(given, logits, equal_nan=True):
            raise RuntimeError(
                "sample_next changed the logits it was given in place (logits /= temperature, say): the caller "
                "still holds that array and would read the changed values; compute into a new array "
                "(z = logits / temperature)"
            )
        _drew_from(generator, before, chosen, out[i], logits)
    return out


def _drew_from(generator, before: dict, chosen: dict, token: int, logits) -> None:
    """Raise if a sampled step gave a token other than the argmax without drawing from ``generator``
    (its state as ``before``): its randomness came from elsewhere."""
    greedy = chosen.get("temperature", 1.0) == 0 or chosen.get("top_k") == 1
    if not greedy and token != int(np.argmax(logits)) and generator.bit_generator.state == before:
        raise RuntimeError(
            f"sample_next drew token {token} ({chosen or 'defaults'}) without taking a number from the rng "
            "it was given"
        )


def sampler(sample_next):
    """How a check calls ``sample_next``: ``n`` draws from one generator seeded with ``seed``.

    Mode ``"draws"`` returns the token ids (and first makes sure the same seed gives the same
    draws); mode ``"frequencies"`` returns how often each token was drawn.
    """

    def run(logits, seed, n, mode, settings):
        draws = draw(sample_next, logits, seed, n, settings)
        if mode == "frequencies":
            return np.bincount(draws, minlength=logits.shape[-1]) / n
        if not np.array_equal(draws, draw(sample_next, logits, seed, n, settings)):
            raise RuntimeError(
                "two runs from the same seed gave different draws: sample_next must take its random "
                "numbers from the rng it is given"
            )
        return draws

    return run


def packed(attend_with_cache):
    """How a check calls ``attend_with_cache``: check the three results, then stack them.

    Returns ``out``, the grown ``cache_k`` and ``cache_v`` concatenated along the sequence axis.
    """

    def run(q_new, k_new, v_new, cache_k, cache_v):
        result = attend_with_cache(q_new, k_new, v_new, cache_k, cache_v)
        if not isinstance(result, tuple | list) or len(result) != 3:
            raise TypeError("attend_with_cache must return three arrays: (out, cache_k, cache_v)")
        out, new_k, new_v = (np.asarray(r) for r in result)
        H, T, d_head = q_new.shape
        S = cache_k.shape[-2]
        if out.shape != (H, T, d_head):
            raise ValueError(f"out has shape {out.shape}: expected {(H, T, d_head)}, one row per new query")
        for name, grown in (("cache_k", new_k), ("cache_v", new_v)):
            if grown.shape == (H, S, d_head) and T > 0:
                raise ValueError(
                    f"the returned {name} has the old shape {grown.shape}: the cache was not appended "
                    "to. Concatenate the new keys/values after the cached ones"
                )
            if grown.shape != (H, S + T, d_head):
                raise ValueError(
                    f"the returned {name} has shape {grown.shape}: expected {(H, S + T, d_head)}, the "
                    "old and the new entries along the sequence axis (-2)"
                )
        return np.concatenate([out, new_k, new_v], axis=-2)

    return run


class ToyLM:
    """A tiny fixed stand-in for a model: next-token logits from the last token and the length.

    ``ToyLM(g, V)(ids)`` returns logits of shape (V,) for the sequence ``ids`` (shape (T,)), with
    weights drawn from the generator ``g``. ``watch=(T, stop)`` refuses a sequence whose tokens
    after the first ``T`` (a prompt's) hold ``stop``: a loop that goes on after the stop token
    calls the model, and draws from its rng, for tokens it then throws away.
    """

    def __init__(
        self, g: np.random.Generator, V: int, dtype=np.float32, watch: tuple[int, int] | None = None
    ):
        self.table = (2.0 * g.normal(size=(V, V))).astype(dtype)
        self.by_length = g.normal(size=(7, V)).astype(dtype)
        self.watch = watch

    def __call__(self, ids):
        ids = np.asarray(ids)
        if ids.ndim != 1 or len(ids) == 0:
            raise ValueError(
                f"next_logits takes the whole sequence so far, shape (T,), got shape {ids.shape}"
            )
        if self.watch is not None and self.watch[1] in ids[self.watch[0] :]:
            raise RuntimeError(
                f"next_logits was called after the stop token {self.watch[1]} had been drawn: stop right "
                "after appending stop_token, without calling the model (or drawing from rng) again"
            )
        return self.table[ids[-1]] + self.by_length[len(ids) % 7]

    def __repr__(self):
        return f"ToyLM(V={self.table.shape[0]})"
