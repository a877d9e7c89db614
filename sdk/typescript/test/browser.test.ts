// The browser rule: in a page (window and document defined) and in the browser build everywhere,
// only public keys are accepted, and requests carry only the headers the API's CORS policy allows.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, test } from "node:test";

import { ConfigurationError, ENTRY, Shelfwise } from "@shelfwise/client";
import { ENTRY as BROWSER_ENTRY, Shelfwise as BrowserShelfwise } from "@shelfwise/client/browser";

import { noLiveApi, recordingFetch, requireLive } from "./live.js";

const CORS_ALLOWED = new Set([
  "authorization",
  "content-type",
  "idempotency-key",
  "x-request-id",
  "shelfwise-customer-token",
]);
const scope = globalThis as Record<string, unknown>;
const packageDir = fileURLToPath(new URL("../..", import.meta.url));

function simulatePage(): void {
  scope.window = {};
  scope.document = {};
}

function leavePage(): void {
  delete scope.window;
  delete scope.document;
}

describe("in a page", () => {
  beforeEach(simulatePage);
  afterEach(leavePage);

  test("a secret key is refused before anything is sent", () => {
    const recorder = recordingFetch();

    assert.throws(
      () => new Shelfwise({ apiKey: "sk_live_abc_def", baseUrl: "http://127.0.0.1:9", fetch: recorder.fetch }),
      (error: unknown) => error instanceof ConfigurationError && /public key \(pk_…\)/.test(error.message),
    );
    assert.equal(recorder.sent.length, 0);
  });

  test("a public key reads recommendations and sends events, with CORS-safe headers only", { skip: noLiveApi }, async () => {
    const api = requireLive();
    const recorder = recordingFetch();
    const shelfwise = new Shelfwise({ apiKey: api.publicKey, baseUrl: api.url, fetch: recorder.fetch });

    const popular = await shelfwise.recommendations.popular({ count: 2 });
    const forCustomer = await shelfwise.recommendations.forCustomer("c3", { count: 2 });
    const sent = await shelfwise.events.send(
      { event_id: `pk-${Date.now()}`, customer_id: "c3", item_id: forCustomer.items[0]?.item_id ?? "i1", type: "view", recommendation_id: forCustomer.recommendation_id },
      { requestId: "browser-request-1" },
    );

    assert.equal(popular.items.length, 2);
    assert.equal(sent.stored, 1);
    assert.equal(recorder.sent.length, 3);
    for (const request of recorder.sent) {
      const names = Object.keys(request.headers);
      assert.ok(
        names.every((name) => CORS_ALLOWED.has(name)),
        `${request.method} ${request.url} sent ${names.join(", ")}`,
      );
    }
    assert.equal(recorder.sent[2]?.headers["x-request-id"], "browser-request-1");
    assert.equal(recorder.sent[2]?.responseHeaders.get("x-request-id"), "browser-request-1");
  });

  test("a public key reads a shopper's personal list only with their customer token", { skip: noLiveApi }, async () => {
    const api = requireLive();
    const recorder = recordingFetch();
    const shelfwise = new Shelfwise({ apiKey: api.publicKey, baseUrl: api.url, fetch: recorder.fetch });

    const anonymous = await shelfwise.recommendations.forCustomer("c3", { count: 3, excludeSeen: false });
    const nobody = await shelfwise.recommendations.forCustomer("nobody-at-all", { count: 3, excludeSeen: false });
    const signedIn = await shelfwise.recommendations.forCustomer("c3", { count: 3, customerToken: api.customerToken });
    const wrongCustomer = await shelfwise.recommendations.forCustomer("c4", { count: 3, customerToken: api.customerToken });

    // Without its token, the same answer as for a shopper who does not exist.
    assert.equal(anonymous.strategy, nobody.strategy);
    assert.deepEqual(anonymous.items.map((item) => item.item_id), nobody.items.map((item) => item.item_id));
    assert.equal(recorder.sent[0]?.headers["shelfwise-customer-token"], undefined);
    assert.equal(recorder.sent[0]?.responseHeaders.get("x-shelfwise-customer-token"), "missing");
    assert.equal(recorder.sent[2]?.headers["shelfwise-customer-token"], api.customerToken);
    assert.equal(recorder.sent[2]?.responseHeaders.get("x-shelfwise-customer-token"), "valid");
    assert.equal(recorder.sent[3]?.responseHeaders.get("x-shelfwise-customer-token"), "invalid");
    assert.equal(wrongCustomer.strategy, nobody.strategy);
    assert.equal(signedIn.items.length, 3);
    for (const request of recorder.sent) {
      assert.ok(Object.keys(request.headers).every((name) => CORS_ALLOWED.has(name)));
    }
  });
});

describe("the browser build", () => {
  test("refuses a secret key even where no page is detected (web workers)", () => {
    assert.equal(typeof scope.window, "undefined");
    assert.equal(BROWSER_ENTRY, "browser");
    assert.throws(
      () => new BrowserShelfwise({ apiKey: "sk_live_abc_def", baseUrl: "http://127.0.0.1:9" }),
      ConfigurationError,
    );
    assert.doesNotThrow(() => new BrowserShelfwise({ apiKey: "pk_live_abc_def", baseUrl: "http://127.0.0.1:9" }));
    assert.doesNotThrow(() => new Shelfwise({ apiKey: "sk_live_abc_def", baseUrl: "http://127.0.0.1:9" }));
  });

  test('is what the "browser" export condition resolves to', () => {
    const resolved = (conditions: string[]) =>
      spawnSync(
        process.execPath,
        [...conditions, "--input-type=module", "-e", "const m = await import('@shelfwise/client'); console.log(m.ENTRY)"],
        { cwd: packageDir, encoding: "utf8" },
      );

    const browser = resolved(["--conditions=browser"]);
    const node = resolved([]);

    assert.equal(browser.stdout.trim(), "browser", browser.stderr);
    assert.equal(node.stdout.trim(), ENTRY, node.stderr);
    assert.equal(ENTRY, "universal");
  });
});
