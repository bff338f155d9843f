"""Batch on a Dask cluster: the engine `ocr-restore batch --dask ADDRESS` runs on.

The tasks and their guarantees are the local batch's (`batch.run_batch`): a worker
writes each input's outputs atomically, its JSON last, and the client keeps
results.csv. A `WorkerPlugin` builds the pipeline once per worker process, also
in a worker the nanny restarts after it died; a task whose worker died is run
again elsewhere by Dask. Inputs and outputs must be paths every worker reaches.
"""

import contextlib
import itertools
import logging
import os
from dataclasses import dataclass
from typing import Iterator

import dask
from distributed import Client, KilledWorker, LocalCluster, WorkerPlugin, as_completed

from .batch import set_up_worker
from .errors import OcrRestoreError

__all__ = ["DaskCluster"]

LOCAL = "local"
# A LocalCluster shares the cores with the work, and Dask's defaults tax it:
# - the profiler samples every worker's stack each 10 ms, each process ticks every 20 ms and checks its memory
#   each 100 ms;
# - MALLOC_TRIM_THRESHOLD_=65536, set in this process and so in every worker and Tesseract, makes glibc hand
#   memory back at once: each image's arrays are then mapped anew, and the batch's system time went up by half.
# Together they cost a 200-line batch on 2 cores a sixth of its speed (docs/results.md). None unsets a variable.
LOCAL_CONFIG = {"distributed.worker.profile.enabled": False, "distributed.admin.tick.interval": "1s",
                "distributed.worker.memory.monitor-interval": "1s", "distributed.admin.system-monitor.interval": "2s",
                "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}


@dataclass(frozen=True)
class DaskCluster:
    """A Dask scheduler's address (`tcp://host:8786`), or `local[:N]`: a LocalCluster of N processes of one thread
    each (N defaults to the cores), for the time of the batch."""

    address: str

    def __post_init__(self):
        name, colon, count = self.address.partition(":")
        if name == LOCAL and colon and not (count.isdigit() and int(count) > 0):
            raise OcrRestoreError(f"--dask {self.address}: give local, or local:N with N processes, such as local:2")

    def map(self, function, tasks: list, initializer, options: dict) -> Iterator:
        if not tasks:
            return
        with self._connect() as (client, threads):
            if "dashboard" in client.scheduler_info().get("services", {}):
                print(f"ocr-restore: Dask dashboard at {client.dashboard_link}"
                      f"{'' if _has_bokeh() else ' (it shows the tasks once bokeh is installed)'}", flush=True)
            client.register_plugin(_SetUp(initializer, options, threads), name="ocr-restore-pipeline")
            yield from _as_finished(client, function, tasks)

    @contextlib.contextmanager
    def _connect(self):
        """A client, and the torch threads of each worker (None: each worker takes its share of its machine)."""
        name, _, count = self.address.partition(":")
        if name == LOCAL:
            workers = int(count) if count else (os.cpu_count() or 1)
            # the dashboard on a free port: two batches on one machine do not fight over 8787
            with (dask.config.set(LOCAL_CONFIG),
                  LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                               silence_logs=logging.ERROR) as cluster,
                  Client(cluster) as client):
                yield client, max(1, (os.cpu_count() or 1) // workers)
            return
        try:
            client = Client(self.address, timeout=30)
        except (OSError, TimeoutError, ValueError) as e:
            raise OcrRestoreError(f"--dask {self.address}: no Dask scheduler answers there ({e}); start one "
                                  "(`dask scheduler`, then `dask worker ADDRESS` on each machine) or give "
                                  "`--dask local`") from None
        with client:
            yield client, None


class _SetUp(WorkerPlugin):
    """Builds a worker's pipeline once, when the worker starts (or restarts) and before its first task."""

    def __init__(self, initializer, options: dict, threads: int | None):
        self.initializer, self.options, self.threads = initializer, options, threads

    def setup(self, worker):
        # a worker started by hand shares its machine with its own threads: OMP_NUM_THREADS, if set, says so
        threads = self.threads or int(os.environ.get("OMP_NUM_THREADS") or 0) or max(
            1, (os.cpu_count() or 1) // worker.state.nthreads)
        set_up_worker(threads, self.initializer, self.options)


def _has_bokeh() -> bool:
    try:
        import bokeh  # noqa: F401
    except ImportError:
        return False
    return True


def _as_finished(client: Client, function, tasks: list) -> Iterator:
    """`function` over `tasks` on the cluster, as they finish. A window of them is in flight at a time, so a
    million inputs never make a million futures."""
    window = max(64, 4 * sum(client.nthreads().values()))
    pending, task_of = iter(tasks), {}

    def submit(task):
        future = client.submit(function, task, pure=False)
        task_of[future.key] = task
        return future

    finished = as_completed([submit(task) for task in itertools.islice(pending, window)])
    for future in finished:
        task = task_of.pop(future.key)
        try:
            row = future.result()
        except KilledWorker as e:  # it killed each worker that ran it (a native crash, say): one error row
            row = task.row("error", f"{task.path}: its worker died each time it ran ({e}); run "
                                    f"`ocr-restore {task.path}` alone to see why")
        except Exception as e:  # the cluster lost it: the rerun does it
            row = task.row("error", f"{task.path}: the cluster lost it ({type(e).__name__}: {e}); run the batch "
                                    "again to do it")
        future.release()
        for task in itertools.islice(pending, 1):
            finished.add(submit(task))
        yield row
