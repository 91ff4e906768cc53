import numpy as np
import pytest

from engine.text import STOP, Vocabulary, one_hot, text_task


def test_lecture_deep_example():
    task = text_task("deep")
    assert task.vocab.symbols == ("d", "e", "p", STOP)
    assert task.vocab.decode(task.inputs) == ["d", "e", "e", "p"]
    assert task.vocab.decode(task.targets) == ["e", "e", "p", STOP]


def test_one_hot_and_errors():
    x = one_hot(np.array([2, 0]), 4)
    assert x.tolist() == [[0, 0, 1, 0], [1, 0, 0, 0]]
    with pytest.raises(ValueError, match="empty"):
        Vocabulary.from_text("")
    with pytest.raises(ValueError, match="not in the vocabulary"):
        text_task("xyz", Vocabulary.from_text("abc"))
