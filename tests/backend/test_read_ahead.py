import threading
import time

import pytest

from backend.read_ahead import read_ahead


def test_items_come_in_order_each_with_its_read_done_on_another_thread():
    main = threading.get_ident()
    seen = list(read_ahead(range(5), lambda item: (item * 10, threading.get_ident())))
    assert [(item, value) for item, (value, _) in seen] == [(k, 10 * k) for k in range(5)]
    assert all(thread != main for _, (_, thread) in seen)
    assert list(read_ahead([], lambda item: item)) == []


def test_the_next_read_runs_while_the_caller_works_on_the_current_item():
    started: list[int] = []

    def read(item: int) -> int:
        started.append(item)
        return item

    reads = read_ahead(range(3), read)
    assert next(reads) == (0, 0)
    deadline = time.monotonic() + 5
    while 1 not in started and time.monotonic() < deadline:  # the caller holds item 0; item 1 is read meanwhile
        time.sleep(0.01)
    assert started == [0, 1]
    reads.close()


def test_a_failed_read_is_raised_where_its_item_is_taken():
    def read(item: int) -> int:
        if item == 2:
            raise ValueError("tile 2 is unreadable")
        return item

    reads = read_ahead(range(4), read)
    assert [next(reads), next(reads)] == [(0, 0), (1, 1)]
    with pytest.raises(ValueError, match="tile 2"):
        next(reads)


def test_closing_early_waits_for_the_read_in_flight_and_reads_no_more():
    finished: list[int] = []

    def read(item: int) -> int:
        time.sleep(0.2)
        finished.append(item)
        return item

    reads = read_ahead(range(10), read)
    next(reads)
    reads.close()  # item 1 was in flight: close returns once it is done, and item 2 is never read
    assert finished == [0, 1]
    time.sleep(0.3)
    assert finished == [0, 1]
