"""The block and the whole forward pass, wrong (chapters 2 and 5): GPT-2's pre-norm block on
``lib``'s stages, with its wiring changed."""

import lib

from .attention import multi_head_attention


def block(x, params, n_head, *, mode="pre-norm", eps=1e-5, mask=True):
    """A GPT-2 block. ``mode``: ``"pre-norm"`` (right), ``"post-norm"``, ``"no-first-residual"``,
    ``"no-second-residual"``, ``"no-residuals"``, ``"same-norm"`` (ln_1's weights for both norms),
    ``"normed-residual"`` (the residuals add to the normed stream; ``"normed-first-residual"``, the
    first only), ``"parallel"`` (the MLP reads
    the block's input), ``"swapped"`` (the MLP first); ``mask=False`` drops the causal mask."""

    def ln(t, name):
        return lib.layer_norm(t, params[name]["g"], params[name]["b"], eps)

    def attn(t):
        return multi_head_attention(t, params["attn"], n_head, mask="before" if mask else "none")

    def ff(t):
        return lib.mlp(t, params["mlp"])

    if mode == "post-norm":
        mid = ln(x + attn(x), "ln_1")
        return ln(mid + ff(mid), "ln_2")
    if mode == "swapped":
        mid = x + ff(ln(x, "ln_2"))
        return mid + attn(ln(mid, "ln_1"))
    if mode == "normed-residual":
        h = ln(x, "ln_1")
        mid = h + attn(h)
        h2 = ln(mid, "ln_2")
        return h2 + ff(h2)
    if mode == "normed-first-residual":
        h = ln(x, "ln_1")
        mid = h + attn(h)
        return mid + ff(ln(mid, "ln_2"))
    first = attn(ln(x, "ln_1"))
    mid = first if mode in ("no-first-residual", "no-residuals") else x + first
    second = ff(ln(x if mode == "parallel" else mid, "ln_1" if mode == "same-norm" else "ln_2"))
    return second if mode in ("no-second-residual", "no-residuals") else mid + second


def forward(ids, params, n_head, eps, *, final_norm=True, positions=True, **block_knobs):
    """A one-block GPT-2's logits, with any knob of ``block``; ``final_norm=False`` drops ``ln_f``,
    ``positions=False`` drops ``wpe``."""
    x = lib.embed(ids, params["wte"], params["wpe"] if positions else None)
    x = block(x, params["h"][0], n_head, eps=eps, **block_knobs)
    if final_norm:
        x = lib.layer_norm(x, params["ln_f"]["g"], params["ln_f"]["b"], eps)
    return lib.lm_head(x, params["wte"].T)


# The block's wiring: knobs of ``block`` (and of chapter 5's whole forward pass).
BLOCK = {
    "post-norm": (
        {"mode": "post-norm"},
        "this is a post-norm block (norm after adding, as in the 2017 Transformer): GPT-2 is pre-norm, "
        "x = x + attn(ln_1(x)); x = x + mlp(ln_2(x)), and the stream itself is never normalised",
    ),
    "no-first-residual": (
        {"mode": "no-first-residual"},
        "the first residual connection is missing: add the attention output to the stream, "
        "x + attn(ln_1(x)), instead of replacing the stream with it",
    ),
    "no-second-residual": (
        {"mode": "no-second-residual"},
        "the second residual connection is missing: return resid_mid + mlp(ln_2(resid_mid)), not the "
        "MLP's output alone",
    ),
    "no-residuals": (
        {"mode": "no-residuals"},
        "both residual connections are missing: each sublayer's output is added to the stream, "
        "x = x + attn(ln_1(x)), then x = x + mlp(ln_2(x))",
    ),
    "same-norm": (
        {"mode": "same-norm"},
        "the second norm uses ln_1's gain and bias: the MLP's norm has its own, params['ln_2']",
    ),
    "normed-residual": (
        {"mode": "normed-residual"},
        "you added the sublayer's output to the normalised stream: the residual adds to the raw stream "
        "x, x + attn(ln_1(x)); the norm only feeds the sublayer",
    ),
    "normed-first-residual": (
        {"mode": "normed-first-residual"},
        "you added the attention output to the normalised stream, ln_1(x) + attn(ln_1(x)): the residual adds "
        "to the raw stream x, x + attn(ln_1(x)); the norm only feeds the sublayer",
    ),
    "parallel": (
        {"mode": "parallel"},
        "the MLP reads the block's input instead of the stream after attention (a 'parallel' block, as "
        "in GPT-J): GPT-2's MLP reads resid_mid = x + attn(ln_1(x))",
    ),
    "swapped": (
        {"mode": "swapped"},
        "the sublayers are in the wrong order: attention (with ln_1) comes first, then the MLP (with ln_2)",
    ),
    "no-mask": (
        {"mask": False},
        "the first position's output depends on later tokens: the causal mask is missing in attention",
    ),
    "eps-1e-6": (
        {"eps": 1e-6},
        "your LayerNorms use eps=1e-6 (the RMSNorm default of this chapter): GPT-2's are 1e-5, "
        "layer_norm's default; pass no eps to layer_norm",
    ),
}
