"""Egress paces sends per channel; long waits go back to JetStream instead of blocking."""

import pytest

from greentic.errors import RetryLater
from greentic.providers.ratelimit import SendPacer


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))


async def test_sends_of_one_channel_are_spaced_and_channels_are_independent() -> None:
    fake = FakeTime()
    pacer = SendPacer(max_wait_s=10, clock=fake.clock, sleep=fake.sleep)
    for _ in range(4):
        await pacer.wait_turn("acme/support/slack", 2.0)
    await pacer.wait_turn("acme/support/telegram", 2.0)
    assert fake.slept == [0.5, 1.0, 1.5]  # the first send goes at once; other channel unaffected
    assert pacer.waited_s == pytest.approx(3.0)


async def test_a_wait_beyond_the_limit_becomes_a_retry_with_that_delay() -> None:
    fake = FakeTime()
    pacer = SendPacer(max_wait_s=1.0, clock=fake.clock, sleep=fake.sleep)
    await pacer.wait_turn("c", 1.0)
    await pacer.wait_turn("c", 1.0)
    with pytest.raises(RetryLater) as caught:
        await pacer.wait_turn("c", 1.0)
    assert caught.value.delay_s == pytest.approx(2.0)
    fake.now += 2.0
    await pacer.wait_turn("c", 1.0)  # its turn has come: no retry


async def test_rate_zero_means_unlimited() -> None:
    fake = FakeTime()
    pacer = SendPacer(max_wait_s=1.0, clock=fake.clock, sleep=fake.sleep)
    for _ in range(100):
        await pacer.wait_turn("webchat", 0)
    assert fake.slept == []
