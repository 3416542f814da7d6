"""Write the toy model of chapter 5 into ``lib/models/toy/``.

A GPT-2-style model small enough to follow by hand: one block, ``d_model = 4``, two heads of
width 2, a vocabulary of three tokens (``AI``, ``rocks``, ``<eos>``), four learned positions, a
tied LM head and an MLP of width ``d_ff = 16`` (4d, as in GPT-2). Every weight is written out below
with one decimal place, between -1 and 1, so a reader can multiply them in their head.

The weights were chosen (from seeded random one-decimal candidates, then kept by hand) so that
the model does something a reader can check: after ``AI`` it predicts ``rocks``, after
``AI rocks`` it predicts ``<eos>``, and at the second position the two heads look at different
tokens (head 0 mostly at ``rocks``, head 1 mostly at ``AI``), so attention is far from uniform.

Usage: ``python tools/make_toy.py [directory]`` (default ``lib/models/toy``). The output is
committed; ``tests/test_worked_toy.py`` checks it loads in ``lib`` and in ``transformers`` with
the same logits.
"""

import json
import sys
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer, decoders, models, pre_tokenizers

import lib

ROOT = Path(__file__).resolve().parents[1]
TOKENS = ["AI", "rocks", "<eos>"]  # ids 0, 1, 2
CONFIG = lib.Config.gpt2(vocab_size=3, n_ctx=4, d_model=4, n_layer=1, n_head=2, d_ff=16)


def _a(rows) -> np.ndarray:
    return np.array(rows, dtype=np.float32)


# fmt: off
WTE = _a([                      # token embeddings (V, d) = (3, 4); also the LM head (tied)
    [-0.3,  0.8,  1.0,  0.5],   # AI
    [-0.6,  0.0,  0.7,  0.9],   # rocks
    [-0.9,  0.6, -0.9,  0.6],   # <eos>
])
WPE = _a([                      # position embeddings (n_ctx, d) = (4, 4)
    [-0.8, -0.9,  1.0,  0.5],
    [ 0.2, -1.0, -0.4,  0.4],
    [ 0.6,  1.0,  0.0, -1.0],
    [ 0.5,  0.0,  0.6, -0.5],
])
LN_1 = {"g": _a([1.0, 1.0, 0.9, 0.8]), "b": _a([0.0, 0.1, 0.0, 0.0])}
C_ATTN_W = _a([                 # (d, 3d): columns 0-3 make q, 4-7 k, 8-11 v; heads take pairs
    # q head 0   q head 1    k head 0    k head 1    v head 0    v head 1
    [-0.2, -0.5,  0.0,  0.2,  1.0,  0.0, -0.1,  0.6,  0.5,  0.8,  0.0, -0.1],
    [-0.9, -0.8, -1.0,  0.8,  0.0,  0.1,  0.6,  1.0,  0.0,  0.5, -0.6,  0.2],
    [ 0.0,  0.0, -0.8, -0.1,  0.0,  0.3,  0.2, -1.0, -0.5,  0.2,  0.0,  1.0],
    [ 0.3, -0.1, -0.2, -0.2,  0.5,  0.4, -0.3,  0.2,  0.9, -0.7,  1.0,  0.2],
])
C_ATTN_B = _a([0.0, -0.1, 0.1, 0.2, 0.2, 0.2, -0.2, 0.0, 0.1, 0.0, 0.0, -0.1])
ATTN_PROJ_W = _a([              # (d, d): the output projection W_O
    [ 0.0,  1.0, -0.3,  0.0],
    [-0.4, -0.6,  0.2, -0.1],
    [ 0.8, -0.3,  0.0,  0.7],
    [ 0.3, -0.4,  0.5,  0.5],
])
ATTN_PROJ_B = _a([-0.1, 0.0, -0.2, 0.0])
LN_2 = {"g": _a([0.5, 1.0, 0.7, 1.0]), "b": _a([0.0, -0.1, 0.0, -0.1])}
C_FC_W = _a([                   # (d, d_ff) = (4, 16): the MLP's expansion
    [ 0.0,  0.8, -0.7,  0.0,  0.5, -0.9, -0.6,  0.1,  0.0,  0.5, -0.6,  0.0, -0.1, -1.0,  0.8,  0.3],
    [ 0.0,  0.7,  0.9,  0.0,  0.0,  0.0, -0.3,  0.6, -0.8, -0.1, -0.1,  0.7,  0.0,  0.7, -0.4, -0.4],
    [-0.7, -0.3,  0.0, -0.2, -0.7,  1.0, -0.9,  0.1,  0.0, -0.7,  0.0, -1.0,  0.1,  0.5,  0.0,  0.0],
    [ 0.0, -0.2,  0.5,  0.0, -0.1,  0.0, -0.5,  0.2, -0.6,  0.2, -0.6,  0.0, -0.8,  0.9,  0.6,  0.6],
])
C_FC_B = _a([0.0, -0.2, 0.1, 0.0, 0.0, 0.0, 0.0, -0.1, 0.0, -0.1, -0.2, 0.0, 0.1, 0.0, -0.1, 0.0])
MLP_PROJ_W = _a([               # (d_ff, d) = (16, 4): the MLP's projection back to d
    [-0.1,  0.9, -1.0,  0.0],
    [ 0.0, -0.5,  0.9, -1.0],
    [ 0.1,  0.0,  0.9,  0.5],
    [-0.1,  0.0, -0.9,  0.3],
    [-0.2,  0.0,  0.4, -0.1],
    [ 0.4, -0.9, -0.3,  0.0],
    [ 1.0,  0.6,  0.2, -0.6],
    [-0.1, -0.5,  0.8,  0.5],
    [-0.4,  0.0,  0.0, -0.5],
    [ 1.0,  0.0, -0.9,  0.6],
    [ 0.2, -0.6,  0.4, -0.3],
    [ 0.2,  0.7,  0.9,  0.7],
    [-0.8,  0.0,  0.0, -0.1],
    [ 0.2, -0.4, -0.6, -0.6],
    [-0.5, -0.8,  0.1,  0.0],
    [ 0.4,  0.6,  0.0, -1.0],
])
MLP_PROJ_B = _a([0.0, 0.0, 0.0, 0.0])
LN_F = {"g": _a([0.9, 0.8, 1.0, 0.9]), "b": _a([-0.1, 0.0, 0.2, 0.0])}
# fmt: on


def toy_params() -> dict:
    """The toy's weights in ``lib``'s layout (fresh copies)."""
    return {
        "wte": WTE.copy(),
        "wpe": WPE.copy(),
        "h": [
            {
                "ln_1": {k: v.copy() for k, v in LN_1.items()},
                "attn": {
                    "c_attn": {"w": C_ATTN_W.copy(), "b": C_ATTN_B.copy()},
                    "c_proj": {"w": ATTN_PROJ_W.copy(), "b": ATTN_PROJ_B.copy()},
                },
                "ln_2": {k: v.copy() for k, v in LN_2.items()},
                "mlp": {
                    "c_fc": {"w": C_FC_W.copy(), "b": C_FC_B.copy()},
                    "c_proj": {"w": MLP_PROJ_W.copy(), "b": MLP_PROJ_B.copy()},
                },
            }
        ],
        "ln_f": {k: v.copy() for k, v in LN_F.items()},
    }


def toy_tokenizer() -> Tokenizer:
    """Whole words, split at whitespace; ``<eos>`` is a special token; decoding joins with spaces."""
    tokenizer = Tokenizer(models.WordLevel(vocab={t: i for i, t in enumerate(TOKENS)}))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    # WordPiece's decoder puts a space between tokens (and there are no "##" pieces here).
    tokenizer.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    tokenizer.add_special_tokens(["<eos>"])
    return tokenizer


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    directory = Path(argv[0]) if argv else ROOT / "lib" / "models" / "toy"
    model = lib.Model(CONFIG, toy_params())
    lib.save_pretrained(model, directory)
    # lib writes no special-token ids; without them transformers assumes GPT-2's 50256 and warns.
    config_file = directory / "config.json"
    config = json.loads(config_file.read_text())
    config.update(bos_token_id=TOKENS.index("<eos>"), eos_token_id=TOKENS.index("<eos>"))
    config_file.write_text(json.dumps(config, indent=2) + "\n")
    (directory / "model.safetensors").chmod(0o644)
    toy_tokenizer().save(str(directory / "tokenizer.json"))
    loaded = lib.load_pretrained(directory)
    ids = loaded.tokenizer.encode("AI rocks <eos>")
    assert ids.tolist() == [0, 1, 2], ids
    assert loaded.tokenizer.decode(ids) == "AI rocks <eos>"
    probs = lib.softmax(loaded.forward(ids[:-1]))
    assert probs.argmax(-1).tolist() == [1, 2], probs
    print(f"wrote {directory}: {loaded}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
