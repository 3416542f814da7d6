"""One pre-norm transformer block: two sublayers, each reading the stream and adding back.

``x = x + attn(norm_1(x))``; ``x = x + mlp(norm_2(x))``. The output has the input's shape,
which is why blocks stack.
"""

import numpy as np

from .attention import multi_head_attention
from .mlp import feed_forward
from .norms import norm
from .trace import scope, traced


def block(x, params: dict, config, *, positions=None, kv_cache=None) -> np.ndarray:
    """A pre-norm block.

    Parameters
    ----------
    x : array, shape (..., T, d)
        The residual stream: one sequence (T, d), a batch (B, T, d), or more leading axes.
    params : dict
        ``{"ln_1", "attn", "ln_2", "mlp"}`` for this block.
    config : Config
    positions, kv_cache :
        As in ``multi_head_attention``.

    Returns
    -------
    array, shape (..., T, d), as ``x``
    """
    rope_theta = config.rope_theta if config.positions == "rope" else None
    h = traced("ln_1", norm(x, params["ln_1"], config))
    with scope("attn"):
        attn = multi_head_attention(
            h,
            params["attn"],
            config.n_head,
            config.n_kv_head,
            positions=positions,
            rope_theta=rope_theta,
            rope_pairing=config.rope_pairing,
            kv_cache=kv_cache,
        )
    x = traced("resid_mid", x + attn)  # first residual
    h = traced("ln_2", norm(x, params["ln_2"], config))
    with scope("mlp"):
        out = feed_forward(h, params["mlp"], config)
    return traced("resid_post", x + out)  # second residual
