"""Text to token ids and back, through the Hugging Face ``tokenizers`` library.

A checkpoint directory may carry a ``tokenizer.json`` (any model the library can describe: the
course's character-level tokenizer, GPT-2's byte-level BPE, ...) or GPT-2's original pair of files
``vocab.json`` + ``merges.txt``.
"""

from pathlib import Path

import numpy as np
from tokenizers import ByteLevelBPETokenizer
from tokenizers import Tokenizer as HFTokenizer

from ._validate import as_token_ids


class Tokenizer:
    """Encode text to ids and decode ids to text; unknown input raises ``ValueError``."""

    def __init__(self, backend: HFTokenizer):
        self.backend = backend
        self.vocab = backend.get_vocab()  # token -> id
        self.vocab_size = backend.get_vocab_size()

    @staticmethod
    def present(directory) -> bool:
        d = Path(directory)
        return (d / "tokenizer.json").is_file() or (
            (d / "vocab.json").is_file() and (d / "merges.txt").is_file()
        )

    @classmethod
    def from_dir(cls, directory) -> "Tokenizer":
        d = Path(directory)
        if (d / "tokenizer.json").is_file():
            return cls(HFTokenizer.from_file(str(d / "tokenizer.json")))
        if (d / "vocab.json").is_file() and (d / "merges.txt").is_file():
            return cls(ByteLevelBPETokenizer(str(d / "vocab.json"), str(d / "merges.txt")))
        raise FileNotFoundError(f"{d} has neither tokenizer.json nor vocab.json + merges.txt")

    def encode(self, text: str) -> np.ndarray:
        """``str -> int64 array of shape (T,)``."""
        if not isinstance(text, str):
            raise TypeError(f"encode expects a str, got {type(text).__name__}")
        try:
            encoding = self.backend.encode(text, add_special_tokens=False)
        except Exception as err:  # the library's own error for input it cannot represent
            raise ValueError(self._unknown(text) or f"cannot encode {text[:40]!r}: {err}") from err
        unknown = self._unknown(text) if self._unk_id() in encoding.ids else None
        if unknown:
            raise ValueError(unknown)
        return np.array(encoding.ids, dtype=np.int64)

    def decode(self, ids) -> str:
        """``int array of shape (T,) -> str``; ids outside the vocabulary raise ``ValueError``."""
        ids = as_token_ids(ids, self.vocab_size)
        if ids.ndim != 1:
            raise ValueError(f"decode takes one sequence of shape (T,), got shape {ids.shape}")
        return self.backend.decode(ids.tolist(), skip_special_tokens=False)

    def token(self, i: int) -> str:
        """The text of token ``i``."""
        return self.decode(np.array([i]))

    def _unk_id(self):
        unk = getattr(self.backend.model, "unk_token", None)
        return self.vocab.get(unk) if unk else None

    def _unknown(self, text: str) -> str | None:
        """For a character-level vocabulary, name the first character it does not have."""
        if not all(len(t) == 1 for t in self.vocab):
            return None
        for position, char in enumerate(text):
            if char not in self.vocab:
                return (
                    f"character {char!r} (U+{ord(char):04X}) at position {position} is not in the vocabulary"
                )
        return None
