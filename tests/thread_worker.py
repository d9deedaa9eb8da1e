"""A real Celery worker in a thread of the test process: it takes an app's jobs from the real
Redis broker (its own queue), runs them on the test's database as `tertulia worker` would, and
acknowledges them. Under TERTULIA_TEST_STACK=scale every app the tests build has one."""

import threading

from celery.contrib.testing.worker import TestWorkController
from celery.exceptions import WorkerShutdown
from kombu.asynchronous import set_event_loop

from tertulia.jobs.celery_app import celery_app, register_job_task
from tertulia.runtime import start_worker_runtime
from tertulia.settings import Settings

STARTUP_SECONDS = 30
# A warm stop lets the job under way finish (its task is acknowledged late, so one cut short
# would be delivered again to a worker that no longer exists).
SHUTDOWN_SECONDS = 120


class ThreadWorker:
    def __init__(self, settings: Settings) -> None:
        self.queue = settings.celery_queue
        self._app = celery_app(settings)
        self._close_host = register_job_task(self._app, settings, lambda: start_worker_runtime(settings))
        self._app.finalize()
        # The solo pool runs each task in the worker's own thread, one at a time; the plain
        # WorkController (not app.Worker) leaves the test process's logging and signals alone.
        # A worker takes kombu's event loop (its hub) from a global of the process, made by the
        # first worker: each of the tests' workers needs one of its own, or two threads poll one.
        set_event_loop(None)
        self._controller = TestWorkController(
            app=self._app,
            hostname=f"{self.queue}@tests",
            pool="solo",
            concurrency=1,
            without_heartbeat=True,
            without_mingle=True,
            without_gossip=True,
        )
        self._thread = threading.Thread(target=self._work, name=f"worker {self.queue}", daemon=True)

    def _work(self) -> None:
        # The solo pool finds a task in the current app, which is per thread: this worker's.
        self._app.set_current()
        self._controller.start()

    def start(self) -> None:
        """Starts the worker and returns once it consumes its queue (blocks: run it in a thread)."""
        self._thread.start()
        if not self._controller._on_started.wait(STARTUP_SECONDS):
            raise RuntimeError(f"the Celery worker for {self.queue} did not start")

    def stop(self) -> None:
        """Stops taking tasks, lets the one under way finish, closes the job host (blocks)."""
        try:
            # Told from inside its own thread, at the top of its loop: another thread stopping
            # it would talk to Redis on connections that thread is reading from.
            self._controller.hub.call_soon(_shut_down)
            self._thread.join(SHUTDOWN_SECONDS)
            if self._thread.is_alive():
                raise RuntimeError(f"the Celery worker for {self.queue} did not stop")
        finally:
            self._close_host()
            self._app.close()


def _shut_down() -> None:
    raise WorkerShutdown(0)  # what a worker told to stop (SIGTERM) raises in its loop: a warm stop
