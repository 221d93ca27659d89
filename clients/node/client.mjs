// A Node.js caller of Lore that knows only the published contracts (../../contracts) and its own
// Dapr sidecar, through the official Dapr JavaScript SDK:
//
//   1. publishes an ingestion event (a `QueuedDocument`) to `pubsub` / `lore.documents`;
//   2. waits for the `document.indexed` completion event on `lore.events` (a subscription whose
//      routing rules match the CloudEvent `type`; `document.failed` ends the wait as a failure);
//   3. invokes lore-query's `POST answers` and checks that a citation names the document.
//
// Exit code 0 on success (one JSON summary line on stdout), 1 with a message on stderr otherwise.
//
// Environment: DAPR_HTTP_PORT (the sidecar's HTTP port), APP_PORT (where this process receives
// events; the sidecar's --app-port), DAPR_API_TOKEN (sent to the sidecar, when it requires one),
// APP_API_TOKEN (the token the sidecar sends with each delivery, when it is started with one).

import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";

import { CommunicationProtocolEnum, DaprServer, DaprPubSubStatusEnum, HttpMethod, LogLevel } from "@dapr/dapr";

const { values: args } = parseArgs({
  options: {
    pubsub: { type: "string", default: "pubsub" },
    "ingest-topic": { type: "string", default: "lore.documents" },
    "events-topic": { type: "string", default: "lore.events" },
    "ingest-app-id": { type: "string", default: "lore-ingest" },
    "query-app-id": { type: "string", default: "lore-query" },
    tenant: { type: "string" },
    timeout: { type: "string", default: "120" },
  },
});

class Failure extends Error {}

function env(name, fallback) {
  const value = process.env[name] ?? fallback;
  if (value === undefined || value === "") throw new Failure(`environment variable ${name} is not set`);
  return value;
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// `data` is a JSON object when the publisher declared JSON (Lore does); anything else arrives as a
// string, parsed here when it holds JSON.
function parseData(data) {
  if (typeof data !== "string") return data;
  try {
    return JSON.parse(data);
  } catch {
    return data;
  }
}

// lore-ingest and lore-query answer an expected refusal (not found, invalid, too large) with HTTP
// 200 and `{"outcome": "refused", "error", "detail", "status"}` so that callers' circuit breakers
// count only real failures (contracts/schemas/Refusal.json).
function refused(body) {
  return body !== null && typeof body === "object" && body.outcome === "refused";
}

async function main() {
  const timeoutMs = Number(args.timeout) * 1000;
  const pubsub = args.pubsub;
  const run = randomBytes(4).toString("hex");
  // A tenant of its own: the answer can only cite this run's document.
  const tenant = args.tenant ?? `node-${run}`;
  const documentId = `node-client-${run}`;
  const codeword = `ORCHID-${run.toUpperCase()}`;
  const appToken = process.env.APP_API_TOKEN;

  const server = new DaprServer({
    serverHost: "127.0.0.1",
    serverPort: env("APP_PORT"),
    communicationProtocol: CommunicationProtocolEnum.HTTP,
    clientOptions: {
      daprHost: "127.0.0.1",
      daprPort: env("DAPR_HTTP_PORT", "3500"),
      daprApiToken: process.env.DAPR_API_TOKEN || undefined,
      communicationProtocol: CommunicationProtocolEnum.HTTP,
      // The server's parts log through the client's logger: stdout is kept for the summary.
      logger: { level: LogLevel.Warn },
    },
    logger: { level: LogLevel.Warn },
  });

  // The SDK hands a subscription callback the CloudEvent's `data` and the request headers; the
  // whole envelope (`id`, `type`, `source`, ...) is kept here, keyed by that headers object.
  const envelopes = new WeakMap();
  server.daprServer.getServer().use((req, res, next) => {
    // The sidecar proves itself with the app token on every call it makes to this process.
    if (appToken && req.get("dapr-api-token") !== appToken) {
      return res.status(401).send("missing or wrong dapr-api-token");
    }
    if (req.method === "POST" && req.body && typeof req.body === "object") envelopes.set(req.headers, req.body);
    return next();
  });

  let settle;
  const outcome = new Promise((resolve) => {
    settle = resolve;
  });
  const ours = (status) => status && status.tenant === tenant && status.document_id === documentId;
  // Routing rules on the CloudEvent `type`: Dapr evaluates them before delivery, so each handler
  // sees one kind of completion event. Other events on the topic (other documents, jobs) are
  // acknowledged by the default route.
  await server.pubsub.subscribeWithOptions(pubsub, args["events-topic"], {
    route: {
      rules: [
        { match: 'event.type == "document.indexed"', path: "indexed" },
        { match: 'event.type == "document.failed"', path: "failed" },
      ],
      default: "other",
    },
  });
  for (const [route, type] of [
    ["indexed", "document.indexed"],
    ["failed", "document.failed"],
  ]) {
    server.pubsub.subscribeToRoute(pubsub, args["events-topic"], route, async (data, headers) => {
      const status = parseData(data);
      if (ours(status)) settle({ via: `event ${type}`, status, event: envelopes.get(headers) ?? null });
      return DaprPubSubStatusEnum.SUCCESS;
    });
  }

  await server.start();
  const client = server.client;
  try {
    // Not counted in --timeout: a loaded machine may take a while to connect sidecar and app.
    await untilSubscribed(client, pubsub, args["events-topic"], 60_000);

    const document = {
      id: documentId,
      tenant,
      title: `Node client check ${run}`,
      source: `node-client://${run}`,
      text:
        `The launch code of the Node.js test client is ${codeword}. ` +
        "It is published as an ingestion event through the client's own Dapr sidecar.",
      metadata: { client: "node", run },
    };
    // The SDK sends a JSON body; the sidecar wraps it in a CloudEvent (type com.dapr.event.sent,
    // datacontenttype application/json) and lore-ingest reads `data` as a QueuedDocument.
    const published = await client.pubsub.publish(pubsub, args["ingest-topic"], document);
    if (published.error) throw new Failure(`publishing to ${pubsub}/${args["ingest-topic"]} failed: ${published.error}`);

    const result = await Promise.race([outcome, sleep(timeoutMs).then(() => null)]);
    if (result === null) {
      // Tells "not indexed" apart from "indexed, but no event came".
      const status = await client.invoker.invoke(
        args["ingest-app-id"],
        `documents/${tenant}/${documentId}`,
        HttpMethod.GET,
      );
      throw new Failure(
        `no completion event for ${tenant}/${documentId} on ${pubsub}/${args["events-topic"]} within ` +
          `${args.timeout}s; lore-ingest reports: ${JSON.stringify(status)}`,
      );
    }
    if (result.status.state !== "indexed") {
      throw new Failure(`document ${documentId} was not indexed (${result.via}): ${JSON.stringify(result.status)}`);
    }

    const answer = await client.invoker.invoke(args["query-app-id"], "answers", HttpMethod.POST, {
      question: "What is the launch code of the Node.js test client?",
      tenant,
    });
    if (refused(answer)) throw new Failure(`lore-query refused the question: ${JSON.stringify(answer)}`);
    const citations = Array.isArray(answer?.citations) ? answer.citations : [];
    const cited = citations.find((c) => c.document_id === documentId);
    if (!cited) {
      throw new Failure(`no citation names ${documentId}: ${JSON.stringify(answer)}`);
    }
    if (!String(answer.answer).includes(codeword)) {
      throw new Failure(`the answer does not contain ${codeword}: ${JSON.stringify(answer.answer)}`);
    }
    process.stdout.write(
      JSON.stringify({
        ok: true,
        tenant,
        document_id: documentId,
        waited_via: result.via,
        chunks: result.status.chunks,
        answer: answer.answer,
        citation: { marker: cited.marker, document_id: cited.document_id, score: cited.score },
        // The completion event as delivered (CloudEvent envelope), for checks against the contracts.
        event: result.event ?? null,
      }) + "\n",
    );
  } finally {
    await server.stop();
  }
}

// Waits until the sidecar has read this app's subscriptions (GET /dapr/subscribe happens after the
// app port opens), so that the completion event cannot be published before anyone listens.
async function untilSubscribed(client, pubsub, topic, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const metadata = await client.metadata.get();
    const subscriptions = metadata?.subscriptions ?? [];
    if (subscriptions.some((s) => s.pubsubname === pubsub && s.topic === topic)) return;
    await sleep(200);
  }
  throw new Failure(`the sidecar never subscribed to ${pubsub}/${topic}`);
}

main().then(
  () => process.exit(0),
  (error) => {
    const message = error instanceof Failure ? error.message : (error?.stack ?? String(error));
    process.stderr.write(`node client FAILED: ${message}\n`);
    process.exit(1);
  },
);
