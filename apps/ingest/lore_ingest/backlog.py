"""The ingestion backlog as a Prometheus gauge, read from the broker's Redis stream.

Dapr's `pubsub.redis` keeps a topic in a Redis stream named after the topic and delivers it to the
consumer group named by the component's `consumerID` (the subscriber's app-id by default), so
`XINFO GROUPS <topic>` tells how far lore-ingest is behind:

* `waiting`: entries not yet read by the group (`lag`, Redis 7+), queued behind the sidecar;
* `pending`: entries read but not acknowledged (being processed, or held for redelivery).

The gauge is refreshed every few seconds by a task of the app, never on the scrape (a scrape must
not wait on Redis). With another broker (Kafka) the stream does not exist and the gauge has no
samples; the lag alert then falls back on daprd's publish and delivery counters.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from prometheus_client import Gauge
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

log = logging.getLogger(__name__)

BACKLOG = Gauge(
    "lore_ingest_backlog_events",
    "Ingestion events on the broker's Redis stream not yet handled by lore-ingest: `waiting` (not "
    "read by its consumer group yet) and `pending` (read, not acknowledged).",
    ["state"],
)
# Both series exist from start-up at 0 (true until something is published), so a dashboard or an
# alert never sees the metric missing before the first refresh.
for _state in ("waiting", "pending"):
    BACKLOG.labels(_state)


async def read_backlog(redis: Redis, stream: str, group: str) -> tuple[int, int] | None:
    """``(waiting, pending)`` of ``group`` on ``stream``; None when either does not exist."""
    try:
        groups = await redis.xinfo_groups(stream)
    except ResponseError:  # "no such key": nothing was ever published on this broker's stream
        return None
    for info in groups:
        name = info["name"]
        if (name.decode() if isinstance(name, bytes) else name) == group:
            # `lag` is None when Redis cannot tell (entries deleted by trimming); count them as 0.
            return int(info.get("lag") or 0), int(info["pending"])
    return None


@asynccontextmanager
async def watch_backlog(
    redis: Redis, *, stream: str, group: str, interval: float = 5.0
) -> AsyncIterator[None]:
    """Keeps `lore_ingest_backlog_events` up to date while the context is open."""

    async def loop() -> None:
        while True:
            try:
                backlog = await read_backlog(redis, stream, group)
            except RedisError as exc:
                log.debug("backlog of %s not read: %s", stream, exc)
            else:
                if backlog is not None:
                    BACKLOG.labels("waiting").set(backlog[0])
                    BACKLOG.labels("pending").set(backlog[1])
            await asyncio.sleep(interval)

    task = asyncio.create_task(loop(), name="backlog-watch")
    try:
        yield
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
