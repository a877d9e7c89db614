// The transport against a scripted local HTTP server: retries and backoff, Retry-After (seconds
// and HTTP dates), timeouts, network errors, aborts, error types, headers and chunking. No API needed.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { after, afterEach, before, describe, test } from "node:test";

import {
  ConflictError,
  NetworkError,
  RateLimitedError,
  ServerError,
  Shelfwise,
  TimeoutError,
  VERSION,
  ValidationError,
} from "@shelfwise/client";

interface Seen {
  method: string;
  path: string;
  headers: IncomingMessage["headers"];
  body: string;
  at: number;
}

type Script = (seen: Seen, count: number, response: ServerResponse) => void;

let server: ReturnType<typeof createServer>;
let baseUrl = "";
let script: Script = (_seen, _count, response) => json(response, 200, {});
let seen: Seen[] = [];

function json(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const type = status >= 400 ? "application/problem+json" : "application/json";
  response.writeHead(status, { "content-type": type, ...headers });
  response.end(JSON.stringify(body));
}

function problem(status: number, code: string, extra: Record<string, unknown> = {}) {
  return { type: `/api/problems/${code}`, title: code, status, detail: `${code} detail`, code, ...extra };
}

/** A fresh script and request log; returns a client with quick backoff. */
function scripted(next: Script, options: Partial<ConstructorParameters<typeof Shelfwise>[0]> = {}): Shelfwise {
  script = next;
  seen = [];
  return new Shelfwise({ apiKey: "sk_live_test_secret", baseUrl, retryBaseDelayMs: 5, ...options });
}

before(async () => {
  server = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk: Buffer) => (body += chunk.toString()));
    request.on("end", () => {
      const entry = {
        method: request.method ?? "",
        path: request.url ?? "",
        headers: request.headers,
        body,
        at: performance.now(),
      };
      seen.push(entry);
      script(entry, seen.length, response);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v1/`;
});

after(() => {
  server.closeAllConnections();
  server.close();
});

describe("retries", () => {
  test("5xx answers are retried with the same Idempotency-Key, then the answer is returned", async () => {
    const client = scripted((_seen, count, response) =>
      count < 3 ? json(response, 503, problem(503, "service_unavailable")) : json(response, 200, { ok: true }),
    );

    const result = await client.models.train({ algorithm: "als" });

    assert.deepEqual(result, { ok: true });
    assert.equal(seen.length, 3);
    const keys = new Set(seen.map((entry) => entry.headers["idempotency-key"]));
    assert.equal(keys.size, 1);
    assert.match(String([...keys][0]), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.ok(seen.every((entry) => entry.body === '{"algorithm":"als"}'));
  });

  test("each call gets its own Idempotency-Key; a given one is used as is; GETs send none", async () => {
    const client = scripted((_seen, _count, response) => json(response, 200, {}));

    await client.models.rollback();
    await client.models.rollback({}, { idempotencyKey: "my-key-1" });
    await client.models.list();

    assert.notEqual(seen[0]?.headers["idempotency-key"], undefined);
    assert.equal(seen[1]?.headers["idempotency-key"], "my-key-1");
    assert.equal(seen[2]?.headers["idempotency-key"], undefined);
  });

  test("Retry-After as an HTTP date is waited for", async () => {
    let retryAt = 0;
    const client = scripted((_seen, count, response) => {
      if (count === 1) {
        retryAt = Date.now() + 1500;
        json(response, 429, problem(429, "rate_limited"), { "retry-after": new Date(retryAt).toUTCString() });
      } else {
        json(response, 200, { results: [], next_cursor: null });
      }
    });

    await client.items.list();

    assert.equal(seen.length, 2);
    // HTTP dates have whole seconds: the retry comes at the date, rounded down.
    assert.ok(Date.now() >= Math.floor(retryAt / 1000) * 1000, "retried before the Retry-After date");
  });

  test("a Retry-After longer than maxRetryAfterMs is not waited for: RateLimitedError with retryAfter", async () => {
    const client = scripted((_seen, _count, response) =>
      json(response, 429, problem(429, "training_quota_exceeded"), { "retry-after": "3600" }),
    );

    const error = await client.models.train().catch((caught: unknown) => caught);

    assert.ok(error instanceof RateLimitedError);
    assert.equal(error.retryAfter, 3600);
    assert.equal(error.code, "training_quota_exceeded");
    assert.equal(seen.length, 1);
  });

  test("4xx answers are not retried; 409 idempotency_in_progress is", async () => {
    const refused = scripted((_seen, _count, response) =>
      json(response, 409, problem(409, "training_in_progress", { job_id: "j1" })),
    );
    const conflict = await refused.models.train().catch((caught: unknown) => caught);
    assert.ok(conflict instanceof ConflictError);
    assert.equal(conflict.problem?.job_id, "j1");
    assert.equal(seen.length, 1);

    const busy = scripted((_seen, count, response) =>
      count === 1
        ? json(response, 409, problem(409, "idempotency_in_progress"), { "retry-after": "0" })
        : json(response, 200, { job_id: "j2" }),
    );
    assert.deepEqual(await busy.models.train(), { job_id: "j2" });
    assert.equal(seen.length, 2);
  });

  test("after maxRetries the last error is thrown, typed by status", async () => {
    const client = scripted((_seen, _count, response) => {
      response.writeHead(502, { "content-type": "text/html" });
      response.end("<html>Bad gateway</html>");
    }, { maxRetries: 2 });

    const error = await client.whoami().catch((caught: unknown) => caught);

    assert.ok(error instanceof ServerError);
    assert.equal(error.status, 502);
    assert.equal(error.code, "http_502");
    assert.match(error.detail, /Bad gateway/);
    assert.equal(seen.length, 3);
  });
});

describe("no answer", () => {
  test("an attempt that takes longer than timeoutMs is a TimeoutError (after retries)", async () => {
    const client = scripted(() => undefined /* never answers */, { timeoutMs: 150, maxRetries: 1 });

    const started = performance.now();
    const error = await client.whoami().catch((caught: unknown) => caught);

    assert.ok(error instanceof TimeoutError);
    assert.ok(error instanceof NetworkError);
    assert.equal(error.status, 0);
    assert.equal(error.code, "timeout");
    assert.equal(seen.length, 2);
    assert.ok(performance.now() - started >= 300);
  });

  test("a refused connection is a NetworkError", async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const client = new Shelfwise({ apiKey: "sk_x", baseUrl: `http://127.0.0.1:${port}`, maxRetries: 1, retryBaseDelayMs: 5 });

    const error = await client.whoami().catch((caught: unknown) => caught);

    assert.ok(error instanceof NetworkError);
    assert.ok(!(error instanceof TimeoutError));
    assert.equal(error.code, "network_error");
    assert.match(error.detail, /ECONNREFUSED/);
  });

  test("the caller's signal cancels a call waiting to retry", async () => {
    const client = scripted((_seen, _count, response) =>
      json(response, 503, problem(503, "service_unavailable"), { "retry-after": "30" }),
    );
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);

    const started = performance.now();
    const error = await client.whoami({ signal: controller.signal }).catch((caught: unknown) => caught);

    assert.ok(error instanceof Error);
    assert.equal(error.name, "AbortError");
    assert.ok(performance.now() - started < 5000);
    assert.equal(seen.length, 1);
  });
});

describe("requests", () => {
  test("Node sends User-Agent shelfwise-typescript/<version> (node <version>); VERSION is package.json's", async () => {
    const client = scripted((_seen, _count, response) => json(response, 200, {}));
    const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };

    await client.whoami({ requestId: "req-12345678" });

    assert.equal(VERSION, pkg.version);
    assert.equal(seen[0]?.headers["user-agent"], `shelfwise-typescript/${pkg.version} (node ${process.versions.node})`);
    assert.equal(seen[0]?.headers["authorization"], "Bearer sk_live_test_secret");
    assert.equal(seen[0]?.headers["x-request-id"], "req-12345678");
    assert.equal(seen[0]?.path, "/api/v1/whoami");
  });

  test("path parameters are encoded; filters become query parameters", async () => {
    const client = scripted((_seen, _count, response) => json(response, 200, {}));

    await client.recommendations.similar("a b/c?", {
      count: 5,
      exclude: ["x", "y"],
      fields: ["title", "price"],
      categories: ["kitchen", "garden"],
      categoriesMatch: "all",
      priceMax: 20,
      inStock: true,
      properties: { colour: ["red", "blue"], size: "5" },
      customer: "c1",
    });

    const url = new URL(seen[0]?.path ?? "", "http://x");
    assert.equal(url.pathname, "/api/v1/items/a%20b%2Fc%3F/similar");
    assert.deepEqual(Object.fromEntries(url.searchParams), {
      count: "5",
      exclude: "x,y",
      fields: "title,price",
      category: "kitchen,garden",
      categories_match: "all",
      price_max: "20",
      in_stock: "true",
      "prop.colour": "red,blue",
      "prop.size": "5",
      customer: "c1",
    });
  });

  test("a problem+json answer becomes a typed error with every member", async () => {
    const client = scripted((_seen, _count, response) =>
      json(response, 400, {
        ...problem(400, "validation_error"),
        request_id: "rid-1",
        errors: [{ field: "price", code: "invalid", message: "not a number" }],
      }),
    );

    const error = await client.items.upsert({ item_id: "i1" }).catch((caught: unknown) => caught);

    assert.ok(error instanceof ValidationError);
    assert.equal(error.name, "ValidationError");
    assert.equal(error.status, 400);
    assert.equal(error.code, "validation_error");
    assert.equal(error.title, "validation_error");
    assert.equal(error.detail, "validation_error detail");
    assert.equal(error.type, "/api/problems/validation_error");
    assert.equal(error.requestId, "rid-1");
    assert.deepEqual(error.errors, [{ field: "price", code: "invalid", message: "not a number" }]);
    assert.match(error.message, /validation_error, HTTP 400, request rid-1/);
  });
});

describe("Idempotency-Keys without crypto.randomUUID", () => {
  const original = Object.getOwnPropertyDescriptor(globalThis, "crypto");
  const real = globalThis.crypto;
  const UUID4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

  afterEach(() => {
    if (original) Object.defineProperty(globalThis, "crypto", original);
  });

  test("from getRandomValues (pages served over plain http)", async () => {
    Object.defineProperty(globalThis, "crypto", {
      value: { getRandomValues: real.getRandomValues.bind(real) },
      configurable: true,
    });
    const client = scripted((_seen, _count, response) => json(response, 200, {}));

    await client.models.rollback();
    await client.models.rollback();

    assert.match(String(seen[0]?.headers["idempotency-key"]), UUID4);
    assert.notEqual(seen[0]?.headers["idempotency-key"], seen[1]?.headers["idempotency-key"]);
  });

  test("from node:crypto where there is no global crypto (Node 18)", async () => {
    Object.defineProperty(globalThis, "crypto", { value: undefined, configurable: true });
    const client = scripted((_seen, _count, response) => json(response, 200, {}));

    await client.models.rollback();

    assert.match(String(seen[0]?.headers["idempotency-key"]), UUID4);
  });
});

describe("chunking", () => {
  test("batches split by bytes too; counts are summed and errors re-indexed", async () => {
    const client = scripted((entry, _count, response) => {
      const rows = (JSON.parse(entry.body) as { items: { item_id: string }[] }).items;
      const bad = rows.flatMap((row, index) => (row.item_id.endsWith("7") ? [index] : []));
      json(response, 200, {
        received: rows.length,
        created: rows.length - bad.length,
        updated: 0,
        unchanged: 0,
        rejected: bad.length,
        errors: bad.map((index) => ({ index, field: "item_id", code: "invalid", message: "no sevens" })),
        errors_truncated: false,
      });
    });
    const items = Array.from({ length: 30 }, (_, n) => ({ item_id: `item-${n}`, title: "x".repeat(100) }));

    const result = await client.items.batch(items, { maxChunkBytes: 1000 });

    assert.ok(seen.length > 3);
    assert.ok(seen.every((entry) => Buffer.byteLength(entry.body) <= 1000));
    assert.equal(new Set(seen.map((entry) => entry.headers["idempotency-key"])).size, seen.length);
    assert.equal(result.received, 30);
    assert.equal(result.created, 27);
    assert.equal(result.rejected, 3);
    assert.deepEqual(
      result.errors.map((error) => error.index),
      [7, 17, 27],
    );
  });

  test("an empty batch sends nothing", async () => {
    const client = scripted((_seen, _count, response) => json(response, 500, {}));

    const result = await client.events.send([]);

    assert.equal(seen.length, 0);
    assert.equal(result.received, 0);
  });
});
