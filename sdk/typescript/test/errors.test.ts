// The API's problem+json answers as typed errors, from the live API.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  AuthenticationError,
  ConflictError,
  NotFoundError,
  PermissionDeniedError,
  Shelfwise,
  ShelfwiseError,
  ValidationError,
} from "@shelfwise/client";

import { noLiveApi, requireLive } from "./live.js";

async function failure(promise: Promise<unknown>): Promise<ShelfwiseError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  assert.ok(error instanceof ShelfwiseError, `expected a ShelfwiseError, got ${String(error)}`);
  return error;
}

describe("errors", { skip: noLiveApi }, () => {
  test("the key works: whoami names the store and scopes", async () => {
    const api = requireLive();

    const me = await new Shelfwise({ apiKey: api.ingestKey, baseUrl: api.url }).whoami();

    assert.equal(me.key_kind, "secret");
    assert.ok(api.ingestKey.startsWith(`${me.key_prefix}_`));
    assert.ok(me.scopes.includes("ingest"));
  });

  test("a bad key is an AuthenticationError with its code and request id", async () => {
    const api = requireLive();
    const forged = `${api.ingestKey.slice(0, -4)}abcd`;

    const error = await failure(new Shelfwise({ apiKey: forged, baseUrl: api.url }).whoami());

    assert.ok(error instanceof AuthenticationError);
    assert.equal(error.status, 401);
    assert.equal(error.code, "invalid_api_key");
    assert.equal(error.title, "Invalid API key");
    assert.match(error.requestId ?? "", /^[A-Za-z0-9._:-]{8,128}$/);
  });

  test("a missing object is a NotFoundError", async () => {
    const api = requireLive();

    const error = await failure(new Shelfwise({ apiKey: api.ingestKey, baseUrl: api.url }).customers.get("nobody"));

    assert.ok(error instanceof NotFoundError);
    assert.equal(error.code, "not_found");
  });

  test("an invalid request is a ValidationError listing the fields", async () => {
    const api = requireLive();
    const shelfwise = new Shelfwise({ apiKey: api.ingestKey, baseUrl: api.url });

    const error = await failure(shelfwise.items.upsert({ item_id: "bad-item", currency: "pounds", price: -1 }));

    assert.ok(error instanceof ValidationError);
    assert.equal(error.status, 400);
    assert.equal(error.code, "validation_error");
    assert.deepEqual(error.errors.map((field) => field.field).sort(), ["currency", "price"]);
    assert.ok(error.errors.every((field) => field.code && field.message));
  });

  test("a public key cannot write the catalog: PermissionDeniedError insufficient_scope", async () => {
    const api = requireLive();

    const error = await failure(
      new Shelfwise({ apiKey: api.publicKey, baseUrl: api.url }).items.batch([{ item_id: "x" }]),
    );

    assert.ok(error instanceof PermissionDeniedError);
    assert.equal(error.code, "insufficient_scope");
  });

  test("rolling back with nothing to roll back to is a ConflictError", async () => {
    const api = requireLive();

    const error = await failure(new Shelfwise({ apiKey: api.ingestKey, baseUrl: api.url }).models.rollback());

    assert.ok(error instanceof ConflictError);
    assert.equal(error.code, "promotion_refused");
  });
});
