"""Input checks shared by the stages: each error names what was wrong and what was expected."""

import numpy as np

FLOAT_DTYPES = (np.float32, np.float64)


def as_float_array(x, name: str, min_ndim: int = 1) -> np.ndarray:
    """Return ``x`` as a float32/float64 array, or raise a TypeError/ValueError naming ``name``."""
    x = np.asarray(x)
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be float32 or float64, got dtype {x.dtype}")
    if x.ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimension(s), got shape {x.shape}")
    return x


def check_last_dim(x: np.ndarray, size: int, name: str, expected: str) -> None:
    if x.shape[-1] != size:
        raise ValueError(f"{name} has shape {x.shape}: its last axis must be {expected} = {size}")


def as_token_ids(ids, vocab_size: int | None = None, name: str = "ids") -> np.ndarray:
    """Validate token ids: integers, shape (T,) or (B, T), every id in [0, vocab_size)."""
    arr = np.asarray(ids)
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(
            f"{name} must be integer token ids, got dtype {arr.dtype}"
            + (
                " (cast with .astype(np.int64) only if the values are whole numbers)"
                if np.issubdtype(arr.dtype, np.floating)
                else ""
            )
        )
    if arr.ndim not in (1, 2):
        raise ValueError(f"{name} must have shape (T,) or (B, T), got shape {arr.shape}")
    if arr.shape[-1] == 0:
        raise ValueError(f"{name} is empty: shape {arr.shape}; give at least one token")
    if vocab_size is not None:
        bad = (arr < 0) | (arr >= vocab_size)
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(
                f"{name}{list(where)} = {int(arr[where])} is outside the vocabulary [0, {vocab_size})"
            )
    return arr.astype(np.int64, copy=False)


def check_broadcasts_to(shape: tuple, target: tuple, name: str, target_name: str) -> None:
    """Raise unless an array of ``shape`` broadcasts to ``target`` without changing it."""
    try:
        fits = np.broadcast_shapes(shape, target) == tuple(target)
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(
            f"{name} has shape {shape}, which does not broadcast to {target_name} {tuple(target)}"
        )


def as_model_input(ids, config, cache=None) -> tuple[np.ndarray, int]:
    """Check the ids (and the cache they continue) for a forward pass; return them and ``start``.

    ``start`` is the position of the first new token: the number of tokens already in the cache.
    """
    ids = as_token_ids(ids, config.vocab_size)
    start = 0 if cache is None else cache.length
    if start + ids.shape[-1] > config.n_ctx:
        raise ValueError(
            f"sequence too long: {start} cached + {ids.shape[-1]} new tokens > context length n_ctx={config.n_ctx}"
        )
    if cache is not None and cache.batch != ids.shape[:-1]:
        raise ValueError(
            f"the cache serves inputs with leading axes {cache.batch}, ids has shape {ids.shape} "
            "(model.new_cache() is for one sequence (T,), model.new_cache(B) for B sequences (B, T))"
        )
    return ids, start
