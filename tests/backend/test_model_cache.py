import dataclasses
import os

import pytest

from backend.job import Job
from backend.model_cache import ModelCache, cached_network


class Loader:
    """Counts loads; answers (network, card, weights) stand-ins."""

    def __init__(self):
        self.calls = []

    def __call__(self, name):
        self.calls.append(name)

        class Card:
            pass

        card = Card()
        card.name = os.path.basename(name)
        return object(), card, name


@pytest.fixture
def files(tmp_path):
    paths = []
    for name in ("a", "b", "c"):
        path = tmp_path / f"{name}.safetensors"
        path.write_bytes(b"weights")
        paths.append(str(path))
    return paths


def job(**changes):
    return Job(algorithm="dbcr", optical="in.tif", output="out.tif", **changes)


def test_without_an_active_cache_every_call_loads(files):
    load = Loader()
    wrapped = cached_network(load)
    wrapped(files[0])
    wrapped(files[0])
    assert len(load.calls) == 2
    assert cached_network(wrapped) is wrapped


def test_kept_per_file_device_and_runtime(files):
    load, cache = Loader(), ModelCache()
    wrapped = cached_network(load)
    with cache.active(job(device="cpu")):
        first = wrapped(files[0])
        assert wrapped(files[0]) is first
    with cache.active(job(device="cpu")):
        assert wrapped(files[0]) is first
    with cache.active(job(device="cuda")):
        assert wrapped(files[0]) is not first
    with cache.active(job(device="cpu", runtime="onnxruntime")):
        wrapped(files[0])
    assert (cache.loads, cache.hits) == (3, 2)


def test_a_rewritten_file_is_read_again(files):
    load, cache = Loader(), ModelCache()
    wrapped = cached_network(load)
    with cache.active(job()):
        wrapped(files[0])
        stat = os.stat(files[0])
        os.utime(files[0], ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
        wrapped(files[0])
    assert cache.loads == 2


def test_oldest_model_goes_first(files):
    load, cache = Loader(), ModelCache(max_models=2)
    wrapped = cached_network(load)
    with cache.active(job()):
        for path in (files[0], files[1], files[0], files[2], files[0], files[1]):
            wrapped(path)
    assert load.calls == [files[0], files[1], files[2], files[1]]
    assert len(cache) == 2


def test_adapting_jobs_and_unknown_models_bypass_the_cache(files):
    load, cache = Loader(), ModelCache()
    wrapped = cached_network(load)
    with cache.active(dataclasses.replace(job(), adapt=10)):
        wrapped(files[0])
        wrapped(files[0])
    with cache.active(job()):
        wrapped("no-such-model")
    assert len(load.calls) == 3 and cache.loads == 0
