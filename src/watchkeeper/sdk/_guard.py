"""`guard()`: a deadline, retries, fallbacks and a circuit breaker around a call.

The deadline holds end to end: every attempt gets only the time left, backoff never sleeps past
it. Async calls are cancelled at the deadline, as by `asyncio.timeout` but with one timer per
event loop (`_deadlines`). A sync call cannot be interrupted, only abandoned, and handing it to
a thread costs tens of microseconds, so `sync_mode` chooses:

* ``"thread"``: always run on a bounded worker pool; the caller stops waiting at the deadline
  (the call itself runs on until it returns, then its result is dropped). The pool has 32
  daemon threads and 64 queue slots; when abandoned calls fill it, calls are refused at once
  (`CircuitOpen`, outcome rejected, fallbacks still answer) instead of queueing without bound.
* ``"inline"``: run in the caller's thread; a late answer is detected when it returns and
  counted as a timeout (the caller was held up: the deadline is not enforced).
* ``"auto"`` (default): inline while the guard's calls stay well inside the deadline, and on a
  worker thread for a while (60 s) after any call took over half of it or timed out. Fast calls
  pay no thread hop. A watchdog thread notices an inline call still running at its deadline:
  it fires `on_timeout` then and there and switches the guard to worker threads at once, so a
  dependency that starts hanging holds up only the calls already in flight (they return late,
  counted as timeouts); every later call is cut at the deadline.

Spans: a call whose first attempt answers makes one span, "guard NAME", which stands for that
attempt; the callee's spans nest directly under it. `watchkeeper.guard.attempts` says how many
attempts were made when that is not one (a retry, or none for a call the breaker refused). Only
a retry adds attempt spans ("guard NAME attempt", children of the guard span,
`watchkeeper.guard.attempt` = 1..n): attempt 1's span is recorded after the fact, with the times
it ran, once it failed and a retry is coming, while its callee's spans stay under the guard
span; attempts 2..n are current while they run, so their callee's spans nest under them. An
attempt 1 that fails with no retry after it leaves its exception on the guard span.

Guard logic works before `init()` too; only its spans and metrics wait for `init()`.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from contextvars import ContextVar
from types import TracebackType
from typing import Any, TypeVar, cast

from watchkeeper.errors import CircuitOpen, ConfigError, GuardTimeout
from watchkeeper.sdk._breaker import BREAKERS, Breaker
from watchkeeper.sdk._deadlines import Watch
from watchkeeper.sdk._deadlines import watch as watch_deadline
from watchkeeper.sdk._guard_run import (
    SUSPECT_HOLD_S,
    GuardCall,
    GuardEvent,
    GuardPolicy,
    RetryOn,
    fallback_values,
)
from watchkeeper.sdk._span import NOOP, ObservedSpan
from watchkeeper.sdk._watchdog import WATCHDOG
from watchkeeper.sdk._workers import WORKERS, Workers

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["Breaker", "CircuitOpen", "GuardEvent", "GuardTimeout", "guard"]


def _invoke_sync(
    call: GuardCall,
    workers: Workers,
    fn: Callable[..., Any],
    args: Any,
    kwargs: Any,
    left: float,
) -> Any:
    """One sync attempt within `left` seconds (see the module docstring for the modes)."""
    policy = call.p
    clock, health = policy.clock, policy.health
    start = call.end_at - left  # the clock's reading when the attempt was given `left`
    threaded = policy.threads_always or (policy.threads_if_suspect and start < health.suspect_until)
    watched = not threaded and policy.watchable
    try:
        if threaded:
            return workers.call(fn, args, kwargs, left)
        if watched:
            WATCHDOG.enter(call)
        result = fn(*args, **kwargs)
    except GuardTimeout:
        health.suspect_until = clock() + SUSPECT_HOLD_S
        raise
    finally:
        if watched:
            WATCHDOG.leave(call)
        now = clock()
        if now - start > policy.half_deadline:
            health.suspect_until = now + SUSPECT_HOLD_S
    # Late is past the call's deadline, as for the watchdog: `left` was measured before the
    # attempt began, so `now - start > left` missed answers just after the deadline.
    if now > call.end_at:
        raise GuardTimeout(f"answered after the deadline ({now - start:.3f}s > {left:.3f}s)")
    return result


def run_sync(
    policy: GuardPolicy, workers: Workers, fn: Callable[..., Any], args: Any, kwargs: Any
) -> Any:
    """Call `fn` under the guard's policy (sync)."""
    call = GuardCall(policy)
    try:
        if call.admit():
            while (attempt := call.next_attempt()) is not None:
                obs, left = attempt
                try:
                    result = _invoke_sync(call, workers, fn, args, kwargs, left)
                except BaseException as exc:
                    if not isinstance(exc, Exception):  # interrupted: end the attempt, go up
                        obs.end(exc)
                        raise
                    delay = call.attempt_failed(obs, exc)
                    if delay is None:
                        break
                    policy.sleep(delay)
                    continue
                return call.succeeded(obs, result)
        for label, fb in fallback_values(policy.fallbacks):
            try:
                value = fb(*args, **kwargs) if callable(fb) else fb
            except Exception as exc:
                call.fallback_failed(label, exc)
                continue
            return call.fell_back(label, value)
        raise call.failed()
    except BaseException as exc:
        call.abort(exc)
        raise


def async_guarded(
    policy: GuardPolicy, fn: Callable[..., Awaitable[Any]]
) -> Callable[..., Coroutine[Any, Any, Any]]:
    """The coroutine function `fn` under the guard's policy (its body is the wrapper's own:
    one coroutine per call, not a wrapper awaiting another)."""

    async def guarded(*args: Any, **kwargs: Any) -> Any:
        call = GuardCall(policy)
        try:
            if call.admit():
                while (attempt := call.next_attempt()) is not None:
                    obs, left = attempt
                    deadline = watch_deadline(left)  # cancels the task when `left` has passed
                    try:
                        result = await fn(*args, **kwargs)
                    except BaseException as exc:
                        # Our deadline cancelled it, and nobody else asked to: a timeout.
                        if deadline.end() and isinstance(exc, asyncio.CancelledError):
                            exc = GuardTimeout(f"no answer within {left:.3f}s")
                        elif not isinstance(exc, Exception):  # cancelled from outside: end, go up
                            obs.end(exc)
                            raise
                        delay = call.attempt_failed(obs, exc)
                        if delay is None:
                            break
                        await asyncio.sleep(delay)
                        continue
                    deadline.end()
                    return call.succeeded(obs, result)
            for label, fb in fallback_values(policy.fallbacks):
                try:
                    value = fb(*args, **kwargs) if callable(fb) else fb
                    if inspect.isawaitable(value):
                        value = await value
                except Exception as exc:
                    call.fallback_failed(label, exc)
                    continue
                return call.fell_back(label, value)
            raise call.failed()
        except BaseException as exc:
            call.abort(exc)
            raise

    return guarded


class GuardBlock:
    """What `with guard(...) as g:` yields: set `g.result`; a fallback replaces it on failure.

    A block runs once (it cannot be retried) and its fallbacks are called without arguments.
    An open breaker makes `with` raise `CircuitOpen` before the block runs.
    """

    __slots__ = ("_call", "_deadline", "attempt", "outcome", "result")

    def __init__(self, call: GuardCall, attempt: ObservedSpan) -> None:
        self._call = call
        self._deadline: Watch | None = None  # `async with` only
        self.attempt = attempt  # the no-op handle: a block's one attempt is the guard span
        self.result: Any = None
        self.outcome: str | None = None


_BLOCKS: ContextVar[tuple[tuple[int, GuardBlock], ...]] = ContextVar(
    "watchkeeper_guard_blocks", default=()
)


class guard:  # lower case: used like a function, `@guard("llm", deadline=5)`
    """Decorator (sync and async) and context manager enforcing a deadline with fallbacks."""

    __slots__ = ("_policy", "_workers")

    def __init__(
        self,
        name: str,
        *,
        deadline: float = 8.0,
        retries: int = 2,
        retry_on: RetryOn = None,
        backoff: float = 0.2,
        fallbacks: Sequence[Callable[..., Any] | Any] = (),
        breaker: Breaker | bool | None = True,
        on_timeout: Callable[[GuardEvent], None] | None = None,
        on_fallback: Callable[[GuardEvent], None] | None = None,
        sync_mode: str = "auto",
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] | None = None,
        rng: Callable[[], float] | None = None,
        workers: Workers | None = None,
    ) -> None:
        chosen = BREAKERS.get(name) if breaker is True else breaker or None
        extra: dict[str, Any] = {}
        if clock is not None:
            extra["clock"] = clock
        if sleep is not None:
            extra["sleep"] = sleep
        if rng is not None:
            extra["rng"] = rng
        self._policy = GuardPolicy(
            name=name,
            deadline=deadline,
            retries=retries,
            retry_on=retry_on,
            backoff=backoff,
            fallbacks=tuple(fallbacks),
            breaker=chosen,
            on_timeout=on_timeout,
            on_fallback=on_fallback,
            sync_mode=sync_mode,
            **extra,
        )
        self._workers = workers or WORKERS

    @property
    def policy(self) -> GuardPolicy:
        """The guard's validated settings."""
        return self._policy

    def __call__(self, fn: F) -> F:
        """Wrap `fn` (sync or async) so every call goes through the guard."""
        policy, workers = self._policy, self._workers
        if inspect.iscoroutinefunction(fn):
            return cast(F, functools.wraps(fn)(async_guarded(policy, fn)))

        for fb in policy.fallbacks:
            if inspect.iscoroutinefunction(fb):
                raise ConfigError(
                    f"guard {policy.name!r}: fallback {fb.__qualname__} is async but "
                    f"{fn.__qualname__} is sync; give a sync fallback (or guard an async function)"
                )

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return run_sync(policy, workers, fn, args, kwargs)

        return cast(F, wrapper)

    def call(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Call sync `fn(*args, **kwargs)` through the guard."""
        return run_sync(self._policy, self._workers, fn, args, kwargs)

    async def acall(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Call async `fn(*args, **kwargs)` through the guard."""
        return await async_guarded(self._policy, fn)(*args, **kwargs)

    # --- block form: one attempt (a block cannot be re-run), fallbacks give `g.result` --------
    def _enter(self) -> GuardBlock:
        call = GuardCall(self._policy)
        if not call.admit():
            exc = call.failed()
            raise exc
        attempt = call.next_attempt()  # None only for a deadline too short to start in
        block = GuardBlock(call, attempt[0] if attempt is not None else NOOP)
        _BLOCKS.set((*_BLOCKS.get(), (id(self), block)))
        return block

    def _pop(self) -> GuardBlock:
        stack = _BLOCKS.get()
        for i in range(len(stack) - 1, -1, -1):
            if stack[i][0] == id(self):
                _BLOCKS.set(stack[:i] + stack[i + 1 :])
                return stack[i][1]
        raise RuntimeError("guard block exited without being entered")

    def _exit(
        self, block: GuardBlock, exc: BaseException | None, original: BaseException | None
    ) -> bool:
        """Settle a block: `exc` is what it failed with, `original` what Python handed us."""
        call = block._call
        if exc is not None and not isinstance(exc, Exception):
            block.attempt.end(exc)
            call.abort(exc)
            return False
        if exc is None and call.remaining() < 0:
            exc = GuardTimeout(f"guard {self._policy.name!r}: block overran its deadline")
        if exc is None:
            call.succeeded(block.attempt, None)
            block.outcome = "success"
            return False
        call.attempt_failed(block.attempt, exc, can_retry=False)
        for label, fb in fallback_values(self._policy.fallbacks):
            try:
                block.result = fb() if callable(fb) else fb
            except Exception as failure:
                call.fallback_failed(label, failure)
                continue
            call.fell_back(label, block.result)
            block.outcome = "fallback"
            return True  # the fallback answered: the block's exception is handled
        error = call.failed()
        block.outcome = "rejected" if call.rejected else "timeout" if call.timed_out else "error"
        if error is original:
            return False
        raise error from original

    def __enter__(self) -> GuardBlock:
        return self._enter()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        return self._exit(self._pop(), exc, exc)

    async def __aenter__(self) -> GuardBlock:
        block = self._enter()
        block._deadline = watch_deadline(block._call.remaining())
        return block

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        block = self._pop()
        original = exc
        expired = block._deadline is not None and block._deadline.end()
        if expired and isinstance(exc, asyncio.CancelledError):
            exc = GuardTimeout(f"guard {self._policy.name!r}: block overran its deadline")
        return self._exit(block, exc, original)
