// The browser build (package.json "exports": the "browser" condition, and "./browser"): the same
// client, but it accepts only public keys (pk_…) wherever it runs, including web and service
// workers, where `window`/`document` detection would not see a browser. It sends no User-Agent and
// no header beyond those the API's CORS policy allows (authorization, content-type,
// idempotency-key, x-request-id, shelfwise-customer-token).

import { ShelfwiseClient } from "./client.js";
import type { ClientOptions } from "./http.js";

export * from "./exports.js";

/** The Shelfwise API client for browsers: public keys only. */
export class Shelfwise extends ShelfwiseClient {
  constructor(options: ClientOptions) {
    super(options, true);
  }
}

/** Which build this is: "universal" in the main build, "browser" here. */
export const ENTRY = "browser";
