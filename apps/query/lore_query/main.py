"""lore-query: retrieval and answers behind its Dapr sidecar (`python -m lore_query`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from lore_core.dapr import Sidecar
from lore_core.retriever import Retrieval
from lore_core.runtime import app_embeddings, open_index, serve, service_app, sidecar_and_index_checks
from lore_query.chains.condense import build_condense
from lore_query.chains.extractive import build_chain
from lore_query.chains.rag import RagAnswers, chat_model_through_sidecar, stream_of
from lore_query.memory import ConversationMemory, Conversations
from lore_query.routes import answers, retrieve
from lore_query.settings import Settings


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def startup(app: FastAPI, sidecar: Sidecar) -> AsyncIterator[None]:
        embeddings = await app_embeddings(settings, sidecar, secret_store=settings.secret_store)
        async with open_index(settings, sidecar, dimension=settings.embedding_dimension) as index:
            app.state.index = index
            app.state.retrieval = Retrieval(
                index=index,
                embeddings=embeddings,
                tuning=settings.tuning(),
                default_mode=settings.retrieval_mode,
                cache_size=settings.question_cache_size,
            )
            model = None
            if settings.generative:
                model = chat_model_through_sidecar(
                    dapr_base_url=settings.dapr_base_url,
                    dapr_api_token=settings.dapr_api_token.get_secret_value(),
                    endpoint=settings.llm_endpoint,
                    model=settings.llm_model,
                    max_tokens=settings.llm_max_tokens,
                    temperature=settings.llm_temperature,
                    timeout=settings.llm_timeout_seconds,
                    legacy_max_tokens=settings.send_max_tokens,
                )
                rag = RagAnswers(
                    retrieval=app.state.retrieval,
                    model=model,
                    min_score=settings.min_score,
                    sentences=settings.answer_sentences,
                )
                app.state.chain, app.state.stream = rag.chain, rag.stream
            else:
                app.state.chain = build_chain(
                    retrieval=app.state.retrieval,
                    min_score=settings.min_score,
                    sentences=settings.answer_sentences,
                )
                app.state.stream = stream_of(app.state.chain)
            memory = ConversationMemory(
                sidecar,
                store=settings.memory_store,
                max_turns=settings.memory_max_turns,
                ttl_seconds=settings.memory_ttl_seconds,
            )
            app.state.conversations = Conversations(memory, build_condense(model))
            yield

    app = service_app(settings, startup=startup, checks=sidecar_and_index_checks, title="lore-query")
    app.include_router(answers.router)
    app.include_router(retrieve.router)
    return app


def run() -> None:
    settings = Settings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    run()
