// The package's main entry (Node 18+, Deno, Bun, and browsers whose bundler ignores the "browser"
// condition): a secret key is refused when a page is detected (`window` and `document` defined).

import { ShelfwiseClient } from "./client.js";
import type { ClientOptions } from "./http.js";

export * from "./exports.js";

/**
 * The Shelfwise API client.
 *
 * ```ts
 * const shelfwise = new Shelfwise({ apiKey: process.env.SHELFWISE_KEY!, baseUrl: "http://localhost:8000" });
 * const { items } = await shelfwise.recommendations.forCustomer("c42", { count: 5 });
 * ```
 */
export class Shelfwise extends ShelfwiseClient {
  constructor(options: ClientOptions) {
    super(options, false);
  }
}

/** Which build this is: "universal" here, "browser" in the browser build. */
export const ENTRY = "universal";
