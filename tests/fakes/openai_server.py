"""A stand-in for an OpenAI-compatible chat server, speaking the real wire protocol.

The real model is outside the machine (or too slow to compile here), so fault tests run the real
`ChatOpenAI` client, the real sidecars and a real HTTPEndpoint against this server instead. It
serves `POST /v1/chat/completions` (a JSON completion, or with `"stream": true` Server-Sent Events:
one `chat.completion.chunk` per word, a chunk with `finish_reason`, then `data: [DONE]`) and
`GET /v1/models`, and records every request body and its headers.

Modes (`FakeOpenAI.mode`): `normal`; `error` (HTTP 500 with an OpenAI error body); `hang` (accepts
the request and never answers); `slow` (streams one word every `delay` seconds, so a stream outlives
a timeout). `refusing()` closes the port for a while (connections refused, as when the model
server is down) and serves again on the same port after it.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from lore_stack.stack import free_port

Mode = Literal["normal", "error", "hang", "slow"]


@dataclass
class Received:
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass
class FakeOpenAI:
    """Runs on a free loopback port in a thread; `base_url` ends without `/v1`."""

    reply: str = "Deleted files are kept for 30 days [1]."
    mode: Mode = "normal"
    delay: float = 0.5
    model: str = "fake-model"
    received: list[Received] = field(default_factory=list)
    # Streams whose client went away before the last chunk (the server stopped generating).
    abandoned_streams: int = 0
    port: int = field(default_factory=free_port)
    _server: uvicorn.Server | None = field(default=None, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        config = uvicorn.Config(
            self._app(), host="127.0.0.1", port=self.port, log_level="warning", timeout_graceful_shutdown=1
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="fake-openai", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fake OpenAI server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    @contextmanager
    def refusing(self) -> Iterator[None]:
        """Inside the block nothing listens on the port: every connection is refused."""
        self.stop()
        try:
            yield
        finally:
            # uvicorn binds with SO_REUSEADDR, so the same port is free again at once.
            self.start()

    def reset(self, *, mode: Mode = "normal", reply: str | None = None) -> None:
        self.mode = mode
        self.received.clear()
        self.abandoned_streams = 0
        if reply is not None:
            self.reply = reply

    def _completion(self, request_model: str) -> dict[str, Any]:
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request_model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": self.reply},
                    "finish_reason": "stop",
                    "logprobs": None,
                }
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": len(self.reply.split()), "total_tokens": 0},
        }

    async def _chunks(self, request_model: str) -> AsyncIterator[bytes]:
        ident = f"chatcmpl-{uuid.uuid4().hex}"

        def chunk(delta: dict[str, Any], finish: str | None) -> bytes:
            body = {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": request_model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
            }
            return f"data: {json.dumps(body)}\n\n".encode()

        finished = False
        try:
            yield chunk({"role": "assistant", "content": ""}, None)
            words = self.reply.split(" ")
            for i, word in enumerate(words):
                if self.mode == "slow":
                    await asyncio.sleep(self.delay)
                yield chunk({"content": word if i == 0 else f" {word}"}, None)
            yield chunk({}, "stop")
            yield b"data: [DONE]\n\n"
            finished = True
        finally:
            if not finished:
                self.abandoned_streams += 1

    def _app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/v1/models")
        async def models() -> dict[str, Any]:
            entry = {"id": self.model, "object": "model", "created": 0, "owned_by": "fake"}
            return {"object": "list", "data": [entry]}

        @app.post("/v1/chat/completions")
        async def completions(request: Request) -> Any:
            body = await request.json()
            self.received.append(Received(body=body, headers=dict(request.headers)))
            if self.mode == "error":
                error = {"message": "the fake model failed", "type": "server_error", "code": None}
                return JSONResponse({"error": error}, status_code=500)
            if self.mode == "hang":
                await asyncio.sleep(3600)
            model = str(body.get("model", self.model))
            if body.get("stream"):
                return StreamingResponse(self._chunks(model), media_type="text/event-stream")
            return self._completion(model)

        return app
