"""par_compile on a cluster: a local Ray cluster (2 CPUs) and a private redis-server, both
started here; executors whose tasks fail once, or always."""

import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import pytest

import tilejit
from tilejit import _core

SECRET = "pytest-cluster-secret-0123456789"
BAD_INDEX = 13


def axpy_program(scale, name="axpy"):
    source = f"""
void axpy(const float* A, const float* B, float* C, int n) {{
  for (int i = 0; i < n; ++i) C[i] = A[i] * {scale}.0f + B[i];
}}
"""
    return tilejit.Program(
        name, source,
        params=[tilejit.Tensor("A", "float32", ["n"]), tilejit.Tensor("B", "float32", ["n"]),
                tilejit.Tensor("C", "float32", ["n"])],
        launches=[tilejit.Launch("axpy")], language="c", out_idx=[-1])


def broken_program():
    return tilejit.Program(
        "broken", "void axpy(const float* A, float* C, int n) { C[0] = A[0] +; }\n",
        params=[tilejit.Tensor("A", "float32", ["n"]), tilejit.Tensor("C", "float32", ["n"])],
        launches=[tilejit.Launch("axpy")], language="c", out_idx=[-1])


def expect_axpy(kernel, scale, rng):
    n = int(rng.integers(100, 3000))
    a = rng.standard_normal(n, dtype=np.float32)
    b = rng.standard_normal(n, dtype=np.float32)
    np.testing.assert_allclose(kernel(a, b), a * np.float32(scale) + b, rtol=1e-6)


def unused_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_ping(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    """A redis-server on loopback for this module; the test fails when it cannot start."""
    port = unused_port()
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(tmp_path_factory.mktemp("redis"))],
        stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not redis_ping(port):
            assert server.poll() is None, "redis-server exited at start"
            assert time.monotonic() < deadline, "redis-server did not answer within 10 s"
            time.sleep(0.05)
        yield port, f"redis://127.0.0.1:{port}/0"
    finally:
        server.kill()
        server.wait(timeout=10)


@pytest.fixture(scope="module")
def ray_cluster(redis_url):
    """A local Ray cluster with 2 CPUs whose workers share the Redis tier and a disk cache of
    their own (the environment at ray.init() is theirs)."""
    import ray  # installed by scripts/test.sh; missing, the tests fail
    saved = {name: os.environ.get(name) for name in
             ("TILELANG_CACHE_DIR", "TILEJIT_REMOTE_CACHE", "TILEJIT_REMOTE_CACHE_SECRET")}
    worker_cache = tempfile.mkdtemp(prefix="tilejit-ray-worker-cache-")
    os.environ.update(TILELANG_CACHE_DIR=worker_cache, TILEJIT_REMOTE_CACHE=redis_url[1],
                      TILEJIT_REMOTE_CACHE_SECRET=SECRET)
    try:
        ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    yield ray
    ray.shutdown()
    shutil.rmtree(worker_cache, ignore_errors=True)


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    """This process's own empty disk cache."""
    monkeypatch.setenv("TILELANG_CACHE_DIR", str(tmp_path / "cache"))


def redis_entries(port):
    out = subprocess.run(["redis-cli", "-p", str(port), "--scan", "--pattern", "tilejit:entry:*"],
                         check=True, capture_output=True, text=True, timeout=30).stdout
    return [line for line in out.splitlines() if line]


def test_ray_par_compile_32_programs(ray_cluster, redis_url, fresh_cache, rng, caplog):
    scales = [100 + 3 * i for i in range(32)]
    programs = [axpy_program(s) for s in scales]
    programs[BAD_INDEX] = broken_program()
    before = _core._cache_stats()
    with caplog.at_level(logging.WARNING, logger="tilejit"):
        kernels = tilejit.par_compile(programs, cluster="ray", ignore_error=True)
    after = _core._cache_stats()
    assert len(kernels) == 32
    assert kernels[BAD_INDEX] is None
    assert "program 13 ('broken') failed" in caplog.text
    for i, (kernel, scale) in enumerate(zip(kernels, scales)):
        if i != BAD_INDEX:
            expect_axpy(kernel, scale, rng)
    # Every kernel came from the workers' archives: loaded from this process's disk cache,
    # built here not once; and the workers published every entry to Redis.
    assert after["misses"] == before["misses"]
    assert after["disk_hits"] - before["disk_hits"] == 31
    assert len(redis_entries(redis_url[0])) == 31


def test_compile_option_names_the_remote_tier(redis_url, fresh_cache, monkeypatch, rng):
    port, url = redis_url
    monkeypatch.setenv("TILEJIT_REMOTE_CACHE_SECRET", SECRET)
    monkeypatch.setenv("TILEJIT_REMOTE_CACHE", url)
    off = tilejit.compile(axpy_program(4242, name="remote_off"), remote_cache="off")
    assert f"tilejit:entry:1:{off.cache_key}" not in redis_entries(port)
    monkeypatch.delenv("TILEJIT_REMOTE_CACHE")
    on = tilejit.compile(axpy_program(4243, name="remote_on"), remote_cache=url)
    assert f"tilejit:entry:1:{on.cache_key}" in redis_entries(port)
    expect_axpy(off, 4242, rng)
    expect_axpy(on, 4243, rng)


def test_ray_failure_is_raised_without_ignore_error(ray_cluster, fresh_cache):
    with pytest.raises(tilejit.CompileError) as raised:
        tilejit.par_compile([axpy_program(7), broken_program()], cluster="ray")
    assert "expected expression" in raised.value.log


class FlakyExecutor:
    """A ThreadPoolExecutor whose first `failures` tasks fail as a lost worker would."""

    def __init__(self, failures):
        self._pool = ThreadPoolExecutor(max_workers=2)
        self._max_workers = 2
        self.failures = failures
        self.submitted = 0

    def submit(self, fn, *args):
        self.submitted += 1
        if self.submitted <= self.failures:
            future = Future()
            future.set_exception(RuntimeError("worker lost"))
            return future
        return self._pool.submit(fn, *args)


def test_executor_task_failing_once_is_retried(fresh_cache, rng, caplog):
    executor = FlakyExecutor(failures=1)
    scales = [5, 6, 7, 8]
    with caplog.at_level(logging.WARNING, logger="tilejit"):
        kernels = tilejit.par_compile([axpy_program(s) for s in scales], executor=executor,
                                      chunk_size=2)
    for kernel, scale in zip(kernels, scales):
        expect_axpy(kernel, scale, rng)
    assert executor.submitted == 3  # two chunks, one of them twice
    assert "a compile task failed (worker lost); retrying it" in caplog.text


def test_executor_task_failing_twice_is_reported_per_program(fresh_cache):
    programs = [axpy_program(s) for s in (9, 10, 11)]
    executor = FlakyExecutor(failures=100)
    assert tilejit.par_compile(programs, executor=executor, chunk_size=2,
                               ignore_error=True) == [None, None, None]
    with pytest.raises(tilejit.Error, match="task for Program 'axpy' failed twice: worker lost"):
        tilejit.par_compile(programs, executor=FlakyExecutor(failures=100))


def test_bad_cluster_arguments():
    with pytest.raises(tilejit.ArgumentError, match="cluster must be 'ray'"):
        tilejit.par_compile([axpy_program(1)], cluster="slurm")
    with pytest.raises(tilejit.ArgumentError, match="executor must have a submit"):
        tilejit.par_compile([axpy_program(1)], executor=object())
    with pytest.raises(tilejit.ArgumentError, match="not both"):
        tilejit.par_compile([axpy_program(1)], cluster="ray", executor=ThreadPoolExecutor(1))
