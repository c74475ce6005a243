"""How often a sign-in may be tried: backoff per client address and per account.

After `free` failures, each further attempt from the same key must wait a delay that
doubles with every failure, up to a cap. Two keys are kept, with different caps:

- the client address: the attacker's own; its delay grows to `address_cap_s` (15 min);
- the account: an attacker spreading guesses over many addresses; its delay is capped
  short (`account_cap_s`, 1 min), so someone who knows a username can slow its owner down
  but never lock them out for long, and a success resets it.

The account key counts names that do not exist exactly as names that do, so a refusal
tells nothing about who has an account. State is in this process's memory (per replica),
bounded: the oldest keys are dropped past `max_keys`. A pure object over a clock; the
tests drive it with a fake one.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _Failures:
    count: int
    last: float


@dataclass(frozen=True, slots=True)
class Limits:
    """Failures allowed before backoff, the first delay and the caps (seconds)."""

    free: int = 5
    first_delay_s: float = 1.0
    address_cap_s: float = 900.0
    account_cap_s: float = 60.0
    #: A key forgets its failures after this long without one.
    forget_after_s: float = 3600.0
    max_keys: int = 100_000


class LoginThrottle:
    """Says how long an attempt must wait; counts failures; forgets on success."""

    def __init__(self, limits: Limits = Limits(), clock: Callable[[], float] = time.monotonic):
        self.limits = limits
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: OrderedDict[str, _Failures] = OrderedDict()

    def wait_s(self, account: str, address: str) -> float:
        """Seconds before an attempt for `account` from `address` may be made (0: now)."""
        now = self._clock()
        with self._lock:
            return max(
                self._wait(f"addr:{address}", self.limits.address_cap_s, now),
                self._wait(f"acct:{account}", self.limits.account_cap_s, now),
            )

    def failed(self, account: str, address: str) -> None:
        """Count a failed attempt against both keys."""
        now = self._clock()
        with self._lock:
            for key in (f"addr:{address}", f"acct:{account}"):
                old = self._keys.pop(key, None)
                fresh = old is None or now - old.last >= self.limits.forget_after_s
                self._keys[key] = _Failures(1 if fresh or old is None else old.count + 1, now)
            while len(self._keys) > self.limits.max_keys:
                self._keys.popitem(last=False)

    def succeeded(self, account: str) -> None:
        """Forget the account's failures. The address keeps its own: an attacker who holds
        one account must not wipe the count of their guesses at others by signing in."""
        with self._lock:
            self._keys.pop(f"acct:{account}", None)

    def _wait(self, key: str, cap: float, now: float) -> float:
        failures = self._keys.get(key)
        if failures is None or failures.count < self.limits.free:
            return 0.0
        if now - failures.last >= self.limits.forget_after_s:
            return 0.0
        over = failures.count - self.limits.free
        delay = min(cap, self.limits.first_delay_s * 2.0 ** min(over, 40))
        return max(0.0, failures.last + delay - now)
