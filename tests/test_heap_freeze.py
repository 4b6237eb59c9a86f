"""A long-running process moves its start-up heap out of the cyclic collector's reach, and still
collects the garbage it makes afterwards."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from runledger.processes import freeze_startup_heap


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


@pytest.mark.usefixtures("unfrozen")
def test_the_startup_heap_is_frozen_and_later_cycles_are_still_collected() -> None:
    before = len(gc.get_objects())
    freeze_startup_heap()
    assert gc.get_freeze_count() >= before // 2  # what lived at start-up is out of reach
    assert len(gc.get_objects()) < before // 2  # so a full collection no longer walks it

    later = _Node()
    gone = weakref.ref(later)
    del later
    gc.collect()
    assert gone() is None
