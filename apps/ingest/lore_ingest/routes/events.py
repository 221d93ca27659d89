"""The ingestion-event subscription (CloudEvents delivered by the sidecar).

Outcomes follow Dapr's pub/sub contract: `SUCCESS` acknowledges, `RETRY` asks for redelivery (the
resiliency policy bounds it; after that Dapr moves the event to the subscription's dead-letter
topic). An event that can never succeed (invalid payload, too large) is not retried: it is
published to the dead-letter topic with the reason, then acknowledged.
"""

from __future__ import annotations

import logging
from typing import Any

from lore_core.contracts import DeadLetter, DocumentIn
from lore_core.dapr import DaprError, Sidecar
from lore_core.http import ApiError, validate
from lore_ingest.deps import ServiceDep, SettingsDep, SidecarDep
from lore_ingest.service import DocumentTooLargeError
from lore_ingest.settings import Settings

log = logging.getLogger(__name__)

SUCCESS = {"status": "SUCCESS"}
RETRY = {"status": "RETRY"}


async def on_document_event(
    event: dict[str, Any], service: ServiceDep, sidecar: SidecarDep, settings: SettingsDep
) -> dict[str, str]:
    """Index the document carried by an ingestion event."""
    try:
        document = validate(event.get("data"), DocumentIn)
    except ApiError as exc:
        return await _dead_letter(event, f"invalid document: {exc.detail}", sidecar, settings)
    try:
        await service.ingest(document)
        return SUCCESS
    except DocumentTooLargeError as exc:
        reason = str(exc)
    except Exception:
        log.exception("ingestion event %s failed; asking for redelivery", event.get("id"))
        return RETRY
    try:
        await service.record_failure(document, reason)
    except DaprError:
        log.exception("could not record the failure of event %s", event.get("id"))
        return RETRY
    return await _dead_letter(event, reason, sidecar, settings)


async def _dead_letter(
    event: dict[str, Any], reason: str, sidecar: Sidecar, settings: Settings
) -> dict[str, str]:
    """Publishes the event's payload and ``reason`` on the dead-letter topic, then acknowledges."""
    letter = DeadLetter(
        reason=reason, topic=settings.ingest_topic, event_id=event.get("id"), event=event.get("data")
    )
    try:
        await sidecar.publish(settings.pubsub, settings.dead_letter_topic, letter.model_dump(mode="json"))
    except DaprError:
        log.exception("could not dead-letter event %s", event.get("id"))
        return RETRY
    log.warning("dead-lettered event %s: %s", event.get("id"), reason)
    return SUCCESS
