"""Export a shipped model for the book's live pages (``book/live/``): a manifest and one weights file.

Usage: ``python tools/export_live_model.py OUT_DIR [MODEL]`` (``MODEL`` defaults to
``shakespeare``). ``make book`` runs it into ``book/_static/live/``, so the weights are built from
``lib/models/`` and never committed a second time.

Writes ``OUT_DIR/MODEL.json``, the manifest::

    {"model": ..., "config": {lib's Config}, "vocab": [the character of each id],
     "weights": {"file": "MODEL.bin", "bytes": ..., "sha256": ...},
     "tensors": {"wte": {"shape": [V, d], "offset": 0}, "wpe": ..., "h.0.ln_1.g": ..., ...}}

and ``OUT_DIR/MODEL.bin``: every tensor of ``lib``'s parameter tree, under ``lib``'s names, as
little-endian float32 in row-major order, back to back. The tree is taken from
``lib.load_pretrained``, so the page computes with exactly the weights ``lib`` does (``lib``'s
layout, ``(d_in, d_out)`` matrices, the tied head's one ``wte``). The browser's JavaScript
forward pass (``book/live/model.js``) implements one family, GPT-2 with a character-level
vocabulary; the export refuses anything else rather than produce a file it cannot read.
"""

import hashlib
import json
import sys
from pathlib import Path

import numpy as np

import lib

DTYPE = np.dtype("<f4")
# Keys of lib's parameter tree in the order the forward pass reads them (the manifest's order).
FORWARD_ORDER = (
    "wte",
    "wpe",
    "h",
    "ln_1",
    "attn",
    "c_attn",
    "ln_2",
    "mlp",
    "c_fc",
    "c_proj",
    "ln_f",
    "w",
    "g",
    "b",
)


def named_tensors(params: dict, prefix: str = "") -> dict[str, np.ndarray]:
    """``lib``'s parameter tree flattened to ``{"wte": ..., "h.0.attn.c_attn.w": ..., "ln_f.b": ...}``."""
    flat = {}
    for key, value in sorted(params.items(), key=lambda item: FORWARD_ORDER.index(item[0])):
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(named_tensors(value, f"{name}."))
        elif isinstance(value, list):
            for i, layer in enumerate(value):
                flat.update(named_tensors(layer, f"{name}.{i}."))
        else:
            flat[name] = value
    return flat


def vocabulary(model: lib.Model) -> list[str]:
    """The character of each token id, for a character-level tokenizer."""
    tokens = {i: token for token, i in model.tokenizer.vocab.items()}
    V = model.config.vocab_size
    if sorted(tokens) != list(range(V)) or any(len(t) != 1 for t in tokens.values()):
        raise ValueError(f"the live pages need a character-level vocabulary with ids 0..{V - 1}")
    return [tokens[i] for i in range(V)]


def export(out_dir, name: str = "shakespeare") -> Path:
    """Write ``name.json`` and ``name.bin`` into ``out_dir``; return the manifest's path."""
    model = lib.load_pretrained(name)
    family = lib.checkpoint.family(model.config)
    if family != lib.checkpoint.GPT2 or not model.config.tie_embeddings:
        raise ValueError(f"the live pages run GPT-2 models with a tied head; {name} is {family}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tensors, offset, blob = {}, 0, bytearray()
    for key, value in named_tensors(model.params).items():
        data = np.ascontiguousarray(value, dtype=DTYPE).tobytes()
        tensors[key] = {"shape": list(value.shape), "offset": offset}
        blob += data
        offset += len(data)
    manifest = {
        "model": name,
        "config": model.config.to_dict(),
        "vocab": vocabulary(model),
        "weights": {"file": f"{name}.bin", "bytes": len(blob), "sha256": hashlib.sha256(blob).hexdigest()},
        "tensors": tensors,
    }
    (out_dir / f"{name}.bin").write_bytes(blob)
    path = out_dir / f"{name}.json"
    path.write_text(_readable_json(manifest), encoding="utf-8")
    return path


def _readable_json(manifest: dict) -> str:
    """JSON with one line per top-level entry, and per tensor."""
    lines = []
    for key, value in manifest.items():
        if key == "tensors":
            rows = [f"  {json.dumps(name)}: {json.dumps(entry)}" for name, entry in value.items()]
            lines.append(f' "{key}": {{\n' + ",\n".join(rows) + "\n }")
        else:
            lines.append(f" {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__.split("\n\n")[1])
    try:
        print(f"wrote {export(*sys.argv[1:])}")
    except (FileNotFoundError, ValueError) as error:
        sys.exit(f"export_live_model: {error}")
