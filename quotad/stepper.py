"""Drive a coroutine without an asyncio Task (the RADIUS hot path's per-request cost).

A Task costs an object, an entry in asyncio's weak set of all tasks and a trip through the event
loop before the coroutine even starts. A request handler usually waits once (for its Redis
reply), so :class:`Stepper` starts the coroutine at once, in the caller's stack, and resumes it
from the done-callback of each future it waits on.

It stands in for a Task where asyncio looks for one: while it runs the coroutine it is the loop's
current task (``asyncio.timeout``, which redis-py uses, needs one), and it has ``cancel``,
``uncancel`` and ``cancelling`` as a Task has. Each coroutine runs in its own copy of the context,
as a Task's does. An exception that escapes the coroutine goes to the loop's exception handler,
as an unretrieved Task exception would.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Coroutine
from typing import Any

_enter_task = asyncio.tasks._enter_task
_leave_task = asyncio.tasks._leave_task
_current_task = asyncio.current_task

_PENDING, _DONE, _CANCELLED = 0, 1, 2


class Stepper:
    """One coroutine, stepped from future callbacks; ``on_done(stepper)`` is called when it ends."""

    __slots__ = ("_cancels", "_context", "_coro", "_exception", "_loop", "_must_cancel", "_on_done", "_result",
                 "_state", "_waiter")

    def __init__(
        self,
        coro: Coroutine[Any, Any, Any],
        loop: asyncio.AbstractEventLoop,
        on_done: Callable[[Stepper], object] | None = None,
    ) -> None:
        self._coro = coro
        self._loop = loop
        self._context = contextvars.copy_context()
        self._on_done = on_done
        self._waiter: asyncio.Future[Any] | None = None
        self._state = _PENDING
        self._cancels = 0
        self._must_cancel = False
        self._result: Any = None
        self._exception: BaseException | None = None

    def start(self) -> Stepper:
        """Run the coroutine up to its first wait (or to its end); returns self."""
        self._context.run(self._step, None, None)
        return self

    # -- the Task-like surface ------------------------------------------------------------------

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def done(self) -> bool:
        return self._state != _PENDING

    def cancelled(self) -> bool:
        return self._state == _CANCELLED

    def result(self) -> Any:
        """The coroutine's return value; raises what it raised (InvalidStateError while running)."""
        if self._state == _PENDING:
            raise asyncio.InvalidStateError("coroutine still running")
        if self._exception is not None:
            raise self._exception
        return self._result

    def exception(self) -> BaseException | None:
        if self._state == _PENDING:
            raise asyncio.InvalidStateError("coroutine still running")
        return self._exception

    def cancel(self, msg: Any = None) -> bool:
        """Throw CancelledError into the coroutine at its current wait, as Task.cancel does."""
        if self._state != _PENDING:
            return False
        self._cancels += 1
        waiter = self._waiter
        if waiter is not None and waiter.cancel(msg=msg):
            return True
        self._must_cancel = True
        return True

    def cancelling(self) -> int:
        return self._cancels

    def uncancel(self) -> int:
        if self._cancels > 0:
            self._cancels -= 1
        return self._cancels

    # -- stepping -------------------------------------------------------------------------------

    def _step(self, value: Any, exc: BaseException | None) -> None:
        """Resume the coroutine once; runs inside self._context."""
        if self._must_cancel:
            self._must_cancel = False
            exc = asyncio.CancelledError()
        self._waiter = None
        loop = self._loop
        outer = _current_task(loop)  # a Task that started this stepper directly (tests do)
        if outer is not None:
            _leave_task(loop, outer)
        _enter_task(loop, self)  # type: ignore[arg-type]
        try:
            awaited = self._coro.send(value) if exc is None else self._coro.throw(exc)
        except StopIteration as stop:
            self._finish(_DONE, stop.value, None)
        except asyncio.CancelledError as cancelled:
            self._finish(_CANCELLED, None, cancelled)
        except (KeyboardInterrupt, SystemExit) as fatal:
            self._finish(_DONE, None, fatal)
            raise
        except BaseException as error:
            self._finish(_DONE, None, error)
        else:
            self._wait(awaited)
        finally:
            _leave_task(loop, self)  # type: ignore[arg-type]
            if outer is not None:
                _enter_task(loop, outer)

    def _wait(self, awaited: Any) -> None:
        blocking = getattr(awaited, "_asyncio_future_blocking", None)
        if blocking:
            if awaited.get_loop() is not self._loop:
                error = RuntimeError(f"awaited {awaited!r} is attached to a different loop")
                self._loop.call_soon(self._step, None, error, context=self._context)
                return
            awaited._asyncio_future_blocking = False
            awaited.add_done_callback(self._wakeup, context=self._context)
            self._waiter = awaited
            if self._must_cancel and awaited.cancel():
                self._must_cancel = False
        elif awaited is None:  # a bare yield (asyncio.sleep(0)): resume on the next iteration
            self._loop.call_soon(self._step, None, None, context=self._context)
        else:
            error = RuntimeError(f"coroutine yielded {awaited!r}, which is not a future")
            self._loop.call_soon(self._step, None, error, context=self._context)

    def _wakeup(self, future: asyncio.Future[Any]) -> None:
        try:
            value = future.result()
        except BaseException as exc:  # thrown into the coroutine, as a Task does
            self._step(None, exc)
        else:
            self._step(value, None)

    def _finish(self, state: int, result: Any, exception: BaseException | None) -> None:
        self._state = state
        self._result = result
        self._exception = exception
        if state == _DONE and isinstance(exception, Exception):
            self._loop.call_exception_handler(
                {"message": "unhandled exception in a stepped coroutine", "exception": exception}
            )
        if self._on_done is not None:
            self._on_done(self)


def start(
    coro: Coroutine[Any, Any, Any], on_done: Callable[[Stepper], object] | None = None
) -> Stepper:
    """Start ``coro`` now on the running loop without a Task; see :class:`Stepper`."""
    return Stepper(coro, asyncio.get_running_loop(), on_done).start()
