"""`Target` caches its hash; equal targets must hash alike however they were made."""

from __future__ import annotations

import copy
import dataclasses
import pickle

from unkai.invoke.models import Target


def test_equal_targets_hash_alike() -> None:
    target = Target("dev", "hello", "live")
    made = [
        Target("dev", "hello", "live"),
        copy.copy(target),
        copy.deepcopy(target),
        dataclasses.replace(Target("dev", "hello"), qualifier="live"),
        pickle.loads(pickle.dumps(target)),
    ]
    for other in made:
        assert other == target and hash(other) == hash(target)
        assert {target: 1}[other] == 1
    assert Target("dev", "hello") != target


def test_a_pickle_carries_the_fields_not_the_hash() -> None:
    # A hash depends on the process's hash seed: an unpickled target computes its own.
    _, args = Target("dev", "hello").__reduce__()
    assert args == ("dev", "hello", None)
