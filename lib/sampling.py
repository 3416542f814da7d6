"""From a distribution to a token: temperature, top-k, top-p, sampling, and the generation loop.

Every filter takes logits and returns logits, with removed tokens set to ``-inf``, so the rules
compose in a fixed order: temperature, then top-k, then top-p, then softmax and a draw.

Edge cases, by definition here:

- ``temperature=0`` is greedy decoding (the limit T -> 0); ``top_k=1`` is greedy too.
- ``top_k >= V`` and ``top_p=1.0`` change nothing.
- top-p keeps the smallest set of most likely tokens whose probability reaches ``p``, *including*
  the token that crosses the threshold, so it never keeps zero tokens.
- Ties are broken by token id: among equal logits the lower id ranks first, so the k-th place and
  the top-p boundary are deterministic.
"""

import numpy as np

from ._validate import as_float_array, as_token_ids
from .activations import softmax
from .engine import Engine


def _ranking(logits: np.ndarray) -> np.ndarray:
    """Token ids from most to least likely; equal logits keep id order (a stable sort)."""
    return np.argsort(-logits, axis=-1, kind="stable")


def apply_temperature(logits, temperature: float) -> np.ndarray:
    """Divide logits by the temperature; ``temperature=0`` keeps only the argmax.

    ``softmax(logits / T)``: T < 1 sharpens the distribution, T > 1 flattens it.
    """
    logits = as_float_array(logits, "logits")
    if temperature < 0 or not np.isfinite(temperature):
        raise ValueError(f"temperature must be >= 0 and finite, got {temperature}")
    if temperature == 0:
        return top_k_filter(logits, 1)
    return logits / logits.dtype.type(temperature)


def top_k_filter(logits, k: int | None) -> np.ndarray:
    """Keep the ``k`` largest logits (ties: lower id first), set the rest to ``-inf``.

    Parameters
    ----------
    logits : array, shape (..., V)
    k : int or None
        ``None`` or ``k >= V`` keeps everything.
    """
    logits = as_float_array(logits, "logits")
    if k is None or k >= logits.shape[-1]:
        return logits.copy()
    if int(k) != k or k < 1:
        raise ValueError(f"top_k must be a positive integer, got {k}")
    drop = _ranking(logits)[..., k:]  # everything after the k-th place
    out = logits.copy()
    np.put_along_axis(out, drop, -np.inf, axis=-1)
    return out


def top_p_filter(logits, p: float | None) -> np.ndarray:
    """Nucleus filter: keep the most likely tokens until their probability reaches ``p``.

    A token is kept when the probability of the tokens ranked above it is still below ``p``; so
    the token that crosses the threshold is kept. ``None`` or ``p >= 1`` keeps everything.
    """
    logits = as_float_array(logits, "logits")
    if p is None or p >= 1.0:
        return logits.copy()
    if not 0.0 < p < 1.0:
        raise ValueError(f"top_p must be in (0, 1], got {p}")
    order = _ranking(logits)
    probs = np.take_along_axis(softmax(logits, axis=-1), order, axis=-1)
    mass_before = np.cumsum(probs, axis=-1) - probs  # probability ranked strictly above
    out = logits.copy()
    np.put_along_axis(
        out, order, np.where(mass_before < p, np.take_along_axis(logits, order, -1), -np.inf), -1
    )
    return out


def filtered_probs(logits, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None):
    """The distribution actually sampled from: temperature, top-k, top-p, then softmax."""
    z = apply_temperature(logits, temperature)
    z = top_k_filter(z, top_k)
    z = top_p_filter(z, top_p)
    return softmax(z, axis=-1)


def sample_next(
    logits,
    rng: np.random.Generator | None = None,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
):
    """Draw the next token id from ``logits`` of shape (V,) (or one per row of (B, V)).

    Greedy (no randomness used) when ``temperature == 0`` or ``top_k == 1``.
    """
    logits = as_float_array(logits, "logits")
    if temperature == 0 or top_k == 1:
        return np.argmax(logits, axis=-1)  # first maximum: lowest id among ties
    if rng is None:
        raise ValueError("sampling needs a random generator: pass rng=np.random.default_rng(seed)")
    probs = filtered_probs(logits, temperature, top_k, top_p).astype(np.float64)
    cdf = np.cumsum(probs, axis=-1)
    u = rng.random(probs.shape[:-1] + (1,)) * cdf[..., -1:]
    return np.minimum((cdf <= u).sum(axis=-1), probs.shape[-1] - 1)


def generate(
    model,
    ids,
    max_new_tokens: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    rng: np.random.Generator | None = None,
    stop_token: int | None = None,
    return_probs: bool = False,
    use_cache: bool = True,
):
    """Extend ``ids`` (shape (T,)) token by token: ``sample_next`` in a loop, run by ``lib.Engine``.

    Stops after ``max_new_tokens`` or right after emitting ``stop_token``, and never runs past the
    model's context.

    Parameters
    ----------
    rng : np.random.Generator
        The source of every random draw, as for ``sample_next`` (not needed when greedy).
        ``np.random.default_rng(seed)`` makes a run reproducible; passing the same generator to
        several calls continues one stream of draws.
    use_cache : bool
        Keep a KV cache (the default): the prompt fills it once ("prefill") and each step runs
        one new token against it ("decode"). Without it, every step runs the whole sequence.

    Returns
    -------
    ids : int64 array, shape (T + n_new,)
    probs : float array, shape (n_new, V), only with ``return_probs``; row ``t`` is the filtered
        distribution the ``t``-th new token was drawn from.
    """
    ids = as_token_ids(ids, model.config.vocab_size)
    if ids.ndim != 1:
        raise ValueError(f"generate takes one sequence of shape (T,), got shape {ids.shape}")
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    engine = Engine(model)
    cache = model.new_cache() if use_cache else None
    out, steps = ids.tolist(), []
    for _ in range(min(max_new_tokens, model.config.n_ctx - len(ids))):
        if cache is None:
            logits = engine.prefill(np.array(out))  # the whole sequence, every step
        elif cache.length == 0:
            logits = engine.prefill(ids, cache)  # the prompt fills the cache
        else:
            logits = engine.decode(out[-1], cache)  # the newest token against the cache
        if return_probs:
            steps.append(filtered_probs(logits, temperature, top_k, top_p))
        token = int(sample_next(logits, rng, temperature=temperature, top_k=top_k, top_p=top_p))
        out.append(token)
        if token == stop_token:
            break
    result = np.array(out, dtype=np.int64)
    if return_probs:
        V = model.config.vocab_size
        return result, (np.stack(steps) if steps else np.zeros((0, V), model.dtype))
    return result
