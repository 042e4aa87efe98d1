"""Keep loaded models between the jobs of one long-lived process (``serve``, the workers of ``batch``).

:func:`backend.worker.load_network` reads a weights file and builds its network each time it is called. Wrapped by
:func:`cached_network`, it first asks the cache made active for the current job (:meth:`ModelCache.active`); with
none active (``run``, one job per process) it loads as before. The cache keys a network by its weights file (path,
size, modification time: a re-imported file is read again) and the job's device and runtime, so a network placed
on the GPU for one job is not handed to a CPU job. Jobs that adapt the model to their scene bypass the cache: they
expect the network on the CPU, and what they fine-tune is a copy anyway.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from backend.job import Job
    from models.card import ModelCard

log = logging.getLogger(__name__)

Loaded = tuple["torch.nn.Module", "ModelCard", Path]
Loader = Callable[[str], Loaded]
# Networks kept at once: a DE model and its reference, plus one more model, before the oldest goes.
MAX_MODELS = 4

_ACTIVE: ContextVar[tuple[ModelCache, tuple[str, ...]] | None] = ContextVar("model_cache", default=None)


class ModelCache:
    """Networks loaded for earlier jobs, least recently used dropped first.

    Args:
        max_models: how many networks to keep.

    Attributes:
        loads: networks read from disk through this cache.
        hits: networks handed out again without reading.
    """

    def __init__(self, max_models: int = MAX_MODELS) -> None:
        self.max_models = max_models
        self.loads = 0
        self.hits = 0
        self._kept: OrderedDict[tuple[Any, ...], Loaded] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._kept)

    @contextlib.contextmanager
    def active(self, job: Job) -> Iterator[None]:
        """Within the block, :func:`cached_network` loaders use this cache for ``job``'s device and runtime."""
        if job.adapt:
            yield
            return
        token = _ACTIVE.set((self, (job.device, job.runtime)))
        try:
            yield
        finally:
            _ACTIVE.reset(token)

    def get(self, name: str, load: Loader, placement: tuple[str, ...] = ()) -> Loaded:
        """The network of model ``name`` (a name or a path): kept from before, or loaded with ``load`` and kept.

        Raises:
            Whatever ``load`` raises (a model that cannot be found or read is not kept).
        """
        key = _file_key(name)
        if key is None:  # not resolvable: let the loader say why
            return load(name)
        key = (*key, *placement)
        with self._lock:
            if key in self._kept:
                self._kept.move_to_end(key)
                self.hits += 1
                log.info("Model %s is already loaded", self._kept[key][1].name)
                return self._kept[key]
            loaded = load(name)
            self.loads += 1
            self._kept[key] = loaded
            while len(self._kept) > self.max_models:
                self._kept.popitem(last=False)
            log.info("Loaded model %s; it stays loaded for the next jobs", loaded[1].name)
            return loaded

    def clear(self) -> None:
        """Drop every kept network."""
        with self._lock:
            self._kept.clear()


def _file_key(name: str) -> tuple[Any, ...] | None:
    from models.registry import ModelNotFoundError, resolve_weights

    try:
        path = resolve_weights(name)
        stat = os.stat(path)
    except (ModelNotFoundError, OSError):
        return None
    return (os.path.realpath(path), stat.st_size, stat.st_mtime_ns)


def cached_network(load: Loader) -> Loader:
    """Wrap a ``name -> (network, card, weights)`` loader so that it uses the active cache, if any."""
    if getattr(load, "uses_model_cache", False):
        return load

    @functools.wraps(load)
    def loader(name: str) -> Loaded:
        active = _ACTIVE.get()
        if active is None:
            return load(name)
        cache, placement = active
        return cache.get(name, load, placement)

    loader.uses_model_cache = True  # type: ignore[attr-defined]
    return loader
