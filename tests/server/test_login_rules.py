"""The rules behind signing in, as tables: passwords, the throttle's backoff over a fake
clock, and sessions' idle and absolute expiry (a real SQLite metadata DB, a fake clock)."""

from __future__ import annotations

import pytest

from watchkeeper.errors import ValidationError
from watchkeeper.server._login_throttle import Limits, LoginThrottle
from watchkeeper.server._passwords import check_password, hash_password, verify_password
from watchkeeper.server._sessions import Sessions
from watchkeeper.store.meta import MetaStore


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("short pass", "too short"),
        ("x" * 257, "too long"),
        ("my name is carol, ok", "username"),
        ("Password1234", "easy to guess"),
        ("aaaaaaaaaaaaaaaa", "easy to guess"),
        ("correct horse battery", None),
    ],
)
def test_password_rules(password: str, problem: str | None) -> None:
    if problem is None:
        assert check_password(password, "carol") == password
    else:
        with pytest.raises(ValidationError, match=problem):
            check_password(password, "carol")


def test_hashes_are_argon2id_salted_and_verify() -> None:
    one, two = hash_password("correct horse battery"), hash_password("correct horse battery")
    assert one.startswith("$argon2id$") and one != two
    assert verify_password(one, "correct horse battery")
    assert not verify_password(one, "correct horse batterY")
    assert not verify_password(None, "correct horse battery")  # no account: a dummy hash
    assert not verify_password("not a hash", "correct horse battery")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


LIMITS = Limits(free=3, first_delay_s=1.0, address_cap_s=900.0, account_cap_s=60.0)


def test_backoff_doubles_per_failure_up_to_each_cap() -> None:
    clock = Clock()
    throttle = LoginThrottle(LIMITS, clock)
    waits = []
    for _ in range(16):
        waits.append(throttle.wait_s("tom", "10.0.0.1"))
        throttle.failed("tom", "10.0.0.1")
    assert waits[:4] == [0, 0, 0, 1.0] and waits[4:8] == [2.0, 4.0, 8.0, 16.0]
    assert waits[-1] == 900.0  # the address's cap
    # From a new address the account alone waits at most its own short cap.
    assert throttle.wait_s("tom", "10.9.9.9") == 60.0


def test_an_attacker_cannot_lock_a_person_out_for_long() -> None:
    clock = Clock()
    throttle = LoginThrottle(LIMITS, clock)
    for i in range(1000):  # a thousand guesses from a thousand addresses
        throttle.failed("tom", f"10.0.{i // 250}.{i % 250}")
    assert throttle.wait_s("tom", "192.168.1.5") == 60.0
    clock.now += 60
    assert throttle.wait_s("tom", "192.168.1.5") == 0.0
    throttle.succeeded("tom")
    throttle.failed("tom", "192.168.1.5")
    assert throttle.wait_s("tom", "192.168.1.5") == 0.0  # a success forgot the account's count


def test_a_success_does_not_wipe_the_address_count() -> None:
    clock = Clock()
    throttle = LoginThrottle(LIMITS, clock)
    for name in ("a", "b", "c", "d"):
        throttle.failed(name, "10.0.0.1")
    throttle.succeeded("mine")  # the attacker signs in to their own account
    assert throttle.wait_s("e", "10.0.0.1") > 0


def test_unknown_names_count_like_known_ones_and_memory_is_bounded() -> None:
    throttle = LoginThrottle(Limits(free=1, max_keys=10), Clock())
    for i in range(100):
        throttle.failed(f"user{i}", f"10.0.0.{i}")
    assert len(throttle._keys) == 10
    assert throttle.wait_s("user99", "10.0.0.250") > 0


def test_sessions_end_when_idle_and_at_their_absolute_limit(meta_url: str) -> None:
    meta = MetaStore(meta_url)
    meta.create_all()
    clock = Clock()
    sessions = Sessions(meta, idle_s=600, absolute_s=3600, clock=clock)
    idle, _ = sessions.start("p1")
    busy, record = sessions.start("p1")
    assert record.expires_at == clock.now + 3600
    for _ in range(10):  # busy is used every 5 minutes; idle never again
        clock.now += 300
        assert sessions.find(busy) is not None
    assert sessions.find(idle) is None
    clock.now = record.created_at + 3600
    assert sessions.find(busy) is None  # however busy, it ends at its absolute limit
    clock.now += 1
    assert sessions.prune(older_than_s=0) == 2
    meta.close()
