"""From text to vectors, wrong (chapters 1 and 5): encode, decode, the token and position lookups,
their sum, and the sinusoidal table."""

import numpy as np


def encode(text, stoi, *, ids="stoi", offset=0, unknown="raise"):
    """Characters to ids. ``ids``: ``"stoi"`` (right), ``"alphabet"`` (ord(ch) - ord('a')),
    ``"unicode"`` (ord(ch)) or ``"key-order"`` (the character's place among stoi's keys);
    ``offset`` is added to every id; a character missing from stoi ``"raise"``-s (right), becomes
    id 0 (``"zero"``) or is skipped (``"skip"``)."""
    lookup = {
        "stoi": lambda ch: stoi.get(ch, 0) if unknown == "zero" else stoi[ch],
        "alphabet": lambda ch: ord(ch) - ord("a"),
        "unicode": ord,
        "key-order": list(stoi).index,
    }[ids]
    kept = [ch for ch in text if unknown != "skip" or ch in stoi]
    return np.array([lookup(ch) + offset for ch in kept], dtype=np.int64)


def decode(ids, itos, *, sep="", step=1):
    """Ids to text; ``sep=" "`` joins the characters with spaces, ``step=-1`` reads backwards."""
    return sep.join(itos[int(i)] for i in ids[::step])


def token_embedding(ids, wte, *, take="rows"):
    """``wte[ids]``; ``take``: ``"rows"`` (right), ``"columns"`` (wte[:, ids]),
    ``"columns-transposed"``, ``"flattened"`` (the batch axis lost) or ``"first-sequence"`` (the
    batch's first sequence only)."""
    if take == "first-sequence" and (ids.ndim != 2 or len(ids) == 1):
        return None  # the right answer without a batch axis; on a batch of one, "flattened"
    return {
        "rows": lambda: wte[ids],
        "columns": lambda: wte[:, ids],
        "columns-transposed": lambda: np.moveaxis(wte[:, ids], 0, -1),
        "flattened": lambda: wte[ids.reshape(-1)],
        "first-sequence": lambda: wte[ids[0]],
    }[take]()


def position_embedding(n_tokens, wpe, *, rows="first", ids=None):
    """The rows of positions 0 .. n_tokens - 1; ``rows``: ``"first"`` (right, wpe[:n_tokens]),
    ``"shifted"`` (rows 1 .. n_tokens), ``"last"`` (the table's last n_tokens), ``"whole"`` (the
    whole table), ``"one"`` (wpe[n_tokens]), ``"by-id"`` (wpe[ids]), ``"by-batch"`` (rows along the
    batch axis of ``ids``) or ``"none"`` (zeros)."""
    if (rows == "one" and n_tokens >= len(wpe)) or (rows == "by-batch" and ids.ndim != 2):
        return None  # the same as the right answer (or no answer at all) on these inputs
    return {
        "first": lambda: wpe[:n_tokens],
        "shifted": lambda: wpe[1 : n_tokens + 1],
        "last": lambda: wpe[-n_tokens:],
        "whole": lambda: wpe,
        "one": lambda: wpe[n_tokens],
        "by-id": lambda: wpe[ids],
        "by-batch": lambda: wpe[: ids.shape[0], None, :],
        "none": lambda: np.zeros_like(wpe[:1]),
    }[rows]()


def embed(ids, wte, wpe, *, positions="first", tokens=True, ids_from=0):
    """``wte[ids] + wpe[:T]``; ``positions``: any ``rows`` of ``position_embedding``;
    ``tokens=False`` leaves the token rows out; ``ids_from=1`` reads the ids as 1-based,
    ``wte[ids - 1]``."""
    rows = position_embedding(ids.shape[-1], wpe, rows=positions, ids=ids)
    if rows is None:
        return None
    return (wte[ids - ids_from] if tokens else np.zeros(ids.shape + wte.shape[-1:], wte.dtype)) + rows


def sinusoidal_positions(
    n_tokens,
    d,
    base=10000.0,
    *,
    exponent="2j/d",
    swapped=False,
    layout="alternate",
    divide=True,
    base_as="base",
):
    """The sinusoidal table; the ``exponent`` of pair j: ``"2j/d"`` (right), ``"j/d"`` or
    ``"(2j+1)/d"``; ``swapped`` puts cosines where the sines go; ``layout="halves"`` puts the sines
    in the first half; ``divide=False`` multiplies by base**exponent; ``base_as``: ``"base"``
    (right), ``"int"`` (its fraction lost) or ``"10000"`` (the argument ignored)."""
    if base_as != "base" and base == int(base) and (base_as == "int" or base == 10000):
        return None  # the same as the right answer on these inputs
    base = {"base": base, "int": int(base), "10000": 10000}[base_as]
    j = np.arange(d // 2)
    power = {"2j/d": 2 * j / d, "j/d": j / d, "(2j+1)/d": (2 * j + 1) / d}[exponent]
    angles = np.arange(n_tokens)[:, None] / base ** (power if divide else -power)  # [T, d/2]
    first, second = (np.cos, np.sin) if swapped else (np.sin, np.cos)
    if layout == "halves":
        return np.concatenate([first(angles), second(angles)], axis=1)
    table = np.empty((n_tokens, d))
    table[:, 0::2], table[:, 1::2] = first(angles), second(angles)
    return table


# The sum of the two lookups: knobs of ``embed``.
EMBED = {
    "off-by-one": (
        {"positions": "shifted"},
        "off-by-one positions: the token at position 0 must get row 0 of wpe",
    ),
    "no-positions": (
        {"positions": "none"},
        "you returned the token embeddings only: add the position embeddings",
    ),
    "positions-only": (
        {"tokens": False},
        "you returned the position embeddings only: add the token embeddings wte[ids]",
    ),
    "positions-from-the-end": (
        {"positions": "last"},
        "you took the last T rows of wpe: positions count from the start, so the token at position t "
        "gets row t, rows 0 .. T-1 (wpe[:T])",
    ),
    "ids-from-one": (
        {"ids_from": 1},
        "you took row ids - 1 of wte for each token: ids count from 0, so token id i gets row i, wte[ids]",
    ),
    "positions-by-id": (
        {"positions": "by-id"},
        "you looked up positions by token id (wpe[ids]): the token at position t gets row t of wpe, whatever its id",
    ),
}
