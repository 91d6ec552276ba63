"""Ctrl-C during a native solver call: stop the search, keep the best answer, say so.

A Python signal handler runs only when the main thread executes Python code, never while it
waits inside a native solver (CP-SAT's ``solve``). :class:`SolveInterrupt` therefore also
registers a wake-up file descriptor (:func:`signal.set_wakeup_fd`): the interpreter's C-level
handler writes the signal number to it at once, and a watcher thread then asks the active
solver to stop (``stop_search``, which is thread-safe). The solver returns its best solution
and the caller reports it as *interrupted* instead of as a finished (or optimal) answer.

Outside a native call (building the model, a heuristic in Python), Ctrl-C raises
:class:`KeyboardInterrupt` as usual, with :attr:`SolveInterrupt.interrupted` set, so the caller
can tell its own interrupt from others. Only active in the main thread (elsewhere signals are
not delivered to Python); there it does nothing and the default behaviour is kept.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
from typing import Any

__all__ = ["SolveInterrupt"]


class SolveInterrupt:
    """Context manager: route SIGINT to ``stop()`` of the solver set with :meth:`solving`."""

    def __init__(self) -> None:
        self.interrupted = False
        self._lock = threading.Lock()
        self._stop: Any = None  # the active solver's stop function
        self._active = False

    # -- the signal ---------------------------------------------------------------------------
    def _trip(self) -> bool:
        """Record the interrupt; stop the active solver. True if one was running."""
        with self._lock:
            self.interrupted = True
            stop = self._stop
        if stop is not None:
            with contextlib.suppress(Exception):
                stop()
            return True
        return False

    def _handler(self, signum: int, frame: Any) -> None:
        # runs in the main thread between Python bytecodes: no native solve is in progress
        # (or it has just returned, stopped by the watcher)
        if not self._trip():
            raise KeyboardInterrupt

    def _watch(self, sock: socket.socket) -> None:
        while True:
            try:
                data = sock.recv(64)
            except OSError:
                return
            if not data:  # closed by __exit__
                return
            if signal.SIGINT in data:
                with self._lock:
                    stop = self._stop
                if stop is not None:
                    self._trip()

    # -- the solver ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def solving(self, stop: Any) -> Any:
        """While the body runs, SIGINT calls ``stop()`` (e.g. ``CpSolver.stop_search``)."""
        with self._lock:
            self._stop = stop
        try:
            yield
        finally:
            with self._lock:
                self._stop = None

    # -- context ------------------------------------------------------------------------------
    def __enter__(self) -> SolveInterrupt:
        if threading.current_thread() is not threading.main_thread():
            return self
        try:
            self._old_handler = signal.signal(signal.SIGINT, self._handler)
        except (ValueError, OSError):  # pragma: no cover - embedded interpreters
            return self
        self._reader, self._writer = socket.socketpair()
        self._writer.setblocking(False)
        try:
            self._old_fd = signal.set_wakeup_fd(self._writer.fileno(), warn_on_full_buffer=False)
        except (ValueError, OSError):  # pragma: no cover
            self._old_fd = None
        self._thread = threading.Thread(
            target=self._watch, args=(self._reader,), name="frugalml-sigint", daemon=True
        )
        self._thread.start()
        self._active = True
        return self

    def __exit__(self, *exc: Any) -> None:
        if not self._active:
            return
        self._active = False
        if self._old_fd is not None:
            with contextlib.suppress(ValueError, OSError):
                signal.set_wakeup_fd(self._old_fd)
        signal.signal(signal.SIGINT, self._old_handler)
        with contextlib.suppress(OSError):
            self._writer.close()
        with contextlib.suppress(OSError):
            self._reader.shutdown(socket.SHUT_RDWR)
        self._thread.join(1.0)
        with contextlib.suppress(OSError):
            self._reader.close()
