"""`guard()`: a deadline, retries, fallbacks and a circuit breaker around a call.

The deadline holds end to end: every attempt gets only the time left, backoff never sleeps past
it. Async calls are cancelled at the deadline, as by `asyncio.timeout` but with one timer per
event loop (`_deadlines`). A sync call cannot be interrupted, only abandoned, so `sync_mode`
chooses:

* ``"thread"`` (default): every call runs on a bounded pool of worker threads (`_workers`) and
  the caller waits at most until the deadline: the first call that hangs is answered on time
  too (timeout, or a fallback). The hung call runs on until it returns, its result dropped, its
  thread counted as abandoned; when every thread is busy, a call is refused at once (outcome
  rejected, fallbacks still answer) instead of waiting for a thread past its deadline. The hop
  to a thread costs tens of microseconds a call.
* ``"inline"``: opt-in, for callers who accept the risk: the call runs in the caller's thread,
  so a hang holds the caller for as long as it lasts. A late answer is counted as a timeout
  when it returns, and a watchdog thread fires `on_timeout` at the deadline of a call still
  running.

``"auto"``, the former default (inline until a call came close to its deadline), reads as
``"thread"``.

Settings can be overridden per guard name by the operator, from the environment or a config
file read at `init()` (`_guard_config`); the settings in force are on every guard span.

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
import dataclasses
import functools
import inspect
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from contextvars import ContextVar
from types import TracebackType
from typing import Any, TypeVar, cast

from watchkeeper.errors import CircuitOpen, ConfigError, GuardTimeout
from watchkeeper.sdk._breaker import BREAKERS, Breaker
from watchkeeper.sdk._deadlines import Watch
from watchkeeper.sdk._deadlines import watch as watch_deadline
from watchkeeper.sdk._guard_config import GUARDS, warn
from watchkeeper.sdk._guard_run import (
    GuardCall,
    GuardEvent,
    GuardPolicy,
    Health,
    RetryOn,
    fallback_values,
)
from watchkeeper.sdk._span import NOOP, ObservedSpan
from watchkeeper.sdk._watchdog import WATCHDOG
from watchkeeper.sdk._workers import Workers

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["Breaker", "CircuitOpen", "GuardEvent", "GuardTimeout", "guard"]


def _invoke_inline(
    call: GuardCall, fn: Callable[..., Any], args: Any, kwargs: Any, left: float
) -> Any:
    """One attempt in the caller's thread (`sync_mode="inline"`), watched when on real time."""
    policy = call.p
    watched = policy.watchable
    if watched:
        WATCHDOG.enter(call)
    try:
        result = fn(*args, **kwargs)
    finally:
        if watched:
            WATCHDOG.leave(call)
    # Late is past the call's deadline, as for the watchdog: `left` was measured before the
    # attempt began, so comparing the attempt's time with it missed answers just after.
    now = policy.clock()
    if now > call.end_at:
        taken = now - (call.end_at - left)
        raise GuardTimeout(f"answered after the deadline ({taken:.3f}s > {left:.3f}s)")
    return result


def run_sync(policy: GuardPolicy, fn: Callable[..., Any], args: Any, kwargs: Any) -> Any:
    """Call `fn` under the guard's policy (sync)."""
    call = GuardCall(policy)
    try:
        if call.admit():
            while (attempt := call.next_attempt()) is not None:
                obs, left = attempt
                try:
                    if policy.threaded:
                        result = policy.workers.call(fn, args, kwargs, left, policy.name)
                    else:
                        result = _invoke_inline(call, fn, args, kwargs, left)
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
    holder: guard, fn: Callable[..., Awaitable[Any]]
) -> Callable[..., Coroutine[Any, Any, Any]]:
    """The coroutine function `fn` under the guard's policy in force at each call (its body is
    the wrapper's own: one coroutine per call, not a wrapper awaiting another)."""

    async def guarded(*args: Any, **kwargs: Any) -> Any:
        policy = holder._policy
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
    """Decorator (sync and async) and context manager enforcing a deadline with fallbacks.

    `deadline`, `retries`, `backoff` and the breaker's thresholds are the code's settings: an
    operator's overrides for this name (see `_guard_config`) replace them from `init()` on.
    """

    __slots__ = ("__weakref__", "_base", "_policy")

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
        sync_mode: str = "thread",
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] | None = None,
        rng: Callable[[], float] | None = None,
        workers: Workers | None = None,
    ) -> None:
        chosen = BREAKERS.get(name) if breaker is True else breaker or None
        extra: dict[str, Any] = {}
        for key, value in (("clock", clock), ("sleep", sleep), ("rng", rng), ("workers", workers)):
            if value is not None:
                extra[key] = value
        self._base = self._policy = GuardPolicy(
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
        GUARDS.add(self)

    @property
    def name(self) -> str:
        """The guard's name (its breaker, metrics and overrides are per name)."""
        return self._base.name

    @property
    def policy(self) -> GuardPolicy:
        """The settings in force: the code's, with the operator's overrides over them."""
        return self._policy

    def configure(self, settings: Mapping[str, float]) -> None:
        """Run on the code's settings with `settings` (an operator's overrides) over them.

        Calls in flight finish on the policy they started with; the next ones take the new.
        """
        base = self._base
        breaker_settings = {
            k.removeprefix("breaker."): v for k, v in settings.items() if k.startswith("breaker.")
        }
        overridden = [k for k in settings if not k.startswith("breaker.")]
        if base.breaker is not None:
            base.breaker.configure(
                failure_threshold=_int_or_none(breaker_settings.get("failure_threshold")),
                reset_timeout=breaker_settings.get("reset_timeout"),
                half_open_max_calls=_int_or_none(breaker_settings.get("half_open_max_calls")),
            )
            overridden += [f"breaker.{k}" for k in breaker_settings]
        elif breaker_settings:
            warn(f"guard {base.name!r} has no breaker (breaker=False): breaker settings ignored")
        self._policy = dataclasses.replace(
            base,
            deadline=settings.get("deadline", base.deadline),
            retries=int(settings.get("retries", base.retries)),
            backoff=settings.get("backoff", base.backoff),
            overridden=tuple(sorted(overridden)),
            health=Health(),  # its telemetry carries the settings: built again
        )

    def __call__(self, fn: F) -> F:
        """Wrap `fn` (sync or async) so every call goes through the guard."""
        if inspect.iscoroutinefunction(fn):
            return cast(F, functools.wraps(fn)(async_guarded(self, fn)))

        for fb in self._base.fallbacks:
            if inspect.iscoroutinefunction(fb):
                raise ConfigError(
                    f"guard {self.name!r}: fallback {fb.__qualname__} is async but "
                    f"{fn.__qualname__} is sync; give a sync fallback (or guard an async function)"
                )

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return run_sync(self._policy, fn, args, kwargs)

        return cast(F, wrapper)

    def call(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Call sync `fn(*args, **kwargs)` through the guard."""
        return run_sync(self._policy, fn, args, kwargs)

    async def acall(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Call async `fn(*args, **kwargs)` through the guard."""
        return await async_guarded(self, fn)(*args, **kwargs)

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


def _int_or_none(value: float | None) -> int | None:
    return None if value is None else int(value)
