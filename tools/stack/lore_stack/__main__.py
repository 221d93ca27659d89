"""`python -m lore_stack`: run a local Lore, or manage its Redis.

up                  start Redis, the apps and their sidecars from dapr.yaml; ingest the
                    sample corpus, print an answer, serve until Ctrl-C
                    (`--broker kafka`: events go through a local Kafka, port KAFKA_PORT;
                    answers from the local llama.cpp model, port LLM_PORT, unless
                    ANSWER_PROVIDER says `extractive` or `openai`)
redis start|stop    a standalone Redis with search (for REDIS_URL users and tests)
secrets             create the local secrets file if it is missing
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from pathlib import Path

import redis as redis_py

from lore_stack import demo, kafka, runfile
from lore_stack.redis_server import RedisServer
from lore_stack.secrets import ensure_secrets
from lore_stack.stack import Stack

ROOT = Path(__file__).resolve().parents[3]
SAMPLE_QUESTION = "How long are deleted files kept before they are purged?"


def _up(args: argparse.Namespace) -> int:
    stack = Stack(
        runfile=runfile.load(ROOT / "dapr.yaml"),
        run_dir=ROOT / ".run",
        daprd=Path(args.daprd),
        secrets_file=ROOT / ".run" / "secrets.json",
        redis_url=os.environ.get("REDIS_URL") or None,
        redis_port=int(os.environ.get("REDIS_PORT", "6379")),
        supervise=True,
        say=lambda line: print(f"[stack] {line}", flush=True),
        broker=args.broker,
        kafka_port=int(os.environ.get("KAFKA_PORT", "19092")),
        # `make run` answers with the local model (`make llm` installs it); the apps' own default,
        # for `dapr run -f .` and the tests, stays `extractive`, which needs no model server.
        env={"ANSWER_PROVIDER": os.environ.get("ANSWER_PROVIDER") or "local"},
        llm_port=int(os.environ.get("LLM_PORT", "8088")),
        trusted_app_ids=tuple(args.trusted_app_id),
    )
    if args.broker == "kafka":
        kafka.ensure_jars()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        print("starting Redis, daprd sidecars and apps (logs in .run/logs) ...", flush=True)
        stack.start()
        gateway = stack.url("lore-gateway")
        key = stack.secrets["lore-admin-key"]
        statuses = demo.ingest_corpus(gateway, ROOT / "samples" / "corpus", key)
        print(
            f"ingested {len(statuses)} documents: "
            + ", ".join(f"{s['document_id']} ({s['chunks']} chunks)" for s in statuses)
        )
        # Streamed: the local model's tokens appear as it writes them.
        print(f"Q: {SAMPLE_QUESTION}\nA: ", end="", flush=True)
        answer = demo.ask_streamed(gateway, SAMPLE_QUESTION, key, sys.stdout)
        mode = answer.get("mode", "")
        degraded = f", degraded: {answer.get('reason')}" if answer.get("degraded") else ""
        print(f"\n({mode}{degraded})\n{demo.render_citations(answer)}", flush=True)
        if args.once:
            return 0
        print(
            f"\nLore is serving at {gateway} (OpenAPI at {gateway}/docs). Ctrl-C stops everything.\n"
            f"Operator API key (admin of tenant `default`; make more with POST /v1/keys):\n"
            f"  export LORE_API_KEY={key}\n"
            f'  curl -H "Authorization: Bearer $LORE_API_KEY" {gateway}/v1/models',
            flush=True,
        )
        stop.wait()
        return 0
    finally:
        print("stopping ...", flush=True)
        stack.stop()


def _redis(args: argparse.Namespace) -> int:
    secrets = ensure_secrets(ROOT / ".run" / "secrets.json")
    server = RedisServer(
        port=args.port, data_dir=Path(args.dir).resolve(), password=secrets["redis-password"]
    )
    if args.action == "start":
        server.start()
        print(f"redis with search on 127.0.0.1:{args.port}, data in {server.data_dir}")
    else:
        with contextlib.suppress(redis_py.ConnectionError):
            server.client().shutdown(nosave=False)
        print(f"redis on port {args.port} stopped")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="lore_stack")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up")
    up.add_argument("--daprd", default=str(ROOT / ".cache" / "dapr" / "bin" / "daprd"))
    up.add_argument("--once", action="store_true", help="stop after printing the answer")
    up.add_argument("--broker", choices=["redis", "kafka"], default="redis", help="the pub/sub broker")
    up.add_argument(
        "--trusted-app-id",
        action="append",
        default=[],
        help="another service's app-id that may invoke lore-query and lore-ingest (repeatable)",
    )
    r = sub.add_parser("redis")
    r.add_argument("action", choices=["start", "stop"])
    r.add_argument("--port", type=int, default=6379)
    r.add_argument("--dir", default=str(ROOT / ".run" / "redis"))
    sub.add_parser("secrets")
    args = parser.parse_args()
    if args.command == "up":
        return _up(args)
    if args.command == "redis":
        return _redis(args)
    ensure_secrets(ROOT / ".run" / "secrets.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
