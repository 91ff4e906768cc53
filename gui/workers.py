"""Running engine generators in a background thread, napari-style.

An engine routine that takes long is a generator yielding small frozen records.
``TaskRunner`` runs one in superqt's thread pool and re-emits its records, its
failure or its end as signals in the GUI thread, with pause, resume and stop.
Every runner also reports to ``task_monitor()`` so the main window's status bar
can show the progress of whatever is running.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable, Generator

from PySide6.QtCore import QObject, Signal, Slot
from superqt.utils import GeneratorWorker


class TaskFailed(Exception):
    """Carries the message of an exception raised inside a task.

    superqt drops RuntimeErrors raised by a generator (it takes them for a
    deleted worker); torch reports most failures, out-of-memory included, as
    RuntimeError. Re-raising them as this type makes every failure reach the GUI.
    """

    def __init__(self, message: str, original: BaseException):
        super().__init__(message)
        self.original = original


def describe_exception(exc: BaseException) -> str:
    """A one-paragraph explanation of an exception for the user."""
    name = type(exc).__name__
    text = str(exc).strip() or name
    lowered = text.lower()
    if "out of memory" in lowered or isinstance(exc, MemoryError):
        return ("The computation ran out of memory. Use a smaller batch size or model, "
                f"or switch to the CPU.\n\nDetails: {text}")
    if isinstance(exc, FloatingPointError) or "nan" in lowered.split():
        return f"The numbers blew up (NaN or infinity). {text}"
    return f"{name}: {text}" if name not in text else text


def _guarded(func: Callable[..., Generator], *args, **kwargs) -> Generator:
    try:
        return (yield from func(*args, **kwargs))
    except GeneratorExit:
        raise
    except Exception as exc:  # every failure, RuntimeError included, must surface
        traceback.print_exc()
        raise TaskFailed(describe_exception(exc), exc) from exc


class _Worker(GeneratorWorker):
    """A GeneratorWorker whose end (normal, failed or aborted) can be waited for."""

    def __init__(self, func, *args, **kwargs):
        super().__init__(_guarded, func, *args, **kwargs)
        self.done = threading.Event()

    def work(self):
        try:
            return super().work()
        finally:
            # Run the task's clean-up (finally blocks: temp files, last checkpoint) in its own thread,
            # before `finished` is emitted, so the GUI hears "finished" only once it has happened.
            try:
                self._gen.close()
            except Exception:  # a clean-up that fails must not hide the task's own outcome
                traceback.print_exc()

    def run(self) -> None:
        try:
            super().run()
        finally:
            self.done.set()


class TaskMonitor(QObject):
    """Application-wide view of running tasks, for the status bar."""

    progress = Signal(str, float)  # task label, fraction in [0, 1] or -1 when unknown
    ended = Signal(str)  # task label


_monitor: TaskMonitor | None = None


def task_monitor() -> TaskMonitor:
    global _monitor
    if _monitor is None:
        _monitor = TaskMonitor()
    return _monitor


class TaskRunner(QObject):
    """Runs one engine generator at a time; all signals arrive in the GUI thread.

    ``record`` carries each yielded value, ``failed`` a readable message,
    ``finished`` fires once per run (after success, failure or stop) with True
    when the task ran to its end.
    """

    record = Signal(object)
    failed = Signal(str)
    finished = Signal(bool)
    state_changed = Signal(str)  # "running", "paused", "stopping", "idle"

    def __init__(self, label: str, parent: QObject | None = None, report: bool = True):
        """``report=False`` keeps short, frequent jobs (a recomputation per slider move) out of the status bar."""
        super().__init__(parent)
        self.label = label
        self.report = report
        self._worker: _Worker | None = None
        self._state = "idle"
        self._completed = False

    @property
    def state(self) -> str:
        return self._state

    def is_busy(self) -> bool:
        return self._worker is not None

    def start(self, func: Callable[..., Generator], *args, **kwargs) -> None:
        if self._worker is not None:
            raise RuntimeError(f"{self.label} is already running")
        worker = _Worker(func, *args, **kwargs)
        worker.yielded.connect(self._on_record)
        worker.errored.connect(self._on_error)
        worker.returned.connect(self._on_returned)
        worker.paused.connect(self._on_paused)
        worker.resumed.connect(self._on_resumed)
        worker.finished.connect(self._on_finished)
        self._worker = worker
        self._completed = False
        self._set_state("running")
        if self.report:
            task_monitor().progress.emit(self.label, -1.0)
        worker.start()

    def pause(self) -> None:
        if self._worker is not None:
            self._worker.pause()

    def resume(self) -> None:
        if self._worker is not None:
            self._worker.resume()

    def toggle_pause(self) -> None:
        if self._worker is not None:
            self._worker.toggle_pause()

    def stop(self) -> None:
        """Ask the task to end after its current step (it yields often, so soon)."""
        if self._worker is not None:
            self._worker.quit()
            self._worker.resume()
            self._set_state("stopping")

    def wait(self, timeout_s: float = 10.0) -> bool:
        """Block until the thread has left the task (used on close); True if it has."""
        worker = self._worker
        return worker is None or worker.done.wait(timeout_s)

    def shutdown(self, timeout_s: float = 10.0) -> bool:
        self.stop()
        return self.wait(timeout_s)

    def _set_state(self, state: str) -> None:
        self._state = state
        self.state_changed.emit(state)

    @Slot(object)
    def _on_record(self, value) -> None:
        fraction = getattr(value, "fraction", None)
        if self.report and isinstance(fraction, float | int):
            task_monitor().progress.emit(self.label, float(fraction))
        self.record.emit(value)

    @Slot(object)
    def _on_returned(self, _value) -> None:
        self._completed = True

    @Slot(object)
    def _on_error(self, exc) -> None:
        self.failed.emit(str(exc) if isinstance(exc, TaskFailed) else describe_exception(exc))

    @Slot()
    def _on_paused(self) -> None:
        self._set_state("paused")

    @Slot()
    def _on_resumed(self) -> None:
        self._set_state("running")

    @Slot()
    def _on_finished(self) -> None:
        self._worker = None
        self._set_state("idle")
        if self.report:
            task_monitor().ended.emit(self.label)
        self.finished.emit(self._completed)
