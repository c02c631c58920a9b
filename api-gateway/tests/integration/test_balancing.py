"""Several instances behind one Upstream: balancing, ejection, retries, the breaker."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from api_gateway import breaker
from api_gateway.connection import ConnectFailed, UpstreamBroken, UpstreamTimedOut
from api_gateway.readiness import Readiness
from api_gateway.upstream import Upstream, fetch

pytestmark = pytest.mark.anyio


@dataclass
class Instance:
    url: str
    hits: list[bytes] = field(default_factory=list)
    heads: list[bytes] = field(default_factory=list)  # of the hits
    drop: bool = False  # close the connection without answering
    cut: bool = False  # close the connection halfway through the body
    ready: bool = True
    probes: int = 0  # GET /ready requests
    frozen: bool = False  # read requests, answer none (a stopped process)
    slow_seconds: float = 0.0  # how late /slow is answered
    writers: list[asyncio.StreamWriter] = field(default_factory=list)


@contextlib.asynccontextmanager
async def instance() -> AsyncIterator[Instance]:
    state = Instance("")

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state.writers.append(writer)
        with (
            contextlib.closing(writer),
            contextlib.suppress(ConnectionError, asyncio.IncompleteReadError),
        ):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                line = head.split(b"\r\n", 1)[0]
                if state.frozen:
                    state.hits.append(line)
                    await asyncio.Event().wait()  # the client gives up first
                if b"/slow" in line:
                    await asyncio.sleep(state.slow_seconds)
                if b"/ready" in line:
                    state.probes += 1
                    status = b"200 OK" if state.ready else b"503 Service Unavailable"
                else:
                    state.hits.append(line)
                    state.heads.append(head)
                    if state.drop:
                        break
                    if state.cut:
                        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhalf")
                        break
                    status = b"200 OK"
                writer.write(b"HTTP/1.1 " + status + b"\r\ncontent-length: 2\r\n\r\nok")
                await writer.drain()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    state.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        yield state
    finally:
        server.close()
        for writer in state.writers:
            writer.close()
        await server.wait_closed()
        await asyncio.sleep(0)


async def get(upstream: Upstream, method: bytes = b"GET", body: bytes | None = None) -> int:
    response = await upstream.request(method, b"/x", [], body, timeout=2)
    try:
        while await response.read(2):
            pass
        return response.status
    finally:
        response.release()


async def test_requests_are_spread_over_the_instances() -> None:
    async with instance() as first, instance() as second:
        upstream = Upstream("product-service", [first.url, second.url])
        for _ in range(10):
            assert await get(upstream) == 200
        upstream.close()
    assert (len(first.hits), len(second.hits)) == (5, 5)


async def test_the_least_busy_instance_gets_the_next_request() -> None:
    async with instance() as first, instance() as second:
        upstream = Upstream("product-service", [first.url, second.url])
        upstream.pools[0].health.outstanding = 5  # as if five long requests were running
        for _ in range(4):
            assert await get(upstream) == 200
        upstream.close()
    assert (len(first.hits), len(second.hits)) == (0, 4)


async def test_a_refused_instance_is_skipped_until_it_answers_its_probe(refused_url) -> None:
    async with instance() as alive:
        upstream = Upstream("product-service", [refused_url, alive.url])
        for _ in range(4):
            assert await get(upstream) == 200  # the refusal is retried on the live one
        dead = upstream.pools[0]
        assert dead.health.open
        assert len(alive.hits) == 4
        dead.health.probed("ok")  # the readiness poller saw it back
        assert dead.health.usable
        upstream.close()


async def test_every_circuit_open_fails_fast_without_connecting(refused_url) -> None:
    upstream = Upstream("product-service", [refused_url, refused_url])
    with pytest.raises(ConnectFailed):
        await get(upstream)
    assert all(pool.health.open for pool in upstream.pools)
    with pytest.raises(ConnectFailed, match="circuit is open"):
        await get(upstream)


@pytest.mark.parametrize(
    ("method", "body", "retried"),
    [
        pytest.param(b"GET", None, True, id="GET-is-retried-on-the-other-instance"),
        pytest.param(b"POST", b"{}", False, id="POST-is-not-retried-once-sent"),
    ],
)
async def test_an_instance_that_drops_the_request_after_it_was_sent(
    method: bytes, body: bytes | None, retried: bool
) -> None:
    async with instance() as dropping, instance() as healthy:
        dropping.drop = True
        upstream = Upstream("product-service", [dropping.url, healthy.url])
        if retried:
            assert await get(upstream, method, body) == 200
        else:
            with pytest.raises(UpstreamBroken):
                await get(upstream, method, body)
        upstream.close()
    assert len(dropping.hits) == 1
    assert len(healthy.hits) == (1 if retried else 0)


async def test_a_resendable_write_dropped_after_it_was_sent_goes_to_another_marked() -> None:
    """Its service applies it at most once (shop_common.retried_writes): the copy says
    it is one, so the service looks for the first attempt's effect before applying it."""
    async with instance() as dropping, instance() as healthy:
        dropping.drop = True
        upstream = Upstream("product-service", [dropping.url, healthy.url])
        response = await upstream.request(b"POST", b"/x", [], b"{}", timeout=2, resendable=True)
        response.release()
        upstream.close()
    assert response.status == 200
    assert len(dropping.hits) == 1
    assert b"x-gateway-retry" not in dropping.heads[0].lower()
    assert b"\r\nx-gateway-retry: 1\r\n" in healthy.heads[0].lower()


async def test_a_resendable_write_that_timed_out_is_not_sent_again() -> None:
    """A timeout is not a death: the instance may still be applying it."""
    async with instance() as frozen, instance() as healthy:
        frozen.frozen = True
        upstream = Upstream("product-service", [frozen.url, healthy.url])
        with pytest.raises(UpstreamTimedOut):
            await upstream.request(b"POST", b"/x", [], b"{}", timeout=0.5, resendable=True)
        upstream.close()
    assert (len(frozen.hits), len(healthy.hits)) == (1, 0)


async def test_a_get_whose_instance_dies_mid_body_is_answered_by_another() -> None:
    async with instance() as dying, instance() as healthy:
        dying.cut = True
        upstream = Upstream("product-service", [dying.url, healthy.url])
        assert await get(upstream) == 200
        upstream.close()
    assert (len(dying.hits), len(healthy.hits)) == (1, 1)


async def test_repeated_failures_open_the_breaker_and_it_closes_on_success(monkeypatch) -> None:
    monkeypatch.setattr(breaker, "COOL_DOWN_SECONDS", 0.2)
    health = breaker.InstanceHealth()
    for _ in range(breaker.FAILURE_THRESHOLD - 1):
        health.failed()
    assert not health.open
    health.failed()
    assert health.open
    await asyncio.sleep(0.25)
    assert health.usable  # half-open: the next request tries it
    health.failed()  # and one more failure opens it again, for longer
    assert health.open
    health.succeeded()
    assert health.usable


async def test_the_readiness_poller_ejects_an_instance_that_is_not_ready() -> None:
    async with instance() as draining, instance() as ready:
        draining.ready = False
        upstream = Upstream("product-service", [draining.url, ready.url])
        readiness = Readiness({"product-service": upstream}, cache_seconds=0, timeout=1)
        poller = asyncio.create_task(readiness.keep_polling(0.05))
        await asyncio.sleep(0.2)
        for _ in range(4):
            assert await get(upstream) == 200
        assert (len(draining.hits), len(ready.hits)) == (0, 4)
        ok, report = await readiness.report()
        assert ok  # one ready instance of the service is enough
        assert report["instances"]["product-service"][draining.url] == "not_ready"
        draining.ready = True
        await asyncio.sleep(0.2)
        status, _ = await fetch(upstream, b"/x", [], timeout=2)
        status, _ = await fetch(upstream, b"/x", [], timeout=2)
        assert status == 200 and len(draining.hits) == 1  # it rejoined
        poller.cancel()
        await readiness.close()
        upstream.close()


async def test_the_poller_probes_often_while_starting_then_at_its_interval() -> None:
    async with instance() as starting:
        starting.ready = False
        upstream = Upstream("product-service", [starting.url])
        readiness = Readiness({"product-service": upstream}, cache_seconds=0, timeout=1)
        poller = asyncio.create_task(readiness.keep_polling(60))
        await asyncio.sleep(0.5)
        _, report = await readiness.report()
        assert report["checks"]["product-service"] == "unavailable"
        starting.ready = True
        await asyncio.sleep(0.3)
        _, report = await readiness.report()
        assert report["checks"]["product-service"] == "ok"  # within a startup probe or two
        probes = starting.probes
        assert probes >= 4  # not one per 60 s while it was starting
        await asyncio.sleep(0.3)
        poller.cancel()
        await readiness.close()
        upstream.close()
    # Ready once: back to the 60 s interval (report() above probed once more, cache 0).
    assert starting.probes <= probes + 1


async def test_a_get_sent_to_a_frozen_instance_is_answered_by_another() -> None:
    async with instance() as frozen, instance() as alive:
        frozen.frozen = True
        upstream = Upstream("product-service", [frozen.url, alive.url])
        statuses = [await get(upstream) for _ in range(4)]
        assert statuses == [200] * 4
        assert frozen.hits  # it was tried, then given up on
        assert upstream.pools[0].health.open  # and is skipped while its breaker is open
        upstream.close()


async def test_a_post_sent_to_a_frozen_instance_is_not_sent_again() -> None:
    async with instance() as frozen:
        frozen.frozen = True
        upstream = Upstream("product-service", [frozen.url])
        with pytest.raises(UpstreamTimedOut):
            await upstream.request(b"POST", b"/x", [], b"{}", timeout=0.5)
        assert len(frozen.hits) == 1
        upstream.close()


async def test_a_slow_route_does_not_open_the_breaker_for_the_others() -> None:
    async with instance() as slow:
        slow.slow_seconds = 5.0
        upstream = Upstream("product-service", [slow.url])
        pool = upstream.pools[0]

        async def fast_requests() -> None:
            for _ in range(20):
                status, _ = await fetch(pool, b"/fast", [], timeout=2)
                assert status == 200
                await asyncio.sleep(0.05)

        async def slow_request() -> None:
            with pytest.raises(UpstreamTimedOut):
                await fetch(pool, b"/slow", [], timeout=0.3)

        fast = asyncio.create_task(fast_requests())
        await asyncio.gather(*(slow_request() for _ in range(breaker.FAILURE_THRESHOLD + 2)))
        await fast
        assert not pool.health.open
        assert await get(upstream) == 200
        upstream.close()
