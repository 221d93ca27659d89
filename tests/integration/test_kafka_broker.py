"""The ingestion pipeline with Apache Kafka behind the `pubsub` component instead of Redis Streams.

A second full stack (its own Redis, Kafka broker, sidecars and apps) runs for this module only; the
apps and their subscription are unchanged, only the rendered `pubsub` component differs.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from lore_stack import kafka, resources, runfile
from lore_stack.stack import Stack
from tests.conftest import ROOT, new_stack
from tests.integration.helpers import (
    INGEST_APP,
    TOPICS,
    chunk_keys,
    eventually,
    gateway_client,
    sidecar,
)
from tests.otlp import OtlpCollector

TOPIC = TOPICS.ingest_topic
DEAD_LETTER_TOPIC = TOPICS.dead_letter_topic
PUBLISH = f"/v1.0/publish/{TOPICS.pubsub}/{TOPIC}"
TEXT = (
    "Cold storage snapshots are kept for ninety days. A snapshot can be restored into a new "
    "volume in the same region within four hours."
)


@pytest.fixture(scope="module")
def kafka_stack(tmp_path_factory: pytest.TempPathFactory, otlp: OtlpCollector) -> Iterator[Stack]:
    if not any(kafka.LIB_DIR.glob("kafka_2.13-*.jar")):
        kafka.ensure_jars()  # what `make kafka` does; lets a bare `pytest` run on a fresh clone
    lore = new_stack(tmp_path_factory, otlp, name="kafka-stack", broker="kafka")
    try:
        lore.start(timeout=240)
        _wait_for_live_subscription(lore)
        yield lore
    finally:
        lore.stop()


def _wait_for_live_subscription(stack: Stack) -> None:
    """Waits until lore-ingest consumes: daprd reports healthy seconds before its Kafka consumer
    group has joined. With `initialOffset: oldest` the probe is not lost if it comes first.

    A second, invalid probe makes the app publish a dead letter, which creates the dead-letter
    topic the way production traffic would (the broker auto-creates topics).
    """
    probe = f"probe-{uuid.uuid4().hex[:8]}"
    with sidecar(stack, "lore-ingest") as dapr:
        for event in ({"id": probe, "tenant": "probe", "text": TEXT}, {"tenant": "probe", "probe": probe}):
            assert dapr.post(PUBLISH, json=event).status_code == 204
    eventually(lambda: _status(stack, "probe", probe, "indexed"), timeout=90)


def _status(stack: Stack, tenant: str, document_id: str, state: str) -> dict[str, Any] | None:
    with gateway_client(stack, timeout=10) as gateway:
        response = gateway.get(f"/v1/documents/{tenant}/{document_id}")
    if response.status_code == 200 and response.json()["state"] == state:
        body: dict[str, Any] = response.json()
        return body
    return None


def _publish(stack: Stack, event: object) -> None:
    with sidecar(stack, "lore-ingest") as dapr:
        assert dapr.post(PUBLISH, json=event).status_code == 204


class DeadLetterReader:
    """Reads the dead-letter topic from its start with a plain Kafka consumer.

    A real client rather than a Dapr subscription: it sees exactly what is on the topic, the way an
    operator's tool would, without a subscriber app of its own or a second pass through the
    component under test (whose consumer-group settings it would share).
    """

    def __init__(self, bootstrap: str) -> None:
        # A group id is required by the client; offsets are never committed, nothing joins it.
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"test-dead-letters-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
            }
        )
        self.letters: list[dict[str, Any]] = []

    def start(self) -> None:
        def topic_exists() -> bool | None:
            topic = self._consumer.list_topics(DEAD_LETTER_TOPIC, timeout=5).topics.get(DEAD_LETTER_TOPIC)
            return True if topic is not None and topic.error is None and topic.partitions else None

        eventually(topic_exists, timeout=60)
        partitions = self._consumer.list_topics(DEAD_LETTER_TOPIC, timeout=5).topics[DEAD_LETTER_TOPIC]
        self._consumer.assign(
            [TopicPartition(DEAD_LETTER_TOPIC, p, OFFSET_BEGINNING) for p in partitions.partitions]
        )

    def find(self, match: Callable[[dict[str, Any]], bool], timeout: float = 30.0) -> dict[str, Any]:
        """The first dead letter (the `data` of its CloudEvent) for which ``match`` holds."""
        deadline = time.monotonic() + timeout
        while True:
            found = next((letter for letter in self.letters if match(letter)), None)
            if found is not None:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"no matching dead letter within {timeout}s; read {len(self.letters)}")
            message = self._consumer.poll(0.5)
            if message is not None and message.error() is None and message.value():
                self.letters.append(json.loads(message.value() or b"")["data"])

    def close(self) -> None:
        self._consumer.close()


@pytest.fixture(scope="module")
def dead_letters(kafka_stack: Stack) -> Iterator[DeadLetterReader]:
    assert kafka_stack.kafka is not None
    reader = DeadLetterReader(kafka_stack.kafka.bootstrap)
    reader.start()
    yield reader
    reader.close()


def _ingest_lag(stack: Stack) -> int:
    """Events on the ingestion topic that lore-ingest's consumer group has not committed yet.

    The topic has one partition: the local broker's `num.partitions`.
    """
    assert stack.kafka is not None
    group = f"{INGEST_APP}-{stack.kafka.cluster_id}"  # as Stack renders the component
    consumer = Consumer({"bootstrap.servers": stack.kafka.bootstrap, "group.id": group})
    try:
        (committed,) = consumer.committed([TopicPartition(TOPIC, 0)], timeout=10)
        _, high = consumer.get_watermark_offsets(TopicPartition(TOPIC, 0), timeout=10)
    finally:
        consumer.close()
    return high - max(committed.offset, 0)


def test_kafka_variant_replaces_only_the_pubsub_component(tmp_path: Path) -> None:
    spec = runfile.load(ROOT / "dapr.yaml")

    def rendered(**broker: Any) -> dict[str, dict[str, Any]]:
        out, _ = resources.render(
            spec.resources_paths,
            spec.config_path,
            tmp_path / str(len(broker)),
            redis_host="127.0.0.1:7777",
            secrets_file=tmp_path / "s.json",
            nameresolution_db=tmp_path / "nr.db",
            **broker,
        )
        docs = [d for p in out.glob("*.yaml") for d in yaml.safe_load_all(p.read_text())]
        return {d["metadata"]["name"]: d for d in docs}

    default = rendered()
    assert default["pubsub"]["spec"]["type"] == "pubsub.redis"
    variant = rendered(broker="kafka", broker_metadata={"brokers": "127.0.0.1:9999", "consumerGroup": "g-1"})
    assert variant["pubsub"]["spec"]["type"] == "pubsub.kafka"
    meta = {m["name"]: m["value"] for m in variant["pubsub"]["spec"]["metadata"]}
    assert meta["brokers"] == "127.0.0.1:9999"
    assert meta["consumerGroup"] == "g-1"
    assert meta["initialOffset"] == "oldest"
    assert variant["pubsub"]["scopes"] == default["pubsub"]["scopes"]
    del variant["pubsub"], default["pubsub"]
    assert variant == default
    with pytest.raises(ValueError, match="brokers/nats"):
        rendered(broker="nats")


@pytest.mark.integration
def test_published_event_is_indexed_through_kafka(kafka_stack: Stack) -> None:
    document_id = f"evt-{uuid.uuid4().hex[:8]}"
    _publish(kafka_stack, {"id": document_id, "tenant": "kafka", "title": "Snapshots", "text": TEXT})
    status = eventually(lambda: _status(kafka_stack, "kafka", document_id, "indexed"))
    assert status["chunks"] == len(chunk_keys(kafka_stack, "kafka", document_id)) >= 1


@pytest.mark.integration
def test_gateway_enqueues_a_document_through_kafka(kafka_stack: Stack) -> None:
    with gateway_client(kafka_stack) as gateway:
        response = gateway.post(
            "/v1/documents", params={"wait": "false"}, json={"tenant": "kafka", "text": TEXT + " queued"}
        )
    assert response.status_code == 202
    document_id = response.json()["document_id"]
    status = eventually(lambda: _status(kafka_stack, "kafka", document_id, "indexed"))
    assert status["chunks"] == len(chunk_keys(kafka_stack, "kafka", document_id))


@pytest.mark.integration
@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"tenant": "kafka", "title": "no text"}, "text"),
        ({"tenant": "kafka", "text": "fine", "colour": "blue"}, "colour"),
        ("just a string", "invalid document"),
    ],
)
def test_invalid_event_is_dead_lettered_on_kafka_with_its_reason(
    kafka_stack: Stack, dead_letters: DeadLetterReader, payload: object, reason: str
) -> None:
    marker = uuid.uuid4().hex
    event = {**payload, "source": marker} if isinstance(payload, dict) else f"{payload} {marker}"
    _publish(kafka_stack, event)
    found = dead_letters.find(lambda letter: marker in json.dumps(letter["event"]))
    assert reason in found["reason"]
    assert found["topic"] == TOPIC
    # Acknowledged once dead-lettered, not redelivered: the partition is not blocked behind it.
    eventually(lambda: True if _ingest_lag(kafka_stack) == 0 else None)


@pytest.mark.integration
def test_oversized_event_passes_kafka_and_is_dead_lettered(
    kafka_stack: Stack, dead_letters: DeadLetterReader
) -> None:
    # One byte over the document limit, and every quote JSON-escaped: a 1 MB event, above the
    # producer's default message size, so it only gets through with the component's maxMessageBytes
    # (the dead letter, which carries the event, too).
    document_id = f"big-{uuid.uuid4().hex[:8]}"
    _publish(kafka_stack, {"id": document_id, "tenant": "kafka", "text": '"' * 512_001})
    found = dead_letters.find(
        lambda letter: isinstance(letter["event"], dict) and letter["event"].get("id") == document_id
    )
    assert "limit" in found["reason"]
    assert chunk_keys(kafka_stack, "kafka", document_id) == []
    assert _status(kafka_stack, "kafka", document_id, "failed") is not None


@pytest.mark.integration
def test_burst_of_events_is_indexed_exactly_once(kafka_stack: Stack) -> None:
    tenant = f"burst-{uuid.uuid4().hex[:6]}"
    ids = [f"doc-{n:02d}" for n in range(50)]
    with sidecar(kafka_stack, "lore-ingest") as dapr:

        def publish(document_id: str) -> int:
            event = {"id": document_id, "tenant": tenant, "text": f"{TEXT} Item {document_id}."}
            return dapr.post(PUBLISH, json=event).status_code

        with ThreadPoolExecutor(8) as pool:
            assert list(pool.map(publish, ids)) == [204] * 50
    statuses = {
        document_id: eventually(partial(_status, kafka_stack, tenant, document_id, "indexed"), timeout=180)
        for document_id in ids
    }
    # Every event consumed and committed, none still to come that could index a document again.
    eventually(lambda: True if _ingest_lag(kafka_stack) == 0 else None)
    for document_id, status in statuses.items():
        assert len(chunk_keys(kafka_stack, tenant, document_id)) == status["chunks"] >= 1
