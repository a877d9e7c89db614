// Items, customers and events against the live API: single upserts, batches, and a batch over
// the API's 10,000 rows sent in chunks, its counts summed and per-row errors at the caller's indices.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { NotFoundError, Shelfwise, ValidationError, type EventInput } from "@shelfwise/client";

import { noLiveApi, recordingFetch, requireLive } from "./live.js";

const run = `${Date.now().toString(36)}`;

function client(options: { fetch?: typeof fetch } = {}): Shelfwise {
  const api = requireLive();
  return new Shelfwise({ apiKey: api.ingestKey, baseUrl: `${api.url}/api/v1/`, ...options });
}

describe("items", { skip: noLiveApi }, () => {
  test("upsert creates and replaces one item; get reads it; delete hides it", async () => {
    const shelfwise = client();
    const id = `lamp-${run}`;

    const created = await shelfwise.items.upsert({
      item_id: id,
      title: "Desk lamp",
      categories: ["lighting"],
      price: 24.5,
      currency: "GBP",
      properties: { colour: "black", sizes: [1, 2] },
    });
    const replaced = await shelfwise.items.upsert({ item_id: id, title: "Desk lamp (LED)", price: 19.99 });
    const read = await shelfwise.items.get(id);
    await shelfwise.items.delete(id);
    const listed = await shelfwise.items.list({ include_deleted: true, limit: 1000 });

    assert.equal(created.item_id, id);
    assert.equal(created.price, 24.5);
    assert.deepEqual(created.properties, { colour: "black", sizes: [1, 2] });
    assert.equal(replaced.title, "Desk lamp (LED)");
    assert.deepEqual(replaced.categories, []);
    assert.equal(read.price, 19.99);
    assert.ok(listed.results.find((item) => item.item_id === id)?.deleted_at);
    await assert.rejects(shelfwise.items.get(`missing-${run}`), NotFoundError);
  });

  test("batch upserts and reports bad rows by index", async () => {
    const shelfwise = client();

    const result = await shelfwise.items.batch([
      { item_id: `b1-${run}`, title: "One" },
      { item_id: `b2-${run}`, currency: "pounds" },
      { item_id: `b3-${run}`, title: "Three" },
    ]);

    assert.deepEqual(
      { received: result.received, created: result.created, rejected: result.rejected },
      { received: 3, created: 2, rejected: 1 },
    );
    assert.deepEqual(
      result.errors.map(({ index, field }) => ({ index, field })),
      [{ index: 1, field: "currency" }],
    );
  });
});

describe("customers", { skip: noLiveApi }, () => {
  test("upsert, get, batch and iterate", async () => {
    const shelfwise = client();
    const id = `ann-${run}`;

    const created = await shelfwise.customers.upsert({ customer_id: id, properties: { tier: "gold" } });
    const read = await shelfwise.customers.get(id);
    const batch = await shelfwise.customers.batch([
      { customer_id: id, properties: { tier: "silver" } },
      { customer_id: `bob-${run}`, anonymous: true },
    ]);
    const seen: string[] = [];
    for await (const customer of shelfwise.customers.iterate({ limit: 1 })) seen.push(customer.customer_id);

    assert.equal(created.customer_id, id);
    assert.deepEqual(read.properties, { tier: "gold" });
    assert.deepEqual([batch.received, batch.created, batch.updated], [2, 1, 1]);
    assert.ok(seen.includes(id) && seen.includes(`bob-${run}`), "iterate follows next_cursor");
  });

  test("a batch over 10,000 rows is sent in chunks; counts add up and errors keep the caller's indices", async () => {
    const recorder = recordingFetch();
    const shelfwise = client({ fetch: recorder.fetch });
    const rows = Array.from({ length: 10_005 }, (_, n) => ({ customer_id: `big-${run}-${n}` }));
    rows[2] = { customer_id: "has a space" };
    rows[10_003] = { customer_id: "" };

    const result = await shelfwise.customers.batch(rows);

    const posts = recorder.sent.filter((entry) => entry.url.endsWith("/customers:batch"));
    assert.deepEqual(
      posts.map((entry) => (JSON.parse(entry.body ?? "{}") as { customers: unknown[] }).customers.length),
      [10_000, 5],
    );
    assert.equal(new Set(posts.map((entry) => entry.headers["idempotency-key"])).size, 2);
    assert.deepEqual(
      { received: result.received, created: result.created, rejected: result.rejected },
      { received: 10_005, created: 10_003, rejected: 2 },
    );
    assert.deepEqual(
      result.errors.map(({ index, field }) => ({ index, field })),
      [
        { index: 2, field: "customer_id" },
        { index: 10_003, field: "customer_id" },
      ],
    );
    const last = await shelfwise.customers.get(`big-${run}-10004`);
    assert.equal(last.customer_id, `big-${run}-10004`);
  });
});

describe("events", { skip: noLiveApi }, () => {
  const event = (n: number, extra: Partial<EventInput> = {}): EventInput => ({
    event_id: `ev-${run}-${n}`,
    customer_id: `shopper-${run}`,
    item_id: `thing-${n % 3}-${run}`,
    type: "view",
    ...extra,
  });

  test("one event, then a batch; a re-sent event is a duplicate", async () => {
    const shelfwise = client();

    const one = await shelfwise.events.send(event(0, { type: "purchase", value: 2 }));
    const batch = await shelfwise.events.send([event(0), event(1), event(2, { type: "rating" })]);
    const history = await shelfwise.customers.events(`shopper-${run}`);

    assert.deepEqual(
      [one.received, one.stored, one.customers_created, one.items_created],
      [1, 1, 1, 1],
    );
    assert.deepEqual([batch.received, batch.stored, batch.duplicates, batch.rejected], [3, 1, 1, 1]);
    assert.deepEqual(
      batch.errors.map(({ index, field }) => ({ index, field })),
      [{ index: 2, field: "value" }],
    );
    assert.deepEqual(history.results.map((stored) => stored.event_id).sort(), [`ev-${run}-0`, `ev-${run}-1`]);
  });

  test("chunks where no row is accepted count as rejected; the batch's other chunks are stored", async () => {
    const shelfwise = client();
    const rows = Array.from({ length: 25 }, (_, n) =>
      n >= 10 && n < 20 ? event(100 + n, { type: "Not A Type" }) : event(100 + n),
    );
    rows[3] = event(103, { customer_id: "" });

    const result = await shelfwise.events.send(rows, { chunkSize: 10 });

    assert.deepEqual([result.received, result.stored, result.rejected], [25, 14, 11]);
    assert.deepEqual(
      result.errors.map((error) => error.index),
      [3, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19],
    );
  });

  test("when no row of a chunked batch is accepted, ValidationError carries every row's error", async () => {
    const shelfwise = client();
    const rows = Array.from({ length: 4 }, (_, n) => event(200 + n, { type: "Nope" }));

    const error = await shelfwise.events.send(rows, { chunkSize: 2 }).catch((caught: unknown) => caught);

    assert.ok(error instanceof ValidationError);
    assert.equal(error.code, "validation_error");
    assert.deepEqual(
      error.errors.map((row) => row.index),
      [0, 1, 2, 3],
    );
  });
});
