"""The ingestion-event subscriptions (CloudEvents delivered by the sidecar).

Outcomes follow Dapr's pub/sub contract: `SUCCESS` acknowledges, `RETRY` asks for redelivery (the
`delivery` resiliency policy bounds it). An event that can never succeed (invalid payload, too
large) is not retried: it is published to the dead-letter topic with the reason, then
acknowledged. When Dapr itself gives up on an event (redeliveries exhausted) it forwards the bare
payload to `exhausted_topic`; `on_exhausted_event` wraps it into the same `DeadLetter` shape, so
the dead-letter topic carries one documented shape whatever the broker and whoever moved the event.
"""

from __future__ import annotations

import logging
from typing import Any

from prometheus_client import Counter

from lore_core.contracts import DeadLetter, DocumentIn, QueuedDocument
from lore_core.dapr import DaprError, Sidecar
from lore_core.http import ApiError, validate
from lore_core.settings import TopicSettings
from lore_ingest.deps import ServiceDep, SettingsDep, SidecarDep
from lore_ingest.service import DocumentTooLargeError

log = logging.getLogger(__name__)

SUCCESS = {"status": "SUCCESS"}
RETRY = {"status": "RETRY"}
DEAD_LETTERS = Counter("lore_dead_letters_total", "Ingestion events moved to the dead-letter topic.")


async def on_document_event(
    event: dict[str, Any], service: ServiceDep, sidecar: SidecarDep, settings: SettingsDep
) -> dict[str, str]:
    """Index the document carried by an ingestion event."""
    try:
        document = validate(event.get("data"), QueuedDocument)
    except ApiError as exc:
        return await _dead_letter(event, f"invalid document: {exc.detail}", sidecar, settings)
    plain = DocumentIn(**document.model_dump(exclude={"sequence"}))
    try:
        await service.ingest(plain, sequence=document.sequence)
        return SUCCESS
    except DocumentTooLargeError as exc:
        reason = str(exc)
    except Exception:
        log.exception("ingestion event %s failed; asking for redelivery", event.get("id"))
        return RETRY
    try:
        await service.record_failure(plain, reason, sequence=document.sequence)
    except DaprError:
        log.exception("could not record the failure of event %s", event.get("id"))
        return RETRY
    return await _dead_letter(event, reason, sidecar, settings)


async def on_exhausted_event(
    event: dict[str, Any], service: ServiceDep, sidecar: SidecarDep, settings: SettingsDep
) -> dict[str, str]:
    """Dead-letter an event whose redeliveries Dapr exhausted, and mark its document failed."""
    reason = "redelivery attempts exhausted (the document could not be indexed in time; see lore-ingest logs)"
    try:
        document = QueuedDocument.model_validate(event.get("data"))
        plain = DocumentIn(**document.model_dump(exclude={"sequence"}))
        await service.record_failure(plain, reason, sequence=document.sequence)
    except ValueError:
        pass  # not a document: the letter alone tells the story
    except DaprError:
        log.exception("could not record the failure of exhausted event %s", event.get("id"))
        return RETRY
    return await _dead_letter(event, reason, sidecar, settings)


async def _dead_letter(
    event: dict[str, Any], reason: str, sidecar: Sidecar, topics: TopicSettings
) -> dict[str, str]:
    """Publishes the event's payload and ``reason`` on the dead-letter topic, then acknowledges."""
    letter = DeadLetter(
        reason=reason, topic=topics.ingest_topic, event_id=event.get("id"), event=event.get("data")
    )
    try:
        await sidecar.publish(topics.pubsub, topics.dead_letter_topic, letter.model_dump(mode="json"))
    except DaprError:
        log.exception("could not dead-letter event %s", event.get("id"))
        return RETRY
    DEAD_LETTERS.inc()
    log.warning("dead-lettered event %s: %s", event.get("id"), reason)
    return SUCCESS
