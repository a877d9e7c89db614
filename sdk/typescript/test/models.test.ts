// Training on the real Celery worker, promotion and rollback, then every kind of recommendation,
// scenarios and experiments, against a store with a generated shopping history (tests/factories.py:
// customers c0…c239, items i0…i95). The tests run in order and share the store.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { ConflictError, NotFoundError, Shelfwise, type TrainingJob } from "@shelfwise/client";

import { noLiveApi, requireLive } from "./live.js";

/** Polls `read` until `done` holds (routing changes reach every web process within 2 s). */
async function eventually<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 8000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

// Each web process reuses a store's routing (active version, scenarios, experiments) for up to
// SHELFWISE_SERVING_CONFIG_SECONDS (2 s): after a promotion, wait that long before asserting on
// what is served. (The browser tests, running alongside, read this store's recommendations.)
const ROUTING_SECONDS = 2;
let routingChangedAt = 0;

async function settled(): Promise<void> {
  const wait = routingChangedAt + ROUTING_SECONDS * 1000 + 300 - Date.now();
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
}

function client(): Shelfwise {
  const api = requireLive();
  return new Shelfwise({ apiKey: api.storeKey, baseUrl: api.url });
}

describe("models and recommendations", { skip: noLiveApi }, () => {
  test("train: the job is polled until it succeeds and its version is served", { timeout: 180_000 }, async () => {
    const shelfwise = client();

    const queued = await shelfwise.models.train();
    const busy = await shelfwise.models.train().catch((caught: unknown) => caught);
    const polled: TrainingJob[] = [];
    const done = await shelfwise.jobs.wait(queued.job_id, { intervalMs: 250, onPoll: (job) => polled.push(job) });
    const version = await shelfwise.models.get(1);

    assert.equal(queued.trigger, "manual");
    assert.ok(busy instanceof ConflictError);
    assert.equal(busy.code, "training_in_progress");
    assert.equal(busy.problem?.job_id, queued.job_id);
    assert.equal(done.status, "succeeded", done.error);
    assert.equal(done.version, 1);
    assert.equal(done.progress, 100);
    assert.ok(polled.length >= 1);
    assert.equal(version.status, "active");
    assert.equal(done.promoted, true, done.promotion_reason ?? "");
    assert.ok(["als", "bpr", "ease", "itemknn_cosine"].includes(version.algorithm), version.algorithm);
    assert.deepEqual(
      (await shelfwise.jobs.list()).map((job) => job.job_id),
      [queued.job_id],
    );
  });

  test("promote another version, then roll back", { timeout: 180_000 }, async () => {
    const shelfwise = client();

    const job = await shelfwise.models.train({ algorithm: "popularity" });
    assert.equal((await shelfwise.jobs.wait(job.job_id, { intervalMs: 250 })).status, "succeeded");
    const second = await shelfwise.models.get(2);
    const promoted = await shelfwise.models.promote(2, { reason: "try the baseline" });
    const listed = await shelfwise.models.list();
    const rolledBack = await shelfwise.models.rollback({ reason: "back to ALS" });
    routingChangedAt = Date.now();

    assert.equal(second.status, "ready");
    assert.equal(promoted.status, "active");
    assert.deepEqual(
      listed.map((version) => [version.version, version.status]),
      [
        [2, "active"],
        [1, "retired"],
      ],
    );
    assert.equal(rolledBack.version, 1);
    assert.equal(rolledBack.status, "active");
    assert.deepEqual(
      (await shelfwise.models.list({ status: "active" })).map((version) => version.version),
      [1],
    );
  });

  test("recommendations for a customer come from the model", async () => {
    const shelfwise = client();
    await settled();

    const answer = await shelfwise.recommendations.forCustomer("c0", { count: 5, fields: ["title"] });
    const narrowed = await shelfwise.recommendations.forCustomer("c0", {
      count: 5,
      exclude: answer.items.slice(0, 2).map((item) => item.item_id),
    });

    assert.equal(answer.strategy, "model");
    assert.equal(answer.model_version, 1);
    assert.equal(answer.scenario, "default");
    assert.equal(answer.items.length, 5);
    assert.match(answer.recommendation_id, /^rec_/);
    assert.ok(answer.items.every((item) => typeof item.score === "number" && /^i\d+$/.test(item.item_id)));
    const excluded = new Set(answer.items.slice(0, 2).map((item) => item.item_id));
    assert.ok(narrowed.items.every((item) => !excluded.has(item.item_id)));
  });

  test("similar items, popular, trending and a session", async () => {
    const shelfwise = client();

    const similar = await shelfwise.recommendations.similar("i0", { count: 4 });
    const popular = await shelfwise.recommendations.popular({ count: 3 });
    const trending = await shelfwise.recommendations.trending({ count: 3 });
    const session = await shelfwise.recommendations.session(["i0", "i6"], { count: 4, exclude: ["i12"] });

    assert.equal(similar.items.length, 4);
    assert.ok(similar.items.every((item) => item.item_id !== "i0"));
    assert.equal(popular.items.length, 3);
    assert.equal(trending.items.length, 3);
    assert.equal(session.items.length, 4);
    assert.ok(session.items.every((item) => !["i0", "i6", "i12"].includes(item.item_id)));
    await assert.rejects(shelfwise.recommendations.similar("no-such-item"), NotFoundError);
  });

  test("batch recommendations: answers in order, over 100 customers in several requests", async () => {
    const shelfwise = client();
    const requests = Array.from({ length: 130 }, (_, n) => ({ customer_id: `c${n}`, count: 3 }));

    const results = await shelfwise.recommendations.batch(requests);

    assert.equal(results.length, 130);
    assert.deepEqual(
      results.map((result) => result.customer_id),
      requests.map((request) => request.customer_id),
    );
    assert.ok(results.every((result) => result.items.length === 3 && result.strategy === "model"));
  });

  test("scenarios and experiments route recommendations", async () => {
    const shelfwise = client();

    const scenario = await shelfwise.scenarios.put("home", { name: "Home page", default_source: { kind: "popularity" } });
    const routed = await eventually(
      () => shelfwise.recommendations.forCustomer("c1", { scenario: "home" }),
      (answer) => answer.model_version === null,
    );
    await shelfwise.scenarios.put("cart", { default_source: { kind: "active" } });
    const experiment = await shelfwise.experiments.create({
      name: "ALS vs popularity",
      scenario: "cart",
      variants: [
        { key: "model", share: 50, source: { kind: "active" } },
        { key: "popular", share: 50, source: { kind: "popularity" } },
      ],
    });
    const renamed = await shelfwise.experiments.update(experiment.experiment_id, { name: "Cart test" });
    const started = await shelfwise.experiments.start(experiment.experiment_id);
    const inCart = await eventually(
      () => shelfwise.recommendations.forCustomer("c2", { scenario: "cart" }),
      (answer) => answer.variant !== "default",
    );
    const results = await shelfwise.experiments.results(experiment.experiment_id);
    const stopped = await shelfwise.experiments.stop(experiment.experiment_id);

    assert.equal(scenario.key, "home");
    assert.deepEqual(scenario.default_source, { kind: "popularity" });
    assert.ok((await shelfwise.scenarios.list()).some((listed) => listed.key === "home"));
    assert.equal(routed.scenario, "home");
    // A popularity source serves the fallback chain's popular items (strategy "fallback").
    assert.equal(routed.model_version, null);
    assert.notEqual(routed.strategy, "model");
    assert.equal(experiment.status, "draft");
    assert.equal(renamed.name, "Cart test");
    assert.equal(started.status, "running");
    assert.ok(["model", "popular"].includes(inCart.variant));
    assert.ok(typeof results === "object" && results !== null);
    assert.equal(stopped.status, "stopped");
    await shelfwise.scenarios.delete("home");
    await assert.rejects(shelfwise.scenarios.get("home"), NotFoundError);
  });
});
