import type { components } from "./schema.js";

/** The API's error body (RFC 9457 problem+json), as the OpenAPI schema describes it. */
export type Problem = components["schemas"]["Problem"];

/** One per-field (or, in a batch, per-row) error: `index` is the row in the caller's array. */
export type FieldError = NonNullable<Problem["errors"]>[number];

interface ShelfwiseErrorInit {
  status: number;
  code: string;
  title: string;
  detail: string;
  type?: string | undefined;
  requestId?: string | undefined;
  errors?: FieldError[] | undefined;
  problem?: Problem | undefined;
  cause?: unknown;
}

/**
 * Every error the client throws for an answer of the API (and for a request that got no answer:
 * `NetworkError`, `TimeoutError`). `code` is the API's stable machine-readable code
 * (`invalid_api_key`, `validation_error`, `training_in_progress`, …); `problem` is the whole body,
 * with members some codes add (e.g. `job_id` for `training_in_progress`).
 */
export class ShelfwiseError extends Error {
  override name = "ShelfwiseError";
  readonly status: number;
  readonly code: string;
  readonly title: string;
  readonly detail: string;
  readonly type: string | undefined;
  readonly requestId: string | undefined;
  /** Per-field errors; in a chunked batch their `index` is the position in the array you passed. */
  errors: FieldError[];
  readonly problem: Problem | undefined;
  /** When a chunked batch failed part-way: how many of your rows the earlier chunks sent. */
  rowsCompleted?: number;

  constructor(init: ShelfwiseErrorInit) {
    const where = init.requestId ? `, request ${init.requestId}` : "";
    super(`${init.title}: ${init.detail} (${init.code}, HTTP ${init.status}${where})`, { cause: init.cause });
    this.status = init.status;
    this.code = init.code;
    this.title = init.title;
    this.detail = init.detail;
    this.type = init.type;
    this.requestId = init.requestId;
    this.errors = init.errors ?? [];
    this.problem = init.problem;
  }
}

/** 401: missing, invalid or revoked API key (`code` says which). */
export class AuthenticationError extends ShelfwiseError {
  override name = "AuthenticationError";
}

/** 403: the key lacks the scope, the store is suspended, or a quota is used up. */
export class PermissionDeniedError extends ShelfwiseError {
  override name = "PermissionDeniedError";
}

/** 404: no such object (another store's objects are missing too). */
export class NotFoundError extends ShelfwiseError {
  override name = "NotFoundError";
}

/** 400 and 422: the request was refused as it stands; `errors` lists the fields (and rows). */
export class ValidationError extends ShelfwiseError {
  override name = "ValidationError";
}

/** 409: the request conflicts with the current state (`training_in_progress`, `promotion_refused`, …). */
export class ConflictError extends ShelfwiseError {
  override name = "ConflictError";
}

/** 429: rate limited (or the training quota is used up); `retryAfter` is in seconds, when the API said. */
export class RateLimitedError extends ShelfwiseError {
  override name = "RateLimitedError";
  readonly retryAfter: number | undefined;

  constructor(init: ShelfwiseErrorInit & { retryAfter?: number | undefined }) {
    super(init);
    this.retryAfter = init.retryAfter;
  }
}

/** 5xx: the API failed (after the client's retries). */
export class ServerError extends ShelfwiseError {
  override name = "ServerError";
}

/** No answer at all: the connection failed (after the client's retries). `status` is 0. */
export class NetworkError extends ShelfwiseError {
  override name = "NetworkError";
  constructor(detail: string, cause?: unknown, code = "network_error", title = "Network error") {
    super({ status: 0, code, title, detail, cause });
  }
}

/** No answer within the client's timeout (after its retries), or a job not done in time. `status` is 0. */
export class TimeoutError extends NetworkError {
  override name = "TimeoutError";
  readonly timeoutMs: number;

  constructor(timeoutMs: number, detail = `No answer within ${timeoutMs} ms.`) {
    super(detail, undefined, "timeout", "Timed out");
    this.timeoutMs = timeoutMs;
  }
}

/** Misuse of the client itself, e.g. a secret key in a browser. Never sent to the API. */
export class ConfigurationError extends Error {
  override name = "ConfigurationError";
}

function isProblem(value: unknown): value is Problem {
  if (typeof value !== "object" || value === null) return false;
  const body = value as Record<string, unknown>;
  return typeof body.code === "string" && typeof body.title === "string" && typeof body.status === "number";
}

/** Seconds until a `Retry-After` (delta-seconds or an HTTP date) says to retry; undefined if absent or invalid. */
export function parseRetryAfter(value: string | null, now: number = Date.now()): number | undefined {
  if (value === null) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text);
  const when = Date.parse(text);
  if (Number.isNaN(when)) return undefined;
  return Math.max(0, (when - now) / 1000);
}

/** The typed error for an unsuccessful answer; `body` is its parsed JSON, or its text. */
export function errorFromResponse(response: Response, body: unknown): ShelfwiseError {
  const status = response.status;
  const requestId = response.headers.get("x-request-id") ?? undefined;
  let init: ShelfwiseErrorInit;
  if (isProblem(body)) {
    init = {
      status,
      code: body.code,
      title: body.title,
      detail: body.detail ?? "",
      type: body.type,
      requestId: body.request_id ?? requestId,
      errors: Array.isArray(body.errors) ? body.errors : [],
      problem: body,
    };
  } else {
    // Not problem+json: something in front of the API (a proxy, the web server's 414) answered.
    const text = typeof body === "string" ? body.trim().slice(0, 500) : "";
    init = {
      status,
      code: `http_${status}`,
      title: response.statusText || `HTTP ${status}`,
      detail: text || "The answer was not a problem+json document.",
      requestId,
    };
  }
  if (status === 401) return new AuthenticationError(init);
  if (status === 403) return new PermissionDeniedError(init);
  if (status === 404) return new NotFoundError(init);
  if (status === 400 || status === 422) return new ValidationError(init);
  if (status === 409) return new ConflictError(init);
  if (status === 429) {
    return new RateLimitedError({ ...init, retryAfter: parseRetryAfter(response.headers.get("retry-after")) });
  }
  if (status >= 500) return new ServerError(init);
  return new ShelfwiseError(init);
}
