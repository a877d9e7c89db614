// The transport: one typed `call` per API operation, checked against the generated `paths` (a path,
// method, parameter or body the schema does not have is a compile error), over fetch with
// timeouts, retries with backoff, Retry-After and automatic Idempotency-Keys.

import {
  ConfigurationError,
  NetworkError,
  RateLimitedError,
  ShelfwiseError,
  TimeoutError,
  errorFromResponse,
  parseRetryAfter,
} from "./errors.js";
import { isBrowser, nodeVersion, randomUUID } from "./runtime.js";
import type { paths } from "./schema.js";
import { VERSION } from "./version.js";

export type HttpMethod = "get" | "put" | "post" | "delete" | "patch";

/** The operation object of `method path` in the generated schema. */
export type Operation<P extends keyof paths, M extends HttpMethod> = NonNullable<paths[P][M]>;

/** Paths of the schema that have `method`. */
export type PathsWith<M extends HttpMethod> = {
  [P in keyof paths]: [NonNullable<paths[P][M]>] extends [never] ? never : P;
}[keyof paths];

type JsonContent<R> = R extends { content: { "application/json": infer J } } ? J : never;

/** The JSON body of the operation's success answer (undefined for 204). */
export type SuccessBody<O> = O extends { responses: infer R }
  ? 200 extends keyof R
    ? JsonContent<R[200]>
    : 201 extends keyof R
      ? JsonContent<R[201]>
      : 202 extends keyof R
        ? JsonContent<R[202]>
        : 204 extends keyof R
          ? undefined
          : never
  : never;

/** The operation's JSON request body. */
export type RequestBody<O> = O extends { requestBody?: infer R }
  ? [NonNullable<R>] extends [never]
    ? never
    : NonNullable<R> extends { content: { "application/json": infer B } }
      ? B
      : never
  : never;

/** The operation's query parameters. */
export type QueryParams<O> = O extends { parameters: { query?: infer Q } } ? NonNullable<Q> : never;

declare const jsonOf: unique symbol;
/** JSON text already serialised from a `T` (the batch chunker builds bodies from rows' JSON). */
export type JsonText<T> = string & { readonly [jsonOf]: T };

/** `prop.<name>=a,b` filters: a property equal to one of the values. */
export type PropertyQuery = { [name: `prop.${string}`]: string };

type CallArgs<O> = (O extends { parameters: { path: infer T } } ? { path: T } : { path?: undefined }) & {
  query?: QueryParams<O> & PropertyQuery;
  /** Extra request headers of this operation (e.g. `shelfwise-customer-token`). */
  headers?: Record<string, string> | undefined;
} & ([RequestBody<O>] extends [never]
    ? { body?: undefined }
    : { body: RequestBody<O> | JsonText<RequestBody<O>> });

/** Per-call options, accepted as the last argument of every method. */
export interface RequestOptions {
  /** Cancels the call (also while it waits to retry); the promise rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Milliseconds one attempt may take (request and answer); default: the client's `timeoutMs`. */
  timeoutMs?: number;
  /** Retries after the first attempt; default: the client's `maxRetries`. */
  maxRetries?: number;
  /** The Idempotency-Key of a POST (default: a random UUID per call, reused by its retries). */
  idempotencyKey?: string;
  /** Sent as X-Request-ID (8–128 of `A-Za-z0-9._:-`); the API echoes it and logs it. */
  requestId?: string;
}

export interface ClientOptions {
  /** `sk_live_…` (servers) or `pk_live_…` (browsers: events and recommendations only). */
  apiKey: string;
  /** The API's address, e.g. `https://api.example.com` or `http://localhost:8000/api/v1/`. */
  baseUrl: string;
  /** Milliseconds one attempt may take; default 30,000. */
  timeoutMs?: number;
  /** Retries on 429, 5xx, network errors and timeouts; default 3 (4 attempts in all). */
  maxRetries?: number;
  /** First backoff ceiling in ms (doubles per retry, full jitter); default 500. */
  retryBaseDelayMs?: number;
  /** Largest backoff ceiling in ms; default 20,000. */
  retryMaxDelayMs?: number;
  /** A Retry-After longer than this (ms) is not waited for: the error is thrown; default 60,000. */
  maxRetryAfterMs?: number;
  /** A fetch implementation (default: the global one). */
  fetch?: typeof fetch;
}

const DEFAULTS = {
  timeoutMs: 30_000,
  maxRetries: 3,
  retryBaseDelayMs: 500,
  retryMaxDelayMs: 20_000,
  maxRetryAfterMs: 60_000,
};

type QueryValue = string | number | boolean | null | undefined;

/** The parts of a request, before the path and body are typed (see `Transport.call`). */
interface RawRequest {
  path: string;
  pathParams?: Record<string, string | number> | undefined;
  query?: Record<string, QueryValue> | undefined;
  body?: unknown;
  headers?: Record<string, string> | undefined;
}

/** Waits `ms`, or rejects with the signal's reason when it aborts first. */
export function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = (error as { cause?: unknown }).cause;
  const inner = cause instanceof Error ? `: ${(cause as { code?: string }).code ?? cause.message}` : "";
  return `${error.message}${inner}`;
}

export class Transport {
  readonly origin: string;
  readonly browser: boolean;
  private readonly apiKey: string;
  private readonly settings: typeof DEFAULTS;
  private readonly fetchImpl: typeof fetch;
  private readonly userAgent: string | undefined;

  constructor(options: ClientOptions, browserBuild: boolean) {
    if (typeof options?.apiKey !== "string" || options.apiKey.trim() === "") {
      throw new ConfigurationError("apiKey is required (sk_live_… on a server, pk_live_… in a browser)");
    }
    if (typeof options.baseUrl !== "string" || !/^https?:\/\//.test(options.baseUrl)) {
      throw new ConfigurationError("baseUrl is required, e.g. https://api.example.com or http://localhost:8000/api/v1/");
    }
    this.browser = browserBuild || isBrowser();
    if (this.browser && !options.apiKey.startsWith("pk_")) {
      // A secret key in a page is readable by every visitor: refuse before it is ever sent.
      throw new ConfigurationError(
        "In a browser only a public key (pk_…) may be used: a secret key (sk_…) would be visible to every " +
          "visitor. Create a public key (scopes: events, recommend) for browser code.",
      );
    }
    this.apiKey = options.apiKey;
    this.origin = options.baseUrl.replace(/\/+$/, "").replace(/\/api\/v1$/, "");
    this.settings = {
      timeoutMs: options.timeoutMs ?? DEFAULTS.timeoutMs,
      maxRetries: options.maxRetries ?? DEFAULTS.maxRetries,
      retryBaseDelayMs: options.retryBaseDelayMs ?? DEFAULTS.retryBaseDelayMs,
      retryMaxDelayMs: options.retryMaxDelayMs ?? DEFAULTS.retryMaxDelayMs,
      maxRetryAfterMs: options.maxRetryAfterMs ?? DEFAULTS.maxRetryAfterMs,
    };
    const fetchImpl = options.fetch ?? globalThis.fetch;
    if (typeof fetchImpl !== "function") {
      throw new ConfigurationError("no fetch: use Node 18+ or pass `fetch` in the options");
    }
    // A bare global fetch called as a method of another object throws "Illegal invocation" in browsers.
    this.fetchImpl = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    // Browsers forbid setting User-Agent (and CORS allows only a few request headers): Node only.
    const node = this.browser ? undefined : nodeVersion();
    this.userAgent = node === undefined ? undefined : `shelfwise-typescript/${VERSION} (node ${node})`;
  }

  /** One API operation, typed from the generated schema. */
  call<M extends HttpMethod, P extends PathsWith<M>>(
    method: M,
    path: P,
    args: CallArgs<Operation<P, M>>,
    options: RequestOptions = {},
  ): Promise<SuccessBody<Operation<P, M>>> {
    const loose = args as {
      path?: Record<string, string | number>;
      query?: Record<string, QueryValue>;
      body?: unknown;
      headers?: Record<string, string>;
    };
    return this.send(
      method.toUpperCase(),
      { path, pathParams: loose.path, query: loose.query, body: loose.body, headers: loose.headers },
      options,
    ) as Promise<SuccessBody<Operation<P, M>>>;
  }

  url(request: RawRequest): string {
    const path = request.path.replace(/\{([^}]+)\}/g, (_, name: string) => {
      const value = request.pathParams?.[name];
      if (value === undefined || value === "") throw new ConfigurationError(`missing path parameter ${name}`);
      return encodeURIComponent(String(value));
    });
    const search = new URLSearchParams();
    for (const [name, value] of Object.entries(request.query ?? {})) {
      if (value !== undefined && value !== null) search.append(name, String(value));
    }
    const query = search.toString();
    return `${this.origin}${path}${query ? `?${query}` : ""}`;
  }

  private async send(method: string, request: RawRequest, options: RequestOptions): Promise<unknown> {
    const url = this.url(request);
    const headers: Record<string, string> = { ...request.headers, authorization: `Bearer ${this.apiKey}` };
    let body: string | undefined;
    if (request.body !== undefined) {
      body = typeof request.body === "string" ? request.body : JSON.stringify(request.body);
      headers["content-type"] = "application/json";
    }
    if (method === "POST") {
      // One key for the call and all its retries: a retried POST is answered from the first one.
      headers["idempotency-key"] = options.idempotencyKey ?? (await randomUUID());
    }
    if (options.requestId !== undefined) headers["x-request-id"] = options.requestId;
    if (this.userAgent !== undefined) headers["user-agent"] = this.userAgent;
    const timeoutMs = options.timeoutMs ?? this.settings.timeoutMs;
    const maxRetries = options.maxRetries ?? this.settings.maxRetries;

    for (let attempt = 0; ; attempt++) {
      let failure: ShelfwiseError;
      let waitMs: number | undefined;
      try {
        const { response, text } = await this.attempt(url, { method, headers, body }, timeoutMs, options.signal);
        const parsed = parseBody(response, text);
        if (response.ok) return parsed;
        failure = errorFromResponse(response, parsed);
        waitMs = this.retryDelay(response, failure, attempt);
      } catch (error) {
        if (!(error instanceof NetworkError)) throw error; // the caller's abort, a bug
        failure = error;
        waitMs = this.backoff(attempt);
      }
      if (waitMs === undefined || attempt >= maxRetries) throw failure;
      await sleep(waitMs, options.signal);
    }
  }

  /** One request and its whole answer, within `timeoutMs`; NetworkError/TimeoutError for no answer. */
  private async attempt(
    url: string,
    init: { method: string; headers: Record<string, string>; body: string | undefined },
    timeoutMs: number,
    signal: AbortSignal | undefined,
  ): Promise<{ response: Response; text: string }> {
    signal?.throwIfAborted();
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, timeoutMs);
    const onAbort = () => controller.abort(signal?.reason);
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      const requestInit: RequestInit = { method: init.method, headers: init.headers, signal: controller.signal };
      if (init.body !== undefined) requestInit.body = init.body;
      const response = await this.fetchImpl(url, requestInit);
      const text = await response.text();
      return { response, text };
    } catch (error) {
      if (timedOut) throw new TimeoutError(timeoutMs);
      if (signal?.aborted) throw signal.reason;
      throw new NetworkError(`${init.method} ${url} failed: ${describe(error)}`, error);
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    }
  }

  /** Milliseconds to wait before retrying this answer, or undefined when it is not retried. */
  private retryDelay(response: Response, error: ShelfwiseError, attempt: number): number | undefined {
    const retryable =
      response.status === 429 ||
      response.status >= 500 ||
      (response.status === 409 && error.code === "idempotency_in_progress");
    if (!retryable) return undefined;
    const retryAfter =
      error instanceof RateLimitedError ? error.retryAfter : parseRetryAfter(response.headers.get("retry-after"));
    if (retryAfter === undefined) return this.backoff(attempt);
    const waitMs = Math.ceil(retryAfter * 1000);
    // A long Retry-After (e.g. the training quota's hours) is the caller's decision, not a wait.
    return waitMs > this.settings.maxRetryAfterMs ? undefined : waitMs;
  }

  /** Exponential backoff with full jitter: uniformly random below min(max, base · 2^attempt). */
  private backoff(attempt: number): number {
    const ceiling = Math.min(this.settings.retryMaxDelayMs, this.settings.retryBaseDelayMs * 2 ** attempt);
    return Math.floor(Math.random() * ceiling);
  }
}

function parseBody(response: Response, text: string): unknown {
  if (response.status === 204 || text === "") return undefined;
  const type = response.headers.get("content-type") ?? "";
  if (type.includes("json")) {
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
  }
  return text;
}
