"""`Target` is a tuple: equal targets, however they were made, hash alike and find each other
in a dict (the invoker's cache); a different qualifier is another target."""

from __future__ import annotations

import copy
import pickle

from unkai.invoke.models import Target


def test_equal_targets_hash_alike() -> None:
    target = Target("dev", "hello", "live")
    made = [
        Target("dev", "hello", "live"),
        Target(stage="dev", function="hello", qualifier="live"),
        copy.copy(target),
        copy.deepcopy(target),
        Target("dev", "hello")._replace(qualifier="live"),
        pickle.loads(pickle.dumps(target)),
    ]
    for other in made:
        assert other == target and hash(other) == hash(target)
        assert {target: 1}[other] == 1
    assert Target("dev", "hello") != target
    assert Target("dev", "hello").qualifier is None
