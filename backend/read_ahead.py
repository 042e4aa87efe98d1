"""Read the next batch of tiles on a second thread while the current one goes through the network.

The pipeline reads a batch and finds its clouds there. Reading a tile is GDAL's work (decompression, warping) and
finding its clouds mostly LightGBM's (s2cloudless); both run without Python's lock, as do torch's and ONNX
Runtime's kernels. So on a machine with a free core that work on batch n + 1 hides behind the network's work on
batch n. One batch is read ahead, no more: what is held does not grow with the raster. Only the reading thread
touches the input datasets while the run goes on, so no GDAL dataset is shared between threads.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

Item = TypeVar("Item")
Read = TypeVar("Read")


def read_ahead(items: Iterable[Item], read: Callable[[Item], Read]) -> Generator[tuple[Item, Read], None, None]:
    """Each item with ``read(item)``, the next item's read running on a second thread while the caller works.

    An exception of ``read`` is raised where the caller takes that item. When the caller stops early (an error, a
    cancel), the read in flight is waited for and dropped, and nothing is read after it.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="read-ahead") as reader:
        pending = iter(items)
        current = next(pending, None)
        future = reader.submit(read, current) if current is not None else None
        while current is not None and future is not None:
            following = next(pending, None)
            result = future.result()
            future = reader.submit(read, following) if following is not None else None
            yield current, result
            current = following
