"""The model configuration: one dataclass for both families.

GPT-2 and Llama differ in a handful of independent switches (the norm, how positions enter,
the MLP, biases, weight tying, and how many key/value heads there are). Each switch is a field,
so a reader can change one thing at a time and watch what happens.
"""

from dataclasses import asdict, dataclass, replace

from .rope import PAIRINGS

NORMS = ("layernorm", "rmsnorm")
POSITIONS = ("learned", "rope")
MLPS = ("gelu", "swiglu")
GELUS = ("tanh", "exact")


@dataclass(frozen=True)
class Config:
    """Hyper-parameters of a decoder-only transformer.

    Attributes
    ----------
    vocab_size : int
        Number of tokens V.
    n_ctx : int
        Longest sequence the model accepts (learned position table size for GPT-2).
    d_model : int
        Width of the residual stream d.
    n_layer : int
        Number of blocks L.
    n_head : int
        Number of query heads h; ``d_head = d_model // n_head``.
    n_kv_head : int
        Number of key/value heads (``n_head`` for plain multi-head attention, fewer for
        grouped-query attention).
    d_ff : int
        Hidden width of the MLP (4d for GPT-2).
    norm : {"layernorm", "rmsnorm"}
    positions : {"learned", "rope"}
    mlp : {"gelu", "swiglu"}
    gelu : {"tanh", "exact"}
        Which GELU the GELU MLP uses: the tanh approximation (GPT-2's, Hugging Face's
        ``gelu_new``) or the exact one with erf (Hugging Face's ``gelu``).
    bias : bool
        Whether linear layers and norms carry biases.
    tie_embeddings : bool
        Whether the LM head reuses the token embedding matrix.
    norm_eps : float
        The epsilon added to the variance (LayerNorm) or mean square (RMSNorm).
    rope_theta : float
        Base of the RoPE frequencies.
    rope_pairing : {"halves", "interleaved"}
        Which features RoPE rotates together (``lib.rope``); Hugging Face checkpoints use halves.
    """

    vocab_size: int
    n_ctx: int
    d_model: int
    n_layer: int
    n_head: int
    n_kv_head: int | None = None
    d_ff: int | None = None
    norm: str = "layernorm"
    positions: str = "learned"
    mlp: str = "gelu"
    gelu: str = "tanh"
    bias: bool = True
    tie_embeddings: bool = True
    norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    rope_pairing: str = "halves"

    def __post_init__(self):
        if self.n_kv_head is None:
            object.__setattr__(self, "n_kv_head", self.n_head)
        if self.d_ff is None:
            object.__setattr__(self, "d_ff", 4 * self.d_model)
        for name, allowed in [
            ("norm", NORMS),
            ("positions", POSITIONS),
            ("mlp", MLPS),
            ("gelu", GELUS),
            ("rope_pairing", PAIRINGS),
        ]:
            if getattr(self, name) not in allowed:
                raise ValueError(f"Config.{name}={getattr(self, name)!r}: expected one of {allowed}")
        for name in ("vocab_size", "n_ctx", "d_model", "n_layer", "n_head", "n_kv_head", "d_ff"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"Config.{name}={value!r}: expected a positive integer")
        if self.d_model % self.n_head:
            raise ValueError(f"d_model={self.d_model} is not divisible by n_head={self.n_head}")
        if self.n_head % self.n_kv_head:
            raise ValueError(f"n_head={self.n_head} is not a multiple of n_kv_head={self.n_kv_head}")
        if self.positions == "rope" and self.d_head % 2:
            raise ValueError(f"RoPE needs an even d_head, got {self.d_head}")

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_head

    @classmethod
    def gpt2(cls, **overrides) -> "Config":
        """GPT-2 small (124M) unless overridden."""
        base = dict(vocab_size=50257, n_ctx=1024, d_model=768, n_layer=12, n_head=12)
        return cls(**{**base, **overrides})

    @classmethod
    def llama(cls, **overrides) -> "Config":
        """A Llama-style block: RMSNorm, RoPE, SwiGLU, no biases, untied head."""
        base = dict(
            vocab_size=32000,
            n_ctx=2048,
            d_model=512,
            n_layer=8,
            n_head=8,
            n_kv_head=2,
            d_ff=1376,
            norm="rmsnorm",
            positions="rope",
            mlp="swiglu",
            bias=False,
            tie_embeddings=False,
            norm_eps=1e-6,
        )
        return cls(**{**base, **overrides})

    def replace(self, **changes) -> "Config":
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return asdict(self)
