"""Sequence tasks that can only be solved by remembering something for a while.

Three tasks share one interface (``MemoryTask.sample``), so the gate tab can train a
vanilla RNN, a GRU and an LSTM on exactly the same batches:

* ``first_symbol``: one of a few letters, then ``delay`` distractor letters, then a
  ``?``; at the ``?`` the network must name the first letter. Nothing in between
  helps, so the letter has to be carried across the whole delay.
* ``adding``: each step carries a random number and a marker flag; exactly two
  steps are marked, one in each half of the sequence, and at the end the network
  must output the sum of the two marked numbers (Hochreiter and Schmidhuber's
  adding problem; a regression task).
* ``text``: next-character prediction on windows of a text (``engine.text``), the
  RNN tab's task; ``delay`` sets how many characters each window holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from engine.text import LECTURE_EXAMPLE, TextTask, text_task

TASK_KINDS = ("first_symbol", "adding", "text")
TASK_TITLES = {
    "first_symbol": "Remember the first symbol",
    "adding": "Adding problem",
    "text": "Next character of a text",
}

# The letters to remember and the distractors are disjoint, so "the first letter"
# is the only letter of its kind in the sequence and the task is unambiguous.
REMEMBER = ("A", "B", "C", "D")
DISTRACTORS = ("w", "x", "y", "z")
RECALL = "?"
FIRST_SYMBOL_ALPHABET = REMEMBER + DISTRACTORS + (RECALL,)

ADDING_TOLERANCE = 0.04  # an answer within this of the true sum counts as correct (the usual threshold)
DEFAULT_TEXT = "the cat sat on the mat, the dog dug in the fog, " + LECTURE_EXAMPLE


@dataclass(frozen=True, eq=False)
class SequenceBatch:
    """A batch of input sequences with what the network must answer.

    ``target_kind`` says how to score it:
    ``"class_last"`` targets (B,) int64, one class read at the last step;
    ``"class_every"`` targets (B, T) int64, one class at every step;
    ``"value_last"`` targets (B,) float64, one number read at the last step.
    """
    inputs: np.ndarray  # (B, T, I) float64
    targets: np.ndarray  # (B,) int64 | (B, T) int64 | (B,) float64, see target_kind
    target_kind: str
    step_labels: tuple[tuple[str, ...], ...]  # (B, T): what a person would read at each input step

    @property
    def batch_size(self) -> int:
        return self.inputs.shape[0]

    @property
    def length(self) -> int:
        return self.inputs.shape[1]

    def one(self, index: int = 0) -> SequenceBatch:
        """Sequence ``index`` alone, as a batch of one."""
        return SequenceBatch(self.inputs[index: index + 1], self.targets[index: index + 1], self.target_kind,
                             self.step_labels[index: index + 1])


def _symbol_labels(ids: np.ndarray, alphabet: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    table = np.asarray(alphabet, dtype=object)
    return tuple(tuple(row) for row in table[ids])


def _one_hot(ids: np.ndarray, size: int) -> np.ndarray:  # (B, T) int -> (B, T, size) float64
    return np.eye(size, dtype=np.float64)[ids]


def first_symbol_batch(rng: np.random.Generator, batch_size: int, delay: int) -> SequenceBatch:
    """Sequences ``[letter, delay distractors, ?]`` (length delay + 2); target: the letter's index."""
    if delay < 0:
        raise ValueError("The delay cannot be negative.")
    first = rng.integers(0, len(REMEMBER), batch_size)  # (B,)
    distractors = len(REMEMBER) + rng.integers(0, len(DISTRACTORS), (batch_size, delay))  # (B, delay)
    recall = np.full((batch_size, 1), len(FIRST_SYMBOL_ALPHABET) - 1)
    ids = np.concatenate([first[:, None], distractors, recall], axis=1)  # (B, T)
    return SequenceBatch(_one_hot(ids, len(FIRST_SYMBOL_ALPHABET)), first.astype(np.int64), "class_last",
                         _symbol_labels(ids, FIRST_SYMBOL_ALPHABET))


def adding_batch(rng: np.random.Generator, batch_size: int, delay: int) -> SequenceBatch:
    """Adding problem of length delay + 2: inputs (value, marker); target: sum of the two marked values.

    One marker falls in the first half and one in the second, so on average the
    first marked number must be kept for about half the sequence or more.
    """
    if delay < 0:
        raise ValueError("The delay cannot be negative.")
    length = delay + 2
    half = length // 2
    values = rng.uniform(0.0, 1.0, (batch_size, length))  # (B, T)
    first = rng.integers(0, half, batch_size)  # (B,)
    second = rng.integers(half, length, batch_size)  # (B,)
    markers = np.zeros((batch_size, length))  # (B, T)
    rows = np.arange(batch_size)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    inputs = np.stack([values, markers], axis=-1)  # (B, T, 2)
    targets = values[rows, first] + values[rows, second]  # (B,)
    labels = tuple(tuple(f"{v:.2f}" + ("*" if m else "") for v, m in zip(vs, ms)) for vs, ms in zip(values, markers))
    return SequenceBatch(inputs, targets, "value_last", labels)


def text_batch(rng: np.random.Generator, batch_size: int, delay: int, task: TextTask) -> SequenceBatch:
    """Random windows of delay + 2 characters from the text; target: the next character at every step."""
    length = delay + 2
    available = len(task.inputs) - length + 1
    if available < 1:
        raise ValueError(f"The text has {len(task.inputs)} characters; windows of {length} need a longer text "
                         "or a shorter delay.")
    starts = rng.integers(0, available, batch_size)  # (B,)
    idx = starts[:, None] + np.arange(length)[None, :]  # (B, T)
    ids = task.inputs[idx]
    return SequenceBatch(_one_hot(ids, len(task.vocab)), task.targets[idx].astype(np.int64), "class_every",
                         _symbol_labels(ids, task.vocab.symbols))


@dataclass(frozen=True)
class MemoryTask:
    """A task with its delay; ``sample`` draws batches, the sizes tell how to build the models."""
    kind: str = "first_symbol"
    delay: int = 80
    text: str = DEFAULT_TEXT  # used by the text task only

    def __post_init__(self) -> None:
        if self.kind not in TASK_KINDS:
            raise ValueError(f"Unknown task {self.kind!r}; choose one of {', '.join(TASK_KINDS)}.")
        if self.delay < 0:
            raise ValueError("The delay cannot be negative.")
        if self.kind == "text" and len(self.text) < self.delay + 2:
            raise ValueError(f"The text is {len(self.text)} characters long; a delay of {self.delay} needs at "
                             f"least {self.delay + 2}. Type a longer text or lower the delay.")

    @property
    def title(self) -> str:
        return TASK_TITLES[self.kind]

    @cached_property
    def text_data(self) -> TextTask:
        """The text task's inputs and targets (built once per task)."""
        return text_task(self.text)

    @property
    def input_size(self) -> int:
        if self.kind == "first_symbol":
            return len(FIRST_SYMBOL_ALPHABET)
        if self.kind == "adding":
            return 2
        return len(self.text_data.vocab)

    @property
    def output_size(self) -> int:
        if self.kind == "first_symbol":
            return len(REMEMBER)
        if self.kind == "adding":
            return 1
        return len(self.text_data.vocab)

    @property
    def regression(self) -> bool:
        return self.kind == "adding"

    @property
    def chance_accuracy(self) -> float:
        """What guessing scores: a uniform guess, or for adding always answering 1 (the mean sum)."""
        if self.kind == "first_symbol":
            return 1.0 / len(REMEMBER)
        if self.kind == "adding":
            # |U1 + U2 - 1| < tol: the triangular density near 1 is ~1, so about 2 * tol.
            return 2 * ADDING_TOLERANCE - ADDING_TOLERANCE ** 2
        counts = np.bincount(self.text_data.targets)
        return float(counts.max() / counts.sum())  # always answering the most common next character

    def sample(self, rng: np.random.Generator, batch_size: int) -> SequenceBatch:
        if self.kind == "first_symbol":
            return first_symbol_batch(rng, batch_size, self.delay)
        if self.kind == "adding":
            return adding_batch(rng, batch_size, self.delay)
        return text_batch(rng, batch_size, self.delay, self.text_data)

    def example(self, seed: int = 0) -> SequenceBatch:
        """One fixed sequence to inspect (the same for a given seed)."""
        return self.sample(np.random.default_rng(seed), 1)

    def describe(self) -> str:
        """One sentence for the student: what is asked and what chance is."""
        if self.kind == "first_symbol":
            return (f"Read one of {', '.join(REMEMBER)}, then {self.delay} distractors, then '{RECALL}': name the "
                    f"first letter. Guessing scores {self.chance_accuracy * 100:.0f} %.")
        if self.kind == "adding":
            return (f"{self.delay + 2} numbers, two of them marked (*): output their sum; within "
                    f"{ADDING_TOLERANCE} counts as right. Always answering 1 scores about "
                    f"{self.chance_accuracy * 100:.0f} %.")
        return (f"Predict the next character in windows of {self.delay + 2} characters of your text. Always "
                f"answering the most common character scores {self.chance_accuracy * 100:.0f} %.")
