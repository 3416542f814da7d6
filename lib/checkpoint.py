"""Reading and writing Hugging Face checkpoints (``config.json`` + ``model.safetensors``).

How checkpoint tensors map onto ``lib``'s weights (``i`` is the block index). ``lib`` stores every
linear weight input-major, ``(d_in, d_out)``, so ``y = x @ w``. GPT-2's ``Conv1D`` layers are
already stored that way; PyTorch ``nn.Linear`` layers (Llama) are ``(d_out, d_in)`` and are
transposed on load. Llama's separate q/k/v projections are concatenated into one ``c_attn``.

==============================  =======================================  ===========================
lib                             GPT2LMHeadModel                          LlamaForCausalLM
==============================  =======================================  ===========================
``wte``                         ``transformer.wte.weight``               ``model.embed_tokens.weight``
``wpe``                         ``transformer.wpe.weight``               (RoPE: none)
``h[i].ln_1``  g, b             ``transformer.h.i.ln_1.weight/bias``     ``model.layers.i.input_layernorm.weight``
``h[i].attn.c_attn``  w, b      ``...h.i.attn.c_attn.weight/bias``       ``...self_attn.{q,k,v}_proj.weight``, each ``.T``
``h[i].attn.c_proj``  w, b      ``...h.i.attn.c_proj.weight/bias``       ``...self_attn.o_proj.weight.T``
``h[i].ln_2``                   ``transformer.h.i.ln_2.weight/bias``     ``...post_attention_layernorm.weight``
``h[i].mlp.c_fc``  w, b         ``...h.i.mlp.c_fc.weight/bias``          (SwiGLU: ``gate_proj``, ``up_proj``, ``.T``)
``h[i].mlp.c_proj``  w, b       ``...h.i.mlp.c_proj.weight/bias``        (SwiGLU: ``down_proj``, ``.T``)
``ln_f``                        ``transformer.ln_f.weight/bias``         ``model.norm.weight``
``lm_head`` (untied only)       (tied to ``wte``)                        ``lm_head.weight.T``
==============================  =======================================  ===========================
"""

import json
from pathlib import Path

import numpy as np
from safetensors import safe_open
from safetensors.numpy import save_file

from .config import Config
from .model import Model
from .tokenizer import Tokenizer

MODELS_DIR = Path(__file__).parent / "models"
GPT2, LLAMA = "GPT2LMHeadModel", "LlamaForCausalLM"


def resolve(path_or_name) -> Path:
    """A checkpoint directory, or the name of a model shipped in ``lib/models/``."""
    path = Path(path_or_name)
    if path.is_dir():
        return path
    shipped = MODELS_DIR / str(path_or_name)
    if shipped.is_dir():
        return shipped
    names = sorted(p.name for p in MODELS_DIR.iterdir() if p.is_dir()) if MODELS_DIR.is_dir() else []
    raise FileNotFoundError(
        f"no checkpoint directory {str(path_or_name)!r} and no shipped model of that name "
        f"(shipped: {', '.join(names) or 'none'})"
    )


def config_from_hf(hf: dict) -> Config:
    """Translate a Hugging Face ``config.json`` into a ``Config``."""
    arch = (hf.get("architectures") or [None])[0]
    if arch == GPT2 or hf.get("model_type") == "gpt2":
        _refuse(
            hf,
            {
                "scale_attn_by_inverse_layer_idx": True,
                "reorder_and_upcast_attn": True,
                "scale_attn_weights": False,
            },
        )
        act = hf.get("activation_function", "gelu_new")
        gelu = {"gelu_new": "tanh", "gelu_pytorch_tanh": "tanh", "gelu": "exact"}.get(act)
        if gelu is None:
            raise ValueError(f"unsupported GPT-2 activation_function {act!r}")
        return Config(
            vocab_size=hf["vocab_size"],
            n_ctx=hf["n_positions"],
            d_model=hf["n_embd"],
            n_layer=hf["n_layer"],
            n_head=hf["n_head"],
            d_ff=hf.get("n_inner") or 4 * hf["n_embd"],
            gelu=gelu,
            norm_eps=hf.get("layer_norm_epsilon", 1e-5),
            tie_embeddings=hf.get("tie_word_embeddings", True),
        )
    if arch == LLAMA or hf.get("model_type") == "llama":
        _refuse(hf, {"attention_bias": True, "mlp_bias": True})
        rope = hf.get("rope_parameters") or hf.get("rope_scaling") or {}
        if rope.get("rope_type", rope.get("type", "default")) != "default":
            raise ValueError(f"unsupported RoPE scaling {rope!r}: lib implements plain RoPE only")
        if hf.get("hidden_act", "silu") != "silu":
            raise ValueError(f"unsupported Llama hidden_act {hf['hidden_act']!r}")
        n_head = hf["num_attention_heads"]
        head_dim = hf.get("head_dim") or hf["hidden_size"] // n_head
        if head_dim * n_head != hf["hidden_size"]:
            raise ValueError(f"unsupported head_dim {head_dim} != hidden_size / num_attention_heads")
        return Config(
            vocab_size=hf["vocab_size"],
            n_ctx=hf["max_position_embeddings"],
            d_model=hf["hidden_size"],
            n_layer=hf["num_hidden_layers"],
            n_head=n_head,
            n_kv_head=hf.get("num_key_value_heads") or n_head,
            d_ff=hf["intermediate_size"],
            norm="rmsnorm",
            positions="rope",
            mlp="swiglu",
            bias=False,
            tie_embeddings=hf.get("tie_word_embeddings", False),
            norm_eps=hf.get("rms_norm_eps", 1e-6),
            rope_theta=rope.get("rope_theta", hf.get("rope_theta", 10000.0)),
        )
    raise ValueError(
        f"unsupported architecture {arch or hf.get('model_type')!r}: lib reads {GPT2} and {LLAMA}"
    )


def _refuse(hf: dict, unsupported: dict) -> None:
    for key, bad in unsupported.items():
        if hf.get(key) == bad:
            raise ValueError(f"unsupported config: {key}={bad} is not implemented in lib")


def family(config: Config) -> str:
    """Which Hugging Face architecture can hold this config."""
    switches = (config.norm, config.positions, config.mlp, config.bias)
    gpt2 = switches == ("layernorm", "learned", "gelu", True)
    llama = switches == ("rmsnorm", "rope", "swiglu", False)
    if gpt2 and config.n_kv_head == config.n_head:
        return GPT2
    if llama and config.rope_pairing == "halves":
        return LLAMA
    if llama:
        raise ValueError(
            f"rope_pairing={config.rope_pairing!r} has no Hugging Face checkpoint format: Llama "
            "checkpoints are stored for the 'halves' pairing"
        )
    raise ValueError(
        f"this config mixes the two families and has no Hugging Face checkpoint format: {config}"
    )


def checkpoint_layout(config: Config) -> dict[str, tuple[tuple[int, ...], tuple]]:
    """Every checkpoint key, its shape, and where it goes in ``lib``'s tree (a path, transposed?)."""
    c = config
    d, d_head, ff = c.d_model, c.d_head, c.d_ff
    layout = {}
    if family(c) == GPT2:
        t = "transformer."
        layout[t + "wte.weight"] = ((c.vocab_size, d), ("wte",), False)
        layout[t + "wpe.weight"] = ((c.n_ctx, d), ("wpe",), False)
        for i in range(c.n_layer):
            p = f"{t}h.{i}."
            for hf_name, path, shape in [
                ("ln_1", ("ln_1",), (d,)),
                ("ln_2", ("ln_2",), (d,)),
            ]:
                layout[p + hf_name + ".weight"] = (shape, ("h", i, *path, "g"), False)
                layout[p + hf_name + ".bias"] = (shape, ("h", i, *path, "b"), False)
            for hf_name, d_in, d_out in [
                ("attn.c_attn", d, 3 * d),
                ("attn.c_proj", d, d),
                ("mlp.c_fc", d, ff),
                ("mlp.c_proj", ff, d),
            ]:
                path = ("h", i, *hf_name.split("."))
                layout[p + hf_name + ".weight"] = ((d_in, d_out), (*path, "w"), False)
                layout[p + hf_name + ".bias"] = ((d_out,), (*path, "b"), False)
        layout[t + "ln_f.weight"] = ((d,), ("ln_f", "g"), False)
        layout[t + "ln_f.bias"] = ((d,), ("ln_f", "b"), False)
        if not c.tie_embeddings:
            layout["lm_head.weight"] = ((c.vocab_size, d), ("lm_head",), True)
        return layout
    layout["model.embed_tokens.weight"] = ((c.vocab_size, d), ("wte",), False)
    for i in range(c.n_layer):
        p = f"model.layers.{i}."
        layout[p + "input_layernorm.weight"] = ((d,), ("h", i, "ln_1", "g"), False)
        layout[p + "post_attention_layernorm.weight"] = ((d,), ("h", i, "ln_2", "g"), False)
        for name, rows in [("q", c.n_head), ("k", c.n_kv_head), ("v", c.n_kv_head)]:
            layout[p + f"self_attn.{name}_proj.weight"] = ((rows * d_head, d), ("h", i, "attn", name), True)
        layout[p + "self_attn.o_proj.weight"] = ((d, d), ("h", i, "attn", "c_proj", "w"), True)
        for name, shape in [("gate_proj", (ff, d)), ("up_proj", (ff, d)), ("down_proj", (d, ff))]:
            layout[p + f"mlp.{name}.weight"] = (shape, ("h", i, "mlp", name, "w"), True)
    layout["model.norm.weight"] = ((d,), ("ln_f", "g"), False)
    if not c.tie_embeddings:
        layout["lm_head.weight"] = ((c.vocab_size, d), ("lm_head",), True)
    return layout


def _read_tensors(file: Path, dtype) -> dict[str, np.ndarray]:
    tensors = {}
    with safe_open(file, framework="np") as f:
        for key in f.keys():
            try:
                tensors[key] = f.get_tensor(key)
            except (TypeError, ValueError) as err:  # e.g. bfloat16 has no NumPy dtype
                raise ValueError(f"{file}: cannot read tensor {key!r} into NumPy ({err})") from err
    return {k: v.astype(dtype) if v.dtype.kind == "f" else v for k, v in tensors.items()}


def _normalise_gpt2_keys(tensors: dict) -> dict:
    """Older GPT-2 files drop the ``transformer.`` prefix and carry the causal-mask buffers."""
    out = {}
    for key, value in tensors.items():
        if key.endswith((".attn.bias", ".attn.masked_bias")):
            continue  # a stored causal mask, not a weight
        if not key.startswith(("transformer.", "lm_head.")):
            key = "transformer." + key
        out[key] = value
    return out


def load_pretrained(path_or_name, dtype=np.float32) -> Model:
    """Load a ``GPT2LMHeadModel`` or ``LlamaForCausalLM`` checkpoint directory.

    Parameters
    ----------
    path_or_name : str or Path
        A directory with ``config.json`` and ``model.safetensors`` (and optionally tokenizer
        files), or the name of a model shipped with the course (``"shakespeare"``, ``"toy"``).
    dtype : np.float32 or np.float64
        Every weight is converted to this type, and the model computes in it.

    Returns
    -------
    Model
        With ``model.tokenizer`` set when the directory holds tokenizer files.
    """
    if np.dtype(dtype) not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {np.dtype(dtype)}")
    directory = resolve(path_or_name)
    for name in ("config.json", "model.safetensors"):
        if not (directory / name).is_file():
            raise FileNotFoundError(f"{directory} has no {name}")
    config = config_from_hf(json.loads((directory / "config.json").read_text()))
    tensors = _read_tensors(directory / "model.safetensors", dtype)
    if family(config) == GPT2:
        tensors = _normalise_gpt2_keys(tensors)
        if config.tie_embeddings:
            tensors.pop("lm_head.weight", None)  # a saved copy of wte
    params = params_from_tensors(config, tensors, str(directory))
    return Model(config, params, Tokenizer.from_dir(directory) if Tokenizer.present(directory) else None)


def params_from_tensors(config: Config, tensors: dict, source: str = "checkpoint") -> dict:
    """Check every tensor against the layout, then build ``lib``'s nested dict."""
    layout = checkpoint_layout(config)
    missing = sorted(set(layout) - set(tensors))
    unexpected = sorted(set(tensors) - set(layout))
    if missing or unexpected:
        raise ValueError(
            f"{source} does not match its config: "
            + (f"missing {_short(missing)}" if missing else "")
            + ("; " if missing and unexpected else "")
            + (f"unexpected {_short(unexpected)}" if unexpected else "")
        )
    params: dict = {"h": [dict() for _ in range(config.n_layer)]}
    for key, (shape, path, transpose) in layout.items():
        value = tensors[key]
        if value.shape != shape:
            raise ValueError(f"{source}: {key} has shape {value.shape}, expected {shape}")
        _put(params, path, np.ascontiguousarray(value.T if transpose else value))
    if family(config) == LLAMA:
        for layer in params["h"]:
            attn = layer["attn"]
            attn["c_attn"] = {"w": np.concatenate([attn.pop("q"), attn.pop("k"), attn.pop("v")], axis=1)}
    return params


def _put(tree: dict, path: tuple, value) -> None:
    for key in path[:-1]:
        tree = tree[key] if isinstance(key, int) else tree.setdefault(key, {})
    tree[path[-1]] = value


def _short(keys: list[str], limit: int = 6) -> str:
    more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def hf_config(config: Config) -> dict:
    """The ``config.json`` Hugging Face ``transformers`` expects for this config."""
    c = config
    if family(c) == GPT2:
        return {
            "architectures": [GPT2],
            "model_type": "gpt2",
            "vocab_size": c.vocab_size,
            "n_positions": c.n_ctx,
            "n_embd": c.d_model,
            "n_layer": c.n_layer,
            "n_head": c.n_head,
            "n_inner": c.d_ff,
            "activation_function": {"tanh": "gelu_new", "exact": "gelu"}[c.gelu],
            "layer_norm_epsilon": c.norm_eps,
            "tie_word_embeddings": c.tie_embeddings,
            "resid_pdrop": 0.0,
            "embd_pdrop": 0.0,
            "attn_pdrop": 0.0,
        }
    return {
        "architectures": [LLAMA],
        "model_type": "llama",
        "vocab_size": c.vocab_size,
        "max_position_embeddings": c.n_ctx,
        "hidden_size": c.d_model,
        "num_hidden_layers": c.n_layer,
        "num_attention_heads": c.n_head,
        "num_key_value_heads": c.n_kv_head,
        "intermediate_size": c.d_ff,
        "hidden_act": "silu",
        "rms_norm_eps": c.norm_eps,
        "rope_theta": c.rope_theta,
        "tie_word_embeddings": c.tie_embeddings,
        "attention_bias": False,
        "mlp_bias": False,
    }


def save_pretrained(model: Model, directory) -> Path:
    """Write ``config.json`` and ``model.safetensors`` that ``transformers`` and ``lib`` can load."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    c = model.config
    tensors = {}
    for key, (_, path, transpose) in checkpoint_layout(c).items():
        if path[-1] in ("q", "k", "v"):  # Llama: split lib's fused c_attn back into three
            w = _get(model.params, (*path[:-1], "c_attn", "w"))
            bounds = np.cumsum([0, c.n_head * c.d_head, c.n_kv_head * c.d_head, c.n_kv_head * c.d_head])
            part = "qkv".index(path[-1])
            value = w[:, bounds[part] : bounds[part + 1]]
        else:
            value = _get(model.params, path)
        tensors[key] = np.ascontiguousarray(value.T if transpose else value)
    save_file(tensors, str(directory / "model.safetensors"), metadata={"format": "pt"})
    (directory / "config.json").write_text(json.dumps(hf_config(c), indent=2) + "\n")
    return directory


def _get(tree, path: tuple):
    for key in path:
        tree = tree[key]
    return tree
