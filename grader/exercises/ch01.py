"""Chapter 1, tokens and embeddings: from text to one vector per token.

The exercises appear in the notebook in the order of ``EXERCISES``: encode, decode,
token_embedding, q_tied, q_positions, position_embedding, q_batch_shape, embed,
sinusoidal_positions.
"""

import numpy as np

import lib

from ..exercise import Case, Exercise, Part, Raises, choice, hidden, rng
from .wrong import embedding, table

ASSIGNMENT = "01-embeddings"
# The lib functions the scorer lends this chapter's students (``grader.lending``): none, every one
# they could build on here is an exercise. ``GRADED``: the lib functions that compute this
# chapter's exercises, which the scorer's lib must never hold.
LENDS: tuple[str, ...] = ()
GRADED = ("token_embedding", "position_embedding", "embed", "sinusoidal_positions", "Tokenizer")

TEXT = "to be, or not to be"
VOCAB = sorted(set("abcdefghijklmnopqrstuvwxyz ,.!?'\n"))
STOI = {ch: i for i, ch in enumerate(VOCAB)}
LETTERS = "abcdefghijklmnopqrstuvwxyz"
CAPITALS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _tables(seed: int, V: int, n_ctx: int, d: int, dtype=np.float32):
    g = rng(seed)
    return g.normal(size=(V, d)).astype(dtype), g.normal(size=(n_ctx, d)).astype(dtype)


# ---- encode / decode ---------------------------------------------------------------------------


def _encode(text, stoi):
    return np.array([stoi[ch] for ch in text], dtype=np.int64)


def _decode(ids, itos):
    return "".join(itos[int(i)] for i in ids)


def _words(g, letters: str, n: int) -> str:
    """``n`` made-up words of 1 to 7 letters, some followed by a punctuation mark."""
    words = []
    for _ in range(n):
        word = "".join(g.choice(list(letters), size=int(g.integers(1, 8))))
        words.append(word + (str(g.choice(list(",.!?'"))) if g.random() < 0.3 else ""))
    return " ".join(words)


def _other_vocabulary(g):
    """A vocabulary of its own, shuffled and with four capitals, and a text in it: a function that
    ignores the table it is given (``ord(ch) - 97``, a global ``stoi``) fails on it."""
    capitals = "".join(g.choice(list(CAPITALS), size=4, replace=False))
    stoi = _unordered({ch: i for i, ch in enumerate(g.permutation(VOCAB + list(capitals)).tolist())})
    return _words(g, LETTERS + capitals, int(g.integers(8, 14))) + ".\n" + capitals, stoi


def _wide_vocabulary(g):
    """A vocabulary of 320 letters (Latin Extended, ids up to 319: more than a byte holds),
    shuffled, and a text of some of them, most with an id of 256 or more."""
    letters = [chr(c) for c in range(0x100, 0x100 + 320)]
    stoi = _unordered({ch: i for i, ch in enumerate(g.permutation(letters).tolist())})
    high = [ch for ch in letters if stoi[ch] >= 256]
    return "".join(g.choice(high, size=int(g.integers(6, 12))).tolist()) + letters[0], stoi


def _unordered(stoi: dict) -> dict:
    """``stoi`` with its keys in the order of the characters, not of their ids: a function that
    takes a character's place among the keys for its id (``list(stoi).index(ch)``) fails on it."""
    return dict(sorted(stoi.items()))


def _unknown(g, stoi):
    """A text with one character that ``stoi`` does not hold (a capital or a digit)."""
    missing = [ch for ch in CAPITALS + "0123456789" if ch not in stoi]
    ch = str(g.choice(missing))
    words = _words(g, LETTERS, int(g.integers(2, 5)))
    at = int(g.integers(0, len(words) + 1))
    return words[:at] + ch + words[at:], ch


def _raises(ch):
    return Raises(
        ("KeyError", "ValueError"),
        ch,
        f"this text holds {ch!r}, which is not in stoi: encode must raise a KeyError (stoi[ch] raises one) "
        "or a ValueError that names the character, not invent an id for it",
    )


KIND = {
    "lines": "two lines, with punctuation",
    "other": "another vocabulary, in another order and with capitals",
    "one": "a single character",
    "unknown": "a character missing from stoi",
    "edges": "spaces and line breaks at its ends",
    "wide": "a vocabulary of more than 256 characters (ids that do not fit in a byte)",
}


def _text_visible():
    g = rng(100)
    other, other_stoi = _other_vocabulary(g)
    unknown, ch = _unknown(g, STOI)
    wide, wide_stoi = _wide_vocabulary(rng(101))
    return [
        Case("hamlet", {"text": TEXT, "stoi": STOI}),
        Case("two-lines", {"text": "to be?\nay, there's the rub", "stoi": STOI}, kinds={KIND["lines"]}),
        Case("one-char", {"text": "q", "stoi": STOI}, kinds={KIND["one"]}),
        Case("padded", {"text": "\n to sleep, perchance \n", "stoi": STOI}, kinds={KIND["edges"]}),
        Case("other-vocabulary", {"text": other, "stoi": other_stoi}, kinds={KIND["other"]}),
        Case("wide-vocabulary", {"text": wide, "stoi": wide_stoi}, kinds={KIND["wide"]}),
        Case("unknown", {"text": unknown, "stoi": STOI}, kinds={KIND["unknown"]}, raises=_raises(ch)),
    ]


def _text_hidden(g):
    two_lines = f"{_words(g, LETTERS, int(g.integers(3, 7)))}?\n{_words(g, LETTERS, int(g.integers(3, 7)))}"
    other, other_stoi = _other_vocabulary(g)
    unknown, ch = _unknown(g, other_stoi)
    padded = f" {_words(g, LETTERS, int(g.integers(2, 5)))}\n"
    wide, wide_stoi = _wide_vocabulary(g)
    return [
        hidden("punctuation", {"text": two_lines, "stoi": STOI}, kinds={KIND["lines"]}, about=KIND["lines"]),
        hidden("padded", {"text": padded, "stoi": STOI}, kinds={KIND["edges"]}, about=KIND["edges"]),
        hidden(
            "one-char",
            {"text": str(g.choice(VOCAB[7:])), "stoi": STOI},
            kinds={KIND["one"]},
            about=KIND["one"],
        ),
        hidden(
            "other-vocabulary",
            {"text": other, "stoi": other_stoi},
            kinds={KIND["other"]},
            about=KIND["other"],
        ),
        hidden(
            "wide-vocabulary",
            {"text": wide, "stoi": wide_stoi},
            kinds={KIND["wide"]},
            about=KIND["wide"],
        ),
        hidden(
            "unknown",
            {"text": unknown, "stoi": other_stoi},
            kinds={KIND["other"], KIND["unknown"]},
            about=KIND["unknown"],
            raises=_raises(ch),
        ),
    ]


def _as_ids(cases):
    """The encode cases as decode cases: their ids and the inverse table (cases that must raise
    have no ids)."""
    out = []
    for c in cases:
        if c.raises is None:
            itos = {i: ch for ch, i in c.inputs["stoi"].items()}
            inputs = {"ids": _encode(c.inputs["text"], c.inputs["stoi"]), "itos": itos}
            if c.hidden:
                out.append(hidden(c.name, inputs, kinds=c.kinds, about=", ".join(sorted(c.kinds))))
            else:
                out.append(Case(c.name, inputs, kinds=c.kinds))
    return out


ENCODE = Exercise(
    name="encode",
    visible=_text_visible,
    hidden=_text_hidden,
    reference=_encode,
    mistakes=table(
        embedding.encode,
        {
            "one-based": (
                {"offset": 1},
                "every id is one too large: ids start at 0, exactly as stoi says; do not add 1",
            ),
            "alphabet-position": (
                {"ids": "alphabet"},
                "you computed the position in the alphabet (ord(ch) - ord('a')): the ids come from the "
                "vocabulary you are given, look each character up in stoi",
            ),
            "key-order": (
                {"ids": "key-order"},
                "your ids are the characters' places among stoi's keys (list(stoi).index(ch)): a dict keeps "
                "its keys in the order they were added, which need not be the order of their ids; look each "
                "character up, stoi[ch]",
            ),
            "unicode": (
                {"ids": "unicode"},
                "these are Unicode code points (ord): the ids come from the vocabulary, look each "
                "character up in stoi",
            ),
            "unknown-to-zero": (
                {"unknown": "zero"},
                "a character missing from stoi became id 0 (stoi.get(ch, 0)): that invents a token; look it "
                "up with stoi[ch], which raises a KeyError",
            ),
            "unknown-skipped": (
                {"unknown": "skip"},
                "a character missing from stoi was silently skipped: the text would not round-trip; look "
                "every character up with stoi[ch], which raises a KeyError",
            ),
        },
    ),
    check_dtype="kind",
    error_hints={
        "KeyError": "a key is missing from stoi: look up each character of the text, stoi[ch]",
        "unhashable": "stoi maps single characters to ids: look up one character at a time",
    },
)

DECODE = Exercise(
    name="decode",
    kind="text",
    visible=lambda: _as_ids(_text_visible()),
    hidden=lambda g: _as_ids(_text_hidden(g)),
    reference=_decode,
    mistakes=table(
        embedding.decode,
        {
            "spaces": (
                {"sep": " "},
                "decode is not the inverse of encode: you joined the characters with spaces; "
                "join them with the empty string so decode(encode(text)) == text",
            ),
            "reversed": ({"step": -1}, "the text comes out backwards: keep the order of the ids"),
        },
    ),
    error_hints={
        "KeyError": "itos maps an id to its character: look up each id, itos[int(i)]",
        "sequence item": "join needs strings: join the characters itos[i], not the ids",
    },
)

# ---- the token embedding -----------------------------------------------------------------------

LARGE_IDS = "ids larger than the width d"


ONE_OF_ONE = "a batch of one sequence of one token (ids of shape (1, 1)), whose axes of size 1 stay"


def _lookup_visible():
    wte, _ = _tables(1, V=20, n_ctx=16, d=8)
    wte64, _ = _tables(2, V=24, n_ctx=16, d=6, dtype=np.float64)
    return [
        Case("short", {"ids": np.array([3, 1, 4, 1, 5]), "wte": wte}),
        Case("batch", {"ids": rng(10).integers(0, 20, size=(3, 4)), "wte": wte}, kinds={LARGE_IDS}),
        Case("large-ids64", {"ids": np.array([[23, 7, 19], [0, 6, 22]]), "wte": wte64}, kinds={LARGE_IDS}),
        Case("one-of-one", {"ids": np.array([[7]]), "wte": wte}, kinds={ONE_OF_ONE}),
    ]


def _table(g, rows: int, d: int, dtype) -> np.ndarray:
    return g.normal(size=(rows, d)).astype(dtype)


def _lookup_hidden(g):
    B, T, d = int(g.integers(2, 5)), int(g.integers(3, 9)), int(g.integers(4, 13))
    V = int(g.integers(2 * d, 4 * d))
    wte64 = _table(g, V, d, np.float64)
    large = np.concatenate([g.integers(d, V, size=3), g.integers(0, V, size=int(g.integers(1, 5)))])
    return [
        hidden("batch64", {"ids": g.integers(d, V, size=(B, T)), "wte": wte64}, kinds={LARGE_IDS}),
        hidden("large-ids", {"ids": g.permutation(large), "wte": wte64}, kinds={LARGE_IDS}, about=LARGE_IDS),
        hidden(
            "one-of-one",
            {"ids": g.integers(0, V, size=(1, 1)), "wte": wte64},
            kinds={ONE_OF_ONE},
            about=ONE_OF_ONE,
        ),
    ]


TOKEN_EMBEDDING = Exercise(
    name="token_embedding",
    visible=_lookup_visible,
    hidden=_lookup_hidden,
    reference=lambda ids, wte: lib.token_embedding(ids, wte),
    mistakes=table(
        embedding.token_embedding,
        {
            "columns": (
                {"take": "columns"},
                "rows vs columns: token i is ROW i of wte (shape V x d); wte[:, ids] takes columns",
            ),
            "columns-transposed": (
                {"take": "columns-transposed"},
                "rows vs columns: token i is ROW i of wte (shape V x d); you took columns and transposed, "
                "which only has the right shape when V happens to equal d",
            ),
            "flattened": (
                {"take": "flattened"},
                "you lost the batch axis: for ids of shape (B, T) the answer is (B, T, d); indexing wte "
                "with the whole ids array keeps its shape, so do not flatten it",
            ),
            "first-row-only": (
                {"take": "first-sequence"},
                "only the first sequence of the batch came back: index wte with the whole (B, T) array",
            ),
        },
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

WHOLE_TABLE = "every position of the table (n_tokens = n_ctx)"


def _position_visible():
    _, wpe = _tables(4, V=20, n_ctx=16, d=8)
    _, wpe64 = _tables(5, V=20, n_ctx=12, d=6, dtype=np.float64)
    return [
        Case("five", {"n_tokens": 5, "wpe": wpe}),
        Case("whole-table64", {"n_tokens": 12, "wpe": wpe64}, kinds={WHOLE_TABLE}),
        Case("one", {"n_tokens": 1, "wpe": wpe}),
    ]


def _position_hidden(g):
    n_ctx, d = int(g.integers(24, 48)), int(g.integers(4, 10))
    wpe64 = _table(g, n_ctx, d, np.float64)
    most = int(g.integers(n_ctx // 2, n_ctx - 1))
    return [
        hidden("full-context", {"n_tokens": n_ctx, "wpe": wpe64}, kinds={WHOLE_TABLE}, about=WHOLE_TABLE),
        hidden("one", {"n_tokens": 1, "wpe": _table(g, int(g.integers(8, 20)), d, np.float32)}),
        hidden("most", {"n_tokens": most, "wpe": wpe64}),
    ]


POSITION_EMBEDDING = Exercise(
    name="position_embedding",
    visible=_position_visible,
    hidden=_position_hidden,
    reference=lambda n_tokens, wpe: lib.position_embedding(n_tokens, wpe),
    mistakes=table(
        embedding.position_embedding,
        {
            "off-by-one": (
                {"rows": "shifted"},
                "off-by-one positions: the first token is at position 0, so it gets row 0 of wpe",
            ),
            "whole-table": (
                {"rows": "whole"},
                "you returned the whole table: keep only the first n_tokens rows, one per token",
            ),
            "one-row": (
                {"rows": "one"},
                "you returned one row: wpe[n_tokens] is the row of position n_tokens; you need rows "
                "0 .. n_tokens - 1, a slice",
            ),
            "last-rows": (
                {"rows": "last"},
                "you took the last n_tokens rows of the table: positions count from the start, rows 0 .. "
                "n_tokens - 1",
            ),
        },
    ),
    error_hints={
        "out of bounds": "wpe[n_tokens] is one row, past the end when n_tokens = n_ctx: take the first n_tokens "
        "rows with a slice, wpe[:n_tokens]",
    },
)

# ---- token + position --------------------------------------------------------------------------

FULL_CONTEXT = "sequences as long as the context (T = n_ctx)"
SQUARE = "as many sequences as tokens (B = T)"


def _embed_visible():
    wte, wpe = _tables(6, V=20, n_ctx=16, d=8)
    wte64, wpe64 = _tables(7, V=24, n_ctx=6, d=6, dtype=np.float64)
    return [
        Case("short", {"ids": np.array([7, 2, 2, 9, 0, 11]), "wte": wte, "wpe": wpe}),
        Case("batch", {"ids": rng(8).integers(0, 20, size=(3, 5)), "wte": wte, "wpe": wpe}),
        Case(
            "full-context64",
            {"ids": rng(9).integers(0, 24, size=(2, 6)), "wte": wte64, "wpe": wpe64},
            kinds={FULL_CONTEXT},
        ),
        Case("square", {"ids": rng(11).integers(0, 20, size=(4, 4)), "wte": wte, "wpe": wpe}, kinds={SQUARE}),
    ]


def _embed_hidden(g):
    V, n_ctx, d = int(g.integers(20, 40)), int(g.integers(8, 14)), int(g.integers(4, 9))
    wte64, wpe64 = _table(g, V, d, np.float64), _table(g, n_ctx, d, np.float64)
    wte, wpe = _table(g, V, d, np.float32), _table(g, n_ctx, d, np.float32)
    B, T = int(g.integers(2, 4)), int(g.integers(2, 5))
    square = int(g.integers(3, 6))
    return [
        hidden(
            "batch64",
            {"ids": g.integers(0, V, size=(B, n_ctx)), "wte": wte64, "wpe": wpe64},
            kinds={FULL_CONTEXT},
            about=FULL_CONTEXT,
        ),
        hidden("single64", {"ids": g.integers(0, V, size=T), "wte": wte64, "wpe": wpe64}),
        hidden(
            "square-batch",
            {"ids": g.integers(0, V, size=(square, square)), "wte": wte, "wpe": wpe},
            kinds={SQUARE},
            about=SQUARE,
        ),
    ]


def _embed_stations(inputs):
    ids, wte, wpe = inputs["ids"], inputs["wte"], inputs["wpe"]
    return {
        "embed.tok": lib.token_embedding(ids, wte),
        "embed.pos": lib.position_embedding(ids.shape[-1], wpe),
    }


EMBED = Exercise(
    name="embed",
    visible=_embed_visible,
    hidden=_embed_hidden,
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
    mistakes=table(
        embedding.embed,
        {
            **embedding.EMBED,
            "positions-by-batch": (
                {"positions": "by-batch"},
                "the positions follow the batch axis: each sequence must get rows 0 .. T-1 of wpe along its "
                "tokens (T = ids.shape[-1]); a (T, d) array broadcasts over the batch by itself",
            ),
        },
    ),
    error_hints={
        "out of bounds": "an index is out of bounds: are you indexing columns (wte[:, ids]) instead of rows? "
        "Token i is ROW i of wte; and positions pick rows of wpe by position, 0 .. T-1 (wpe[:T], not wpe[ids])",
        "could not be broadcast": "adding positions of the wrong length? You need one position row per "
        "token: ids.shape[-1] rows (the sequence length), not len(ids) or ids.shape[0] (the batch) "
        "or the whole table",
        "tuple index out of range": "ids is one sequence (T,) or a batch (B, T): ids.shape[1] exists only "
        "for a batch; the sequence length is ids.shape[-1], the last axis, in both",
    },
)

# ---- sinusoidal positions ----------------------------------------------------------------------

ONE_PAIR = "d = 2, a single sin/cos pair"
REAL_BASE = "a base other than 10000, not a whole number"


def _sinusoid_visible():
    return [
        Case("small", {"n_tokens": 6, "d": 8}),
        Case("one-pair", {"n_tokens": 5, "d": 2}, kinds={ONE_PAIR}),
        # 537.3 is not a float32 (537.25 would be): a base rounded to float32 is wrong here too.
        Case("real-base", {"n_tokens": 9, "d": 6, "base": 537.3}, kinds={REAL_BASE}),
    ]


def _real_base(g, low: float, high: float) -> float:
    """A base drawn between ``low`` and ``high``, never a whole number (``int(base)`` or a base
    read as an int loses its fraction)."""
    return float(np.floor(g.uniform(low, high))) + float(g.uniform(0.1, 0.9))


# The table's inputs are two ints: the answers to every pair a hidden case could draw, made with lib
# beforehand, would answer it from a table. The wide case's widths make that table (160 rows for
# each even width up to 2046: 168 million float64, 1.3 GB) larger than any notebook the grader reads.
WIDE_WIDTHS = (32, 2048)


def _sinusoid_hidden(g):
    wide = (int(g.integers(20, 160)), 2 * int(g.integers(WIDE_WIDTHS[0] // 2, WIDE_WIDTHS[1] // 2)))
    tall = (int(g.integers(80, 140)), 2 * int(g.integers(3, 7)))
    return [
        hidden("wide", {"n_tokens": wide[0], "d": wide[1]}),
        hidden("one-pair", {"n_tokens": int(g.integers(5, 15)), "d": 2}, kinds={ONE_PAIR}, about=ONE_PAIR),
        hidden(
            "tall",
            {"n_tokens": tall[0], "d": tall[1], "base": _real_base(g, 50.0, 5000.0)},
            kinds={REAL_BASE},
            about=REAL_BASE,
        ),
        hidden(
            "wide-base",
            {
                "n_tokens": int(g.integers(20, 60)),
                "d": 2 * int(g.integers(8, 64)),
                "base": _real_base(g, 1e4, 1e5),
            },
            kinds={REAL_BASE},
            about=REAL_BASE,
        ),
    ]


SINUSOIDAL = Exercise(
    name="sinusoidal_positions",
    visible=_sinusoid_visible,
    hidden=_sinusoid_hidden,
    reference=lambda n_tokens, d, base=10000.0: lib.sinusoidal_positions(n_tokens, d, base),
    mistakes=table(
        embedding.sinusoidal_positions,
        {
            "sin-cos-halves": (
                {"layout": "halves"},
                "sines and cosines must alternate (even columns sin, odd columns cos), not fill two halves",
            ),
            "cos-sin-swapped": (
                {"swapped": True},
                "sin and cos are swapped: even columns (0, 2, 4, ...) hold the sines, odd columns the cosines",
            ),
            "exponent-j-over-d": (
                {"exponent": "j/d"},
                "the frequency of pair j is 1 / 10000**(2j/d): you used j/d",
            ),
            "exponent-every-column": (
                {"exponent": "(2j+1)/d"},
                "the exponent of pair j is 2j/d with j = 0, 1, 2, ...: you used the odd column index (2j+1)/d",
            ),
            "multiplied": (
                {"divide": False},
                "the angle is m / base**(2j/d): you multiplied by base**(2j/d) instead of dividing",
            ),
            "integer-base": (
                {"base_as": "int"},
                "your base lost its fraction (int(base), or an integer array built from it): base is a "
                "real number, use it as it is given",
            ),
            "fixed-base": (
                {"base_as": "10000"},
                "you used 10000 where the argument `base` belongs: the frequencies are 1 / base**(2j/d), "
                "with the base you are given (10000 only by default)",
            ),
        },
    ),
    error_hints={
        "unexpected keyword argument 'base'": "sinusoidal_positions takes a third argument, "
        "base=10000.0: add it to your def line and use it in place of 10000",
    },
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
