"""Character-level text tasks shared by the RNN and gate tabs.

The lecture's auto-completion example: vocabulary {d, e, p, <stop>} and the word
"deep"; the network reads d, e, e, p and must predict e, e, p, <stop>.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STOP = "<stop>"


@dataclass(frozen=True)
class Vocabulary:
    symbols: tuple[str, ...]  # index -> symbol; STOP is last

    @classmethod
    def from_text(cls, text: str) -> Vocabulary:
        """Sorted distinct characters of ``text``, then <stop>."""
        if not text:
            raise ValueError("The text is empty: type at least two characters.")
        return cls(tuple(sorted(set(text))) + (STOP,))

    def __len__(self) -> int:
        return len(self.symbols)

    @property
    def stop(self) -> int:
        return len(self.symbols) - 1

    def encode(self, text: str) -> np.ndarray:  # (T,) int64
        index = {s: i for i, s in enumerate(self.symbols)}
        try:
            return np.array([index[c] for c in text], dtype=np.int64)
        except KeyError as exc:
            raise ValueError(f"{exc.args[0]!r} is not in the vocabulary") from exc

    def decode(self, ids) -> list[str]:
        return [self.symbols[int(i)] for i in ids]


@dataclass(frozen=True)
class TextTask:
    """Next-character prediction: inputs[t] is the t-th character, targets[t] the next one (<stop> last)."""
    text: str
    vocab: Vocabulary
    inputs: np.ndarray  # (T,) int64
    targets: np.ndarray  # (T,) int64


def text_task(text: str, vocab: Vocabulary | None = None) -> TextTask:
    vocab = vocab or Vocabulary.from_text(text)
    ids = vocab.encode(text)
    targets = np.append(ids[1:], vocab.stop).astype(np.int64)
    return TextTask(text, vocab, ids, targets)


def one_hot(ids: np.ndarray, size: int) -> np.ndarray:  # (T,) -> (T, size) float64
    out = np.zeros((len(ids), size), np.float64)
    out[np.arange(len(ids)), ids] = 1.0
    return out


LECTURE_EXAMPLE = "deep"
