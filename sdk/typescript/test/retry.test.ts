// Retries through the pytest driver's proxy in front of the live API. The driver arms it to answer
// the first POST /api/v1/events with 429 + Retry-After: 1 (not forwarded); the second test arms it
// to forward a POST and then answer 503, as if the answer were lost on the way back.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { Shelfwise } from "@shelfwise/client";

import { noLiveApi, recordingFetch, requireLive } from "./live.js";

interface ProxyRecord {
  method: string;
  path: string;
  idempotency_key: string | null;
  status: number;
  forwarded: boolean;
  at: number;
}

async function proxyLog(): Promise<ProxyRecord[]> {
  const response = await fetch(`${requireLive().proxyUrl}/__proxy__/log`);
  return (await response.json()) as ProxyRecord[];
}

const run = Date.now().toString(36);

describe("retries through a proxy", { skip: noLiveApi }, () => {
  test("a 429 is retried after Retry-After with the same Idempotency-Key; the event is stored once", async () => {
    const api = requireLive();
    const recorder = recordingFetch();
    const shelfwise = new Shelfwise({ apiKey: api.ingestKey, baseUrl: api.proxyUrl, fetch: recorder.fetch });
    const customer = `retry-${run}`;

    const started = performance.now();
    const result = await shelfwise.events.send({
      event_id: `retry-${run}`,
      customer_id: customer,
      item_id: "retried-item",
      type: "view",
    });
    const elapsed = performance.now() - started;

    const posts = (await proxyLog()).filter((record) => record.method === "POST" && record.path === "/api/v1/events");
    assert.deepEqual(
      posts.map((record) => [record.status, record.forwarded]),
      [
        [429, false],
        [200, true],
      ],
    );
    assert.ok(posts[0]?.idempotency_key, "the first attempt carried an Idempotency-Key");
    assert.equal(posts[1]?.idempotency_key, posts[0]?.idempotency_key);
    assert.ok((posts[1]?.at ?? 0) - (posts[0]?.at ?? 0) >= 1.0, "retried before Retry-After: 1");
    assert.ok(elapsed >= 1000);
    assert.deepEqual(
      recorder.sent.map((entry) => entry.status),
      [429, 200],
    );
    assert.deepEqual([result.received, result.stored, result.duplicates], [1, 1, 0]);
    const history = await shelfwise.customers.events(customer);
    assert.equal(history.results.length, 1);
  });

  test("a POST whose answer was lost is replayed by the API, not done twice", async () => {
    const api = requireLive();
    const armed = await fetch(`${api.proxyUrl}/__proxy__/arm`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ method: "POST", path: "/api/v1/events", mode: "forward_then_503" }),
    });
    assert.equal(armed.status, 204);
    const recorder = recordingFetch();
    const shelfwise = new Shelfwise({ apiKey: api.ingestKey, baseUrl: api.proxyUrl, fetch: recorder.fetch });
    const customer = `replay-${run}`;

    // No event_id: without the Idempotency-Key the retry would store the event a second time.
    const result = await shelfwise.events.send({ customer_id: customer, item_id: "replayed-item", type: "view" });

    assert.deepEqual(
      recorder.sent.map((entry) => entry.status),
      [503, 200],
    );
    assert.equal(recorder.sent[1]?.headers["idempotency-key"], recorder.sent[0]?.headers["idempotency-key"]);
    assert.equal(recorder.sent[1]?.responseHeaders.get("idempotent-replayed"), "true");
    assert.deepEqual([result.received, result.stored], [1, 1]);
    const history = await shelfwise.customers.events(customer);
    assert.equal(history.results.length, 1);
  });
});
