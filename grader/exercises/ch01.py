"""Chapter 1, tokens and embeddings: from text to one vector per token."""

import numpy as np

import lib

from ..exercise import Case, Exercise, Mistake, Part, choice, rng

ASSIGNMENT = "01-embeddings"

TEXT = "to be, or not to be"
VOCAB = sorted(set("abcdefghijklmnopqrstuvwxyz ,.!?'\n"))
STOI = {ch: i for i, ch in enumerate(VOCAB)}
ITOS = dict(enumerate(VOCAB))


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
        Case("punctuation", {"text": "what's in a name?\nthat which we call a rose", "stoi": STOI},
             hidden=True, describe="a two-line text with punctuation"),
        Case("one-char", {"text": "o", "stoi": STOI}, hidden=True, describe="a single character"),
    ]


def _ids_cases():
    return [
        Case(c.name, {"ids": _encode(c.inputs["text"], STOI), "itos": ITOS}, c.hidden, c.describe)
        for c in _text_cases()
    ]


ENCODE = Exercise(
    name="encode",
    cases=_text_cases,
    reference=_encode,
    mistakes=(
        Mistake("one-based", lambda text, stoi: _encode(text, stoi) + 1,
                "every id is one too large: ids start at 0, exactly as stoi says; do not add 1"),
    ),
    check_dtype=False,
    error_hints={"KeyError": "a character is missing from stoi: look up each character of the text"},
)

DECODE = Exercise(
    name="decode",
    kind="text",
    cases=_ids_cases,
    reference=_decode,
    mistakes=(
        Mistake("spaces", lambda ids, itos: " ".join(itos[int(i)] for i in ids),
                "decode is not the inverse of encode: you joined the characters with spaces; "
                "join them with the empty string so decode(encode(text)) == text"),
    ),
)

# ---- embeddings --------------------------------------------------------------------------------


def _lookup_cases():
    wte, _ = _tables(1, V=20, n_ctx=16, d=8)
    wte64, _ = _tables(2, V=50, n_ctx=32, d=12, dtype=np.float64)
    return [
        Case("short", {"ids": np.array([3, 1, 4, 1, 5]), "wte": wte}),
        Case("batch", {"ids": rng(3).integers(0, 50, size=(2, 7)), "wte": wte64}, hidden=True,
             describe="a batch of 2 sequences of 7 ids, float64 table"),
        Case("large-ids", {"ids": np.array([49, 0, 48, 17]), "wte": wte64}, hidden=True,
             describe="ids larger than the width d"),
    ]


TOKEN_EMBEDDING = Exercise(
    name="token_embedding",
    cases=_lookup_cases,
    reference=lambda ids, wte: lib.token_embedding(ids, wte),
    mistakes=(
        Mistake("columns", lambda ids, wte: wte[:, ids],
                "rows vs columns: token i is ROW i of wte (shape V x d); wte[:, ids] takes columns"),
        Mistake("columns-transposed", lambda ids, wte: wte[:, ids].T,
                "rows vs columns: token i is ROW i of wte (shape V x d); you took columns and transposed"),
    ),
    error_hints={"out of bounds": "an id is larger than d: are you indexing columns instead of rows?"},
)


def _position_cases():
    _, wpe = _tables(4, V=20, n_ctx=16, d=8)
    _, wpe64 = _tables(5, V=20, n_ctx=40, d=6, dtype=np.float64)
    return [
        Case("five", {"n_tokens": 5, "wpe": wpe}),
        Case("full-context", {"n_tokens": 40, "wpe": wpe64}, hidden=True,
             describe="every position of a 40-row table, float64"),
        Case("one", {"n_tokens": 1, "wpe": wpe}, hidden=True, describe="a single token"),
    ]


POSITION_EMBEDDING = Exercise(
    name="position_embedding",
    cases=_position_cases,
    reference=lambda n_tokens, wpe: lib.position_embedding(n_tokens, wpe),
    mistakes=(
        Mistake("off-by-one", lambda n_tokens, wpe: wpe[1 : n_tokens + 1],
                "off-by-one positions: the first token is at position 0, so it gets row 0 of wpe"),
        Mistake("whole-table", lambda n_tokens, wpe: wpe,
                "you returned the whole table: keep only the first n_tokens rows"),
    ),
)


def _embed_cases():
    wte, wpe = _tables(6, V=20, n_ctx=16, d=8)
    wte64, wpe64 = _tables(7, V=30, n_ctx=12, d=6, dtype=np.float64)
    return [
        Case("short", {"ids": np.array([7, 2, 2, 9, 0, 11]), "wte": wte, "wpe": wpe}),
        Case("batch", {"ids": rng(8).integers(0, 20, size=(3, 5)), "wte": wte, "wpe": wpe}),
        Case("batch64", {"ids": rng(9).integers(0, 30, size=(2, 12)), "wte": wte64, "wpe": wpe64},
             hidden=True, describe="a batch of 2 full-context sequences, float64"),
    ]


def _embed_stations(inputs):
    ids, wte, wpe = inputs["ids"], inputs["wte"], inputs["wpe"]
    return {"embed.tok": lib.token_embedding(ids, wte), "embed.pos": lib.position_embedding(ids.shape[-1], wpe)}


EMBED = Exercise(
    name="embed",
    cases=_embed_cases,
    reference=lambda ids, wte, wpe: lib.embed(ids, wte, wpe),
    stations=_embed_stations,
    parts=(
        Part("embed.tok", "token_embedding", lambda inp, st: {"ids": inp["ids"], "wte": inp["wte"]}),
        Part("embed.pos", "position_embedding", lambda inp, st: {"n_tokens": inp["ids"].shape[-1], "wpe": inp["wpe"]}),
    ),
    mistakes=(
        Mistake("off-by-one", lambda ids, wte, wpe: wte[ids] + wpe[1 : ids.shape[-1] + 1],
                "off-by-one positions: the token at position 0 must get row 0 of wpe"),
        Mistake("no-positions", lambda ids, wte, wpe: wte[ids],
                "you returned the token embeddings only: add the position embeddings"),
        Mistake("rows-vs-columns", lambda ids, wte, wpe: wte[:, ids].swapaxes(0, -1) + wpe[: ids.shape[-1]]
                if ids.ndim == 1 else None,
                "rows vs columns: token i is ROW i of wte"),
    ),
    error_hints={
        "could not be broadcast": "adding positions of the wrong length? You need one position row per "
        "token: ids.shape[-1] rows (the sequence length), not ids.shape[0] (the batch) or the whole table",
    },
)


def _sinusoid_cases():
    return [
        Case("small", {"n_tokens": 6, "d": 8}),
        Case("wide", {"n_tokens": 50, "d": 64}, hidden=True, describe="50 positions, d = 64"),
    ]


SINUSOIDAL = Exercise(
    name="sinusoidal_positions",
    cases=_sinusoid_cases,
    reference=lambda n_tokens, d: lib.sinusoidal_positions(n_tokens, d),
    mistakes=(
        Mistake("sin-cos-halves", lambda n_tokens, d: np.concatenate(
            [np.sin(np.arange(n_tokens)[:, None] / 10000 ** (np.arange(0, d, 2) / d)),
             np.cos(np.arange(n_tokens)[:, None] / 10000 ** (np.arange(0, d, 2) / d))], axis=1),
                "sines and cosines must alternate (even columns sin, odd columns cos), not fill two halves"),
        Mistake("exponent-i-over-d", lambda n_tokens, d: _sinusoid_wrong_exponent(n_tokens, d),
                "the frequency of pair j is 1 / 10000**(2j/d): you used j/d"),
    ),
    atol=1e-9, rtol=1e-9,
)


def _sinusoid_wrong_exponent(n_tokens, d):
    angles = np.arange(n_tokens)[:, None] / 10000 ** (np.arange(d // 2) / d)
    table = np.empty((n_tokens, d))
    table[:, 0::2], table[:, 1::2] = np.sin(angles), np.cos(angles)
    return table


EXERCISES = [ENCODE, DECODE, TOKEN_EMBEDDING, POSITION_EMBEDDING, EMBED, SINUSOIDAL]
