// The live API the pytest driver (tests/e2e/test_sdk_typescript.py) started, from the environment.
// Without it (a plain `npm test`) the live tests are skipped and only the offline ones run.

export interface LiveApi {
  /** The app server (gunicorn on the test database). */
  url: string;
  /** A proxy in front of it that the retry tests arm (see the pytest file). */
  proxyUrl: string;
  /** A store with a generated shopping history, for training and recommendations. */
  storeKey: string;
  /** A public key of that store. */
  publicKey: string;
  /** A customer token of that public key for customer c3 (minted by the driver's server side). */
  customerToken: string;
  /** Another, empty store, for ingestion and errors. */
  ingestKey: string;
}

function read(): LiveApi | undefined {
  const env = process.env;
  const live = {
    url: env.SHELFWISE_TEST_URL ?? "",
    proxyUrl: env.SHELFWISE_TEST_PROXY_URL ?? "",
    storeKey: env.SHELFWISE_TEST_STORE_KEY ?? "",
    publicKey: env.SHELFWISE_TEST_PUBLIC_KEY ?? "",
    customerToken: env.SHELFWISE_TEST_CUSTOMER_TOKEN ?? "",
    ingestKey: env.SHELFWISE_TEST_INGEST_KEY ?? "",
  };
  return Object.values(live).every((value) => value !== "") ? live : undefined;
}

export const live = read();
/** `test(name, { skip: noLiveApi }, …)`: skipped, with the reason, outside the pytest driver. */
export const noLiveApi = live === undefined ? "no live API (run through tests/e2e/test_sdk_typescript.py)" : false;

export function requireLive(): LiveApi {
  if (live === undefined) throw new Error("no live API");
  return live;
}

export interface Sent {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string | undefined;
  status: number;
  responseHeaders: Headers;
}

/** A fetch that records what the client sent and what came back. */
export function recordingFetch(): { fetch: typeof fetch; sent: Sent[] } {
  const sent: Sent[] = [];
  const recording: typeof fetch = async (input, init) => {
    const response = await fetch(input, init);
    sent.push({
      method: init?.method ?? "GET",
      url: String(input),
      headers: { ...(init?.headers as Record<string, string>) },
      body: typeof init?.body === "string" ? init.body : undefined,
      status: response.status,
      responseHeaders: response.headers,
    });
    return response;
  };
  return { fetch: recording, sent };
}
