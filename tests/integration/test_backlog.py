"""`lore_ingest_backlog_events` reads the broker stream's consumer group as Dapr leaves it (real Redis),
and the running stack exports it."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY

from lore_core.index import redis_client
from lore_ingest.backlog import read_backlog, watch_backlog
from lore_stack.redis_server import RedisServer
from lore_stack.stack import Stack, free_port
from tests.integration.helpers import INGEST_APP, INGEST_GROUP, TOPICS, eventually, redis_of

BACKLOG_METRIC = "lore_ingest_backlog_events"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    redis = RedisServer(port=free_port(), data_dir=Path(tmp_path_factory.mktemp("redis-backlog")))
    redis.start()
    yield redis
    redis.stop()


def test_waiting_and_pending_follow_the_consumer_group(server: RedisServer) -> None:
    stream, group = "lore.documents", "lore-ingest"
    with server.client() as client:
        client.xgroup_create(stream, group, id="0", mkstream=True)
        for n in range(10):
            client.xadd(stream, {"data": str(n)})
        read = client.xreadgroup(group, "consumer-1", {stream: ">"}, count=4)
        ids = [entry_id for _, entries in read for entry_id, _ in entries]
        client.xack(stream, group, *ids[:1])

    async def run() -> tuple[tuple[int, int] | None, tuple[int, int] | None, tuple[int, int] | None]:
        redis = redis_client(f"redis://127.0.0.1:{server.port}/0", None)
        try:
            backlog = await read_backlog(redis, stream, group)
            other_group = await read_backlog(redis, stream, "someone-else")
            no_stream = await read_backlog(redis, "never-published", group)
            async with watch_backlog(redis, stream=stream, group=group, interval=0.05):
                await asyncio.sleep(0.3)
            return backlog, other_group, no_stream
        finally:
            await redis.aclose()

    backlog, other_group, no_stream = asyncio.run(run())
    # 10 published, 4 read (6 waiting), 1 of those acknowledged (3 pending).
    assert backlog == (6, 3)
    assert other_group is None and no_stream is None
    assert REGISTRY.get_sample_value(BACKLOG_METRIC, {"state": "waiting"}) == 6
    assert REGISTRY.get_sample_value(BACKLOG_METRIC, {"state": "pending"}) == 3


def test_the_running_ingest_app_exports_its_backlog(stack: Stack) -> None:
    ingest = stack.url(INGEST_APP)
    sample = re.compile(r'^lore_ingest_backlog_events\{state="(waiting|pending)"\} (\S+)$', re.MULTILINE)

    def exported() -> dict[str, float] | None:
        found = {m.group(1): float(m.group(2)) for m in sample.finditer(httpx.get(f"{ingest}/metrics").text)}
        return found if set(found) == {"waiting", "pending"} else None

    values = eventually(exported, timeout=30)
    assert all(v >= 0 for v in values.values())
    names = {g["name"] for g in redis_of(stack).xinfo_groups(TOPICS.ingest_topic)}
    assert INGEST_GROUP in names or INGEST_GROUP.encode() in names
