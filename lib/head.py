"""Stage 3: from the last stream to logits, probabilities and a loss."""

import numpy as np

from ._validate import as_float_array, as_token_ids
from .activations import log_softmax


def lm_head(x, w_unembed: np.ndarray) -> np.ndarray:
    """Logits ``x @ W_U``: one score per vocabulary token.

    Parameters
    ----------
    x : array, shape (..., d)
        The final-normed stream.
    w_unembed : array, shape (d, V)
        For a tied head pass ``wte.T`` (a view, no copy).

    Returns
    -------
    array, shape (..., V)
    """
    x = as_float_array(x, "x")
    if x.shape[-1] != w_unembed.shape[0]:
        raise ValueError(f"lm_head: x has shape {x.shape}, the unembedding has shape {w_unembed.shape}")
    return x @ w_unembed


def cross_entropy(logits, targets) -> float:
    """Mean negative log-likelihood of ``targets`` in nats.

    ``loss = -mean_t log softmax(logits_t)[targets_t]``. For language modelling the targets are
    the inputs shifted left by one: ``logits[:-1]`` against ``ids[1:]``.

    Parameters
    ----------
    logits : array, shape (..., T, V)
    targets : int array, shape (..., T)

    Returns
    -------
    float
    """
    logits = as_float_array(logits, "logits")
    targets = np.asarray(targets)
    if targets.shape != logits.shape[:-1]:
        raise ValueError(
            f"cross_entropy: targets have shape {targets.shape}, logits {logits.shape}; "
            "expected targets of shape logits.shape[:-1]"
        )
    targets = as_token_ids(targets.reshape(-1), logits.shape[-1], "targets").reshape(targets.shape)
    logp = log_softmax(logits, axis=-1)
    picked = np.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]
    return float(-picked.mean())


def perplexity(loss: float) -> float:
    """``exp(loss)``: the size of a uniform choice that would be as surprising as the model."""
    return float(np.exp(loss))
