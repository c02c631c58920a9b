"""Several worker processes of one service on one listening socket (WEB_CONCURRENCY).

The parent binds the socket, forks the workers and only supervises them: a stop signal is
passed on to every worker once, so each drains and stops as a single process does
(shop_common.shutdown); a worker that dies is replaced; one that cannot start stops them
all. Workers sit in a process group of their own (a Ctrl-C reaches the parent, which
passes it on once: two signals would cut the drain short) and the kernel sends them
SIGTERM when the parent dies, even by SIGKILL. Metrics add up across workers through
prometheus_client's multiprocess mode (PROMETHEUS_MULTIPROC_DIR, one fresh directory per
parent). docs/decisions/service-workers.md has the measurements and the alternatives.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shutil
import signal
import socket
import tempfile
from types import FrameType

import uvicorn
from uvicorn.config import STARTUP_FAILURE

from shop_common.shutdown import DrainingServer

logger = logging.getLogger(__name__)
MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
_PR_SET_PDEATHSIG = 1


def serve_workers(config: uvicorn.Config, *, workers: int, drain_seconds: float) -> int:
    """Run `workers` processes of the app on the socket `config` describes until a stop
    signal; the exit status (0 after a stop, 1 when a worker could not start)."""
    if not isinstance(config.app, str):
        # An app built before the fork would have made its metrics with their values in
        # this process's memory, not in the shared files: each worker builds its own.
        raise TypeError("several workers need the app as an import path (a factory)")
    directory = tempfile.mkdtemp(prefix="shop-metrics-")
    # Set before the fork: the workers' prometheus_client keeps its values in files there.
    os.environ[MULTIPROC_DIR] = directory
    listener = config.bind_socket()
    try:
        return Supervisor(config, listener, workers=workers, drain_seconds=drain_seconds).run()
    finally:
        listener.close()
        shutil.rmtree(directory, ignore_errors=True)
        del os.environ[MULTIPROC_DIR]


class Supervisor:
    """The parent: forks the workers, passes stop signals on, replaces dead workers."""

    def __init__(
        self,
        config: uvicorn.Config,
        listener: socket.socket,
        *,
        workers: int,
        drain_seconds: float,
    ) -> None:
        self.config = config
        self.listener = listener
        self.workers = workers
        self.drain_seconds = drain_seconds
        self.children: set[int] = set()
        self.stopping = False
        self.failed = False

    def run(self) -> int:
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._stop)
        for _ in range(self.workers):
            self._fork()
        logger.info("%d workers started", self.workers, extra={"workers": sorted(self.children)})
        while self.children:
            # A signal runs _stop between retries of waitpid (PEP 475), so it is passed on
            # at once while this waits.
            pid, status = os.waitpid(-1, 0)
            if pid not in self.children:
                continue
            self.children.discard(pid)
            _forget_worker(pid)
            if self.stopping:
                continue
            code = os.waitstatus_to_exitcode(status)
            if code == STARTUP_FAILURE:
                # The app cannot start (settings, database schema): every replacement
                # would fail the same way, so the service stops, as one process would.
                logger.error("worker %d could not start; stopping the others", pid)
                self.failed = True
                self._stop(signal.SIGTERM, None)
                continue
            logger.error("worker %d exited (%s); starting another", pid, code)
            self._fork()
        logger.info("all workers stopped")
        return 1 if self.failed else 0

    def _stop(self, _signum: int, _frame: FrameType | None) -> None:
        """Pass the signal on as SIGTERM: the first starts every worker's drain, a second
        cuts it short, as for one process."""
        self.stopping = True
        for pid in self.children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    def _fork(self) -> None:
        parent = os.getpid()
        # Stop signals wait until the child has its own handlers (the parent's _stop run
        # in a child would signal its siblings) and the parent knows the child's pid.
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            pid = os.fork()
        except BaseException:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
            raise
        if pid:
            self.children.add(pid)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
            return
        code = 1
        try:  # the child never returns into the parent's stack (its finally would run twice)
            code = run_worker(self.config, self.listener, self.drain_seconds, parent=parent)
        except BaseException:
            logger.exception("worker failed")
        finally:
            logging.shutdown()
            os._exit(code)


def run_worker(
    config: uvicorn.Config, listener: socket.socket, drain_seconds: float, *, parent: int
) -> int:
    """One worker, in the forked child: serve on the shared socket until stopped."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_DFL)  # the parent's handlers came with the fork
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    os.setpgid(0, 0)
    die_with_parent()
    if os.getppid() != parent:  # the parent died before the line above took effect
        return 0
    return serve_worker(config, listener, drain_seconds)


def serve_worker(config: uvicorn.Config, listener: socket.socket, drain_seconds: float) -> int:
    """Serve on the shared socket until stopped: 0, or STARTUP_FAILURE if it never served."""
    # The parent may have imported prometheus_client before the directory was set: the
    # metrics this worker makes must keep their values in the shared files.
    from prometheus_client import values

    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
    server = DrainingServer(config, drain_seconds=drain_seconds)
    try:
        server.run(sockets=[listener])
    except (Exception, SystemExit):
        if server.started:
            raise
        # The factory raised, or uvicorn exited: this worker never served, and a
        # replacement would fail the same way.
        logger.exception("worker could not start")
    return 0 if server.started else STARTUP_FAILURE


def die_with_parent() -> None:
    """Ask Linux to SIGTERM this process when its parent dies (no orphaned workers); a
    no-op where prctl does not exist."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _forget_worker(pid: int) -> None:
    """Drop a stopped worker's live gauges (requests in flight, pool connections); its
    counters stay in the totals, as the requests it served did happen."""
    directory = os.environ.get(MULTIPROC_DIR)
    if directory:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]
