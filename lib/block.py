"""One pre-norm transformer block: two sublayers, each reading the stream and adding back.

``x = x + attn(norm_1(x))``; ``x = x + mlp(norm_2(x))``. The output has the input's shape,
which is why blocks stack.
"""

import numpy as np

from .attention import multi_head_attention
from .mlp import feed_forward
from .norms import layer_norm, rms_norm


def norm(x, params: dict, config) -> np.ndarray:
    """The norm the config asks for: LayerNorm (``{"g", "b"}``) or RMSNorm (``{"g"}``)."""
    if config.norm == "rmsnorm":
        return rms_norm(x, params["g"], config.norm_eps)
    return layer_norm(x, params["g"], params.get("b"), config.norm_eps)


def block(
    x,
    params: dict,
    config,
    *,
    positions=None,
    kv_cache=None,
    last_n: int | None = None,
    trace: dict | None = None,
    prefix: str = "h.0",
) -> np.ndarray:
    """A pre-norm block.

    Parameters
    ----------
    x : array, shape (B, T, d)
        The residual stream.
    params : dict
        ``{"ln_1", "attn", "ln_2", "mlp"}`` for this block.
    config : Config
    positions, kv_cache, last_n, trace :
        As in ``multi_head_attention``. With ``last_n``, only the last ``last_n`` positions leave
        the block: everything after attention works on each position alone, so the others are
        not computed.

    Returns
    -------
    array, shape (B, T, d) (``last_n`` positions instead of T if given)
    """
    rope_theta = config.rope_theta if config.positions == "rope" else None
    h = norm(x, params["ln_1"], config)
    if trace is not None:
        trace[f"{prefix}.ln_1"] = h
    attn = multi_head_attention(
        h,
        params["attn"],
        config.n_head,
        config.n_kv_head,
        positions=positions,
        rope_theta=rope_theta,
        kv_cache=kv_cache,
        last_n=last_n,
        trace=trace,
        prefix=f"{prefix}.attn",
    )
    if last_n is not None:
        x = x[:, -last_n:]
    x = x + attn  # first residual
    h = norm(x, params["ln_2"], config)
    if trace is not None:
        trace[f"{prefix}.resid_mid"] = x
        trace[f"{prefix}.ln_2"] = h
    out = x + feed_forward(h, params["mlp"], config, trace=trace, prefix=f"{prefix}.mlp")  # second
    if trace is not None:
        trace[f"{prefix}.resid_post"] = out
    return out
