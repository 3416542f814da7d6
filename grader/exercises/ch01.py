"""Chapter 1, tokens and embeddings: from text to one vector per token.

The exercises appear in the notebook in the order of ``EXERCISES``: encode, decode,
token_embedding, q_tied, q_positions, position_embedding, q_batch_shape, embed,
sinusoidal_positions.
"""

import numpy as np

import lib

from ..exercise import Case, Exercise, Mistake, Part, choice, rng

ASSIGNMENT = "01-embeddings"

TEXT = "to be, or not to be"
VOCAB = sorted(set("abcdefghijklmnopqrstuvwxyz ,.!?'\n"))
STOI = {ch: i for i, ch in enumerate(VOCAB)}
ITOS = dict(enumerate(VOCAB))

# A second vocabulary in another order and with capitals: a function that ignores the table it is
# given (``ord(ch) - 97``, a global ``stoi``) fails on it.
_SHUFFLED = [VOCAB[i] for i in rng(11).permutation(len(VOCAB))] + list("TMW")
STOI_SHUFFLED = {ch: i for i, ch in enumerate(_SHUFFLED)}
ITOS_SHUFFLED = dict(enumerate(_SHUFFLED))


def _tables(seed: int, V: int, n_ctx: int, d: int, dtype=np.float32):
    g = rng(seed)
    return g.normal(size=(V, d)).astype(dtype), g.normal(size=(n_ctx, d)).astype(dtype)


# ---- encode / decode ---------------------------------------------------------------------------


def _encode(text, stoi):
    return np.array([stoi[ch] for ch in text], dtype=np.int64)


def _decode(ids, itos):
    return "".join(itos[int(i)] for i in ids)


def _text_cases():
    return [
        Case("hamlet", {"text": TEXT, "stoi": STOI}),
        Case(
            "punctuation",
            {"text": "what's in a name?\nthat which we call a rose", "stoi": STOI},
            hidden=True,
            describe="a two-line text with punctuation",
        ),
        Case("one-char", {"text": "o", "stoi": STOI}, hidden=True, describe="a single character"),
        Case(
            "other-vocabulary",
            {"text": "To be, or not to be, that is the question.\nWhat's in a name?", "stoi": STOI_SHUFFLED},
            hidden=True,
            describe="another vocabulary, in another order and with capitals",
        ),
    ]


def _ids_cases():
    cases = []
    for c in _text_cases():
        stoi = c.inputs["stoi"]
        itos = ITOS_SHUFFLED if stoi is STOI_SHUFFLED else ITOS
        cases.append(
            Case(c.name, {"ids": _encode(c.inputs["text"], stoi), "itos": itos}, c.hidden, c.describe)
        )
    return cases


ENCODE = Exercise(
    name="encode",
    cases=_text_cases,
    reference=_encode,
    mistakes=(
        Mistake(
            "one-based",
            lambda text, stoi: _encode(text, stoi) + 1,
            "every id is one too large: ids start at 0, exactly as stoi says; do not add 1",
        ),
        Mistake(
            "alphabet-position",
            lambda text, stoi: np.array([ord(ch) - ord("a") for ch in text]),
            "you computed the position in the alphabet (ord(ch) - ord('a')): the ids come from the "
            "vocabulary you are given, look each character up in stoi",
        ),
        Mistake(
            "unicode",
            lambda text, stoi: np.array([ord(ch) for ch in text]),
            "these are Unicode code points (ord): the ids come from the vocabulary, look each "
            "character up in stoi",
        ),
    ),
    check_dtype=False,
    error_hints={
        "KeyError": "a key is missing from stoi: look up each character of the text, stoi[ch]",
        "unhashable": "stoi maps single characters to ids: look up one character at a time",
    },
)

DECODE = Exercise(
    name="decode",
    kind="text",
    cases=_ids_cases,
    reference=_decode,
    mistakes=(
        Mistake(
            "spaces",
            lambda ids, itos: " ".join(itos[int(i)] for i in ids),
            "decode is not the inverse of encode: you joined the characters with spaces; "
            "join them with the empty string so decode(encode(text)) == text",
        ),
        Mistake(
            "reversed",
            lambda ids, itos: "".join(itos[int(i)] for i in ids[::-1]),
            "the text comes out backwards: keep the order of the ids",
        ),
    ),
    error_hints={
        "KeyError": "itos maps an id to its character: look up each id, itos[int(i)]",
        "sequence item": "join needs strings: join the characters itos[i], not the ids",
    },
)

# ---- the token embedding -----------------------------------------------------------------------


def _lookup_cases():
    wte, _ = _tables(1, V=20, n_ctx=16, d=8)
    wte64, _ = _tables(2, V=50, n_ctx=32, d=12, dtype=np.float64)
    return [
        Case("short", {"ids": np.array([3, 1, 4, 1, 5]), "wte": wte}),
        Case("batch", {"ids": rng(10).integers(0, 20, size=(3, 4)), "wte": wte}),
        Case(
            "batch64",
            {"ids": rng(3).integers(0, 50, size=(2, 7)), "wte": wte64},
            hidden=True,
            describe="a batch of 2 sequences of 7 ids, float64 table",
        ),
        Case(
            "large-ids",
            {"ids": np.array([49, 0, 48, 17]), "wte": wte64},
            hidden=True,
            describe="ids larger than the width d, float64 table",
        ),
    ]


TOKEN_EMBEDDING = Exercise(
    name="token_embedding",
    cases=_lookup_cases,
    reference=lambda ids, wte: lib.token_embedding(ids, wte),
    mistakes=(
        Mistake(
            "columns",
            lambda ids, wte: wte[:, ids],
            "rows vs columns: token i is ROW i of wte (shape V x d); wte[:, ids] takes columns",
        ),
        Mistake(
            "columns-transposed",
            lambda ids, wte: np.moveaxis(wte[:, ids], 0, -1),
            "rows vs columns: token i is ROW i of wte (shape V x d); you took columns and transposed, "
            "which only has the right shape when V happens to equal d",
        ),
        Mistake(
            "flattened",
            lambda ids, wte: wte[ids.reshape(-1)],
            "you lost the batch axis: for ids of shape (B, T) the answer is (B, T, d); indexing wte "
            "with the whole ids array keeps its shape, so do not flatten it",
        ),
        Mistake(
            "first-row-only",
            lambda ids, wte: wte[ids[0]] if ids.ndim == 2 else None,
            "only the first sequence of the batch came back: index wte with the whole (B, T) array",
        ),
    ),
    error_hints={
        "out of bounds": "an id is larger than d: are you indexing columns (wte[:, ids]) instead of rows?",
        "only integer scalar arrays": "your code treats ids as 1-D; ids may be a (B, T) batch: index wte "
        "with the whole array at once, wte[ids]",
        "only length-1 arrays": "your code treats ids as 1-D; ids may be a (B, T) batch: index wte "
        "with the whole array at once, wte[ids]",
        "only 0-dimensional arrays": "your code treats ids as 1-D; ids may be a (B, T) batch: index wte "
        "with the whole array at once, wte[ids]",
    },
)

# ---- concept checks ----------------------------------------------------------------------------

Q_TIED = choice("q_tied", ("a", "b", "c", "d"))

Q_POSITIONS = choice("q_positions", ("a", "b", "c", "d"))

Q_BATCH_SHAPE = choice("q_batch_shape", ("a", "b", "c", "d"))

# ---- learned positions -------------------------------------------------------------------------


def _position_cases():
    _, wpe = _tables(4, V=20, n_ctx=16, d=8)
    _, wpe64 = _tables(5, V=20, n_ctx=40, d=6, dtype=np.float64)
    return [
        Case("five", {"n_tokens": 5, "wpe": wpe}),
        Case(
            "full-context",
            {"n_tokens": 40, "wpe": wpe64},
            hidden=True,
            describe="every position of a 40-row table, float64",
        ),
        Case("one", {"n_tokens": 1, "wpe": wpe}, hidden=True, describe="a single token"),
        Case("most", {"n_tokens": 33, "wpe": wpe64}, hidden=True, describe="33 of 40 positions, float64"),
    ]


POSITION_EMBEDDING = Exercise(
    name="position_embedding",
    cases=_position_cases,
    reference=lambda n_tokens, wpe: lib.position_embedding(n_tokens, wpe),
    mistakes=(
        Mistake(
            "off-by-one",
            lambda n_tokens, wpe: wpe[1 : n_tokens + 1],
            "off-by-one positions: the first token is at position 0, so it gets row 0 of wpe",
        ),
        Mistake(
            "whole-table",
            lambda n_tokens, wpe: wpe,
            "you returned the whole table: keep only the first n_tokens rows, one per token",
        ),
        Mistake(
            "one-row",
            lambda n_tokens, wpe: wpe[n_tokens],
            "you returned one row: wpe[n_tokens] is the row of position n_tokens; you need rows "
            "0 .. n_tokens - 1, a slice",
        ),
        Mistake(
            "last-rows",
            lambda n_tokens, wpe: wpe[-n_tokens:],
            "you took the last n_tokens rows of the table: positions count from the start, rows 0 .. "
            "n_tokens - 1",
        ),
    ),
)

# ---- token + position --------------------------------------------------------------------------


def _embed_cases():
    wte, wpe = _tables(6, V=20, n_ctx=16, d=8)
    wte64, wpe64 = _tables(7, V=30, n_ctx=12, d=6, dtype=np.float64)
    return [
        Case("short", {"ids": np.array([7, 2, 2, 9, 0, 11]), "wte": wte, "wpe": wpe}),
        Case("batch", {"ids": rng(8).integers(0, 20, size=(3, 5)), "wte": wte, "wpe": wpe}),
        Case(
            "batch64",
            {"ids": rng(9).integers(0, 30, size=(2, 12)), "wte": wte64, "wpe": wpe64},
            hidden=True,
            describe="a batch of 2 full-context sequences, float64",
        ),
        Case(
            "single64",
            {"ids": np.array([29, 3, 0]), "wte": wte64, "wpe": wpe64},
            hidden=True,
            describe="one sequence of 3 tokens, float64",
        ),
        Case(
            "square-batch",
            {"ids": rng(12).integers(0, 20, size=(4, 4)), "wte": wte, "wpe": wpe},
            hidden=True,
            describe="a batch of 4 sequences of 4 ids (B = T)",
        ),
    ]


def _embed_stations(inputs):
    ids, wte, wpe = inputs["ids"], inputs["wte"], inputs["wpe"]
    return {
        "embed.tok": lib.token_embedding(ids, wte),
        "embed.pos": lib.position_embedding(ids.shape[-1], wpe),
    }


def _positions_by_batch(ids, wte, wpe):
    """Position rows taken by the batch index (ids.shape[0]) instead of the sequence length."""
    if ids.ndim != 2:
        return None
    return wte[ids] + wpe[: ids.shape[0], None, :]


EMBED = Exercise(
    name="embed",
    cases=_embed_cases,
    reference=lambda ids, wte, wpe: lib.embed(ids, wte, wpe),
    stations=_embed_stations,
    parts=(
        Part("embed.tok", "token_embedding", lambda inp, st: {"ids": inp["ids"], "wte": inp["wte"]}),
        Part(
            "embed.pos",
            "position_embedding",
            lambda inp, st: {"n_tokens": inp["ids"].shape[-1], "wpe": inp["wpe"]},
        ),
    ),
    mistakes=(
        Mistake(
            "off-by-one",
            lambda ids, wte, wpe: wte[ids] + wpe[1 : ids.shape[-1] + 1],
            "off-by-one positions: the token at position 0 must get row 0 of wpe",
        ),
        Mistake(
            "no-positions",
            lambda ids, wte, wpe: wte[ids],
            "you returned the token embeddings only: add the position embeddings",
        ),
        Mistake(
            "positions-only",
            lambda ids, wte, wpe: np.broadcast_to(wpe[: ids.shape[-1]], ids.shape + wpe.shape[-1:]),
            "you returned the position embeddings only: add the token embeddings wte[ids]",
        ),
        Mistake(
            "positions-by-batch",
            _positions_by_batch,
            "the positions follow the batch axis: each sequence must get rows 0 .. T-1 of wpe along its "
            "tokens (T = ids.shape[-1]); a (T, d) array broadcasts over the batch by itself",
        ),
    ),
    error_hints={
        "out of bounds": "an id is larger than d: are you indexing columns (wte[:, ids]) instead of rows? "
        "Token i is ROW i of wte",
        "could not be broadcast": "adding positions of the wrong length? You need one position row per "
        "token: ids.shape[-1] rows (the sequence length), not len(ids) or ids.shape[0] (the batch) "
        "or the whole table",
    },
)

# ---- sinusoidal positions ----------------------------------------------------------------------


def _sinusoid_cases():
    return [
        Case("small", {"n_tokens": 6, "d": 8}),
        Case("wide", {"n_tokens": 32, "d": 48}, hidden=True, describe="32 positions, d = 48"),
        Case("one-pair", {"n_tokens": 9, "d": 2}, hidden=True, describe="d = 2, a single sin/cos pair"),
        Case("tall", {"n_tokens": 100, "d": 10}, hidden=True, describe="100 positions, d = 10"),
    ]


def _sinusoid(n_tokens, d, exponent, first=np.sin, second=np.cos):
    angles = np.arange(n_tokens)[:, None] / 10000 ** exponent(d)
    table = np.empty((n_tokens, d))
    table[:, 0::2], table[:, 1::2] = first(angles), second(angles)
    return table


def _two_j_over_d(d):
    return np.arange(0, d, 2) / d


SINUSOIDAL = Exercise(
    name="sinusoidal_positions",
    cases=_sinusoid_cases,
    reference=lambda n_tokens, d: lib.sinusoidal_positions(n_tokens, d),
    mistakes=(
        Mistake(
            "sin-cos-halves",
            lambda n_tokens, d: np.concatenate(
                [
                    np.sin(np.arange(n_tokens)[:, None] / 10000 ** _two_j_over_d(d)),
                    np.cos(np.arange(n_tokens)[:, None] / 10000 ** _two_j_over_d(d)),
                ],
                axis=1,
            ),
            "sines and cosines must alternate (even columns sin, odd columns cos), not fill two halves",
        ),
        Mistake(
            "cos-sin-swapped",
            lambda n_tokens, d: _sinusoid(n_tokens, d, _two_j_over_d, np.cos, np.sin),
            "sin and cos are swapped: even columns (0, 2, 4, ...) hold the sines, odd columns the cosines",
        ),
        Mistake(
            "exponent-j-over-d",
            lambda n_tokens, d: _sinusoid(n_tokens, d, lambda d: np.arange(d // 2) / d),
            "the frequency of pair j is 1 / 10000**(2j/d): you used j/d",
        ),
        Mistake(
            "exponent-every-column",
            lambda n_tokens, d: _sinusoid(n_tokens, d, lambda d: np.arange(1, d, 2) / d),
            "the exponent of pair j is 2j/d with j = 0, 1, 2, ...: you used the odd column index (2j+1)/d",
        ),
        Mistake(
            "multiplied",
            lambda n_tokens, d: _sinusoid(n_tokens, d, lambda d: -_two_j_over_d(d)),
            "the angle is m / 10000**(2j/d): you multiplied by 10000**(2j/d) instead of dividing",
        ),
    ),
    atol=1e-9,
    rtol=1e-9,
)


EXERCISES = [
    ENCODE,
    DECODE,
    TOKEN_EMBEDDING,
    Q_TIED,
    Q_POSITIONS,
    POSITION_EMBEDDING,
    Q_BATCH_SHAPE,
    EMBED,
    SINUSOIDAL,
]
