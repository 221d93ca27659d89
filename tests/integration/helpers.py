"""Small helpers for tests that talk to real sidecars and the real Redis."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import httpx
import redis

from lore_stack.stack import Stack

T = TypeVar("T")


def sidecar(stack: Stack, app_id: str) -> httpx.Client:
    """An HTTP client for ``app_id``'s daprd, carrying the Dapr API token."""
    return httpx.Client(
        base_url=stack.apps[app_id].http,
        headers={"dapr-api-token": stack.secrets["dapr-api-token"]},
        timeout=30,
    )


def redis_of(stack: Stack) -> redis.Redis:
    assert stack.redis is not None
    return stack.redis.client()


def eventually(probe: Callable[[], T | None], *, timeout: float = 30.0, interval: float = 0.2) -> T:
    """Polls ``probe`` until it returns something other than None."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def chunk_keys(stack: Stack, tenant: str, document_id: str) -> list[bytes]:
    return sorted(redis_of(stack).scan_iter(match=f"lore:chunk:{tenant}:{document_id}:*"))
