// The hand-written surface. Each method is one `Transport.call` whose path, method, parameters and
// body are checked against the generated schema; the types it returns are the schema's.

import { MAX_BATCH_ROWS, chunkRows, sendChunks, type ChunkOptions } from "./batch.js";
import { TimeoutError } from "./errors.js";
import {
  Transport,
  sleep,
  type ClientOptions,
  type Operation,
  type PropertyQuery,
  type QueryParams,
  type RequestOptions,
} from "./http.js";
import type {
  BatchRecommendation,
  BatchRecommendationRequest,
  Customer,
  CustomerInput,
  CustomerPage,
  EventBatchResult,
  EventInput,
  EventPage,
  Experiment,
  ExperimentInput,
  ExperimentPatch,
  FilterBody,
  Item,
  ItemField,
  ItemInput,
  ItemPage,
  ModelVersion,
  RecommendationFilters,
  Recommendations,
  Scenario,
  ScenarioInput,
  TrainOptions,
  TrainingJob,
  UpsertBatchResult,
  Whoami,
} from "./types.js";

export type ItemListQuery = QueryParams<Operation<"/api/v1/items", "get">>;
export type CustomerListQuery = QueryParams<Operation<"/api/v1/customers", "get">>;
export type CustomerEventsQuery = QueryParams<Operation<"/api/v1/customers/{customer_id}/events", "get">>;
export type ModelListQuery = QueryParams<Operation<"/api/v1/models", "get">>;
/** Options of a chunked batch call: per-call options plus how to split. */
export type BatchOptions = RequestOptions & ChunkOptions;

/** `GET /customers/{id}/recommendations` options. */
export interface CustomerRecommendationOptions extends RecommendationFilters {
  /** Where the list is shown (routing and experiments); default `default`. */
  scenario?: string;
  /** Leave out what the customer already interacted with (default true). */
  excludeSeen?: boolean;
  /**
   * With a public key: the customer's token (`ct1.…`), minted by your server with the key's signing
   * secret. Without a valid one, a public key gets the non-personal list (`strategy: "fallback"`);
   * the answer's `X-Shelfwise-Customer-Token` header says `valid`, `missing`, `invalid` or `expired`.
   */
  customerToken?: string;
}

/** `GET /items/{id}/similar` options. */
export interface SimilarItemsOptions extends RecommendationFilters {
  /** Re-rank the neighbours for this customer (with a public key: only with `customerToken`). */
  customer?: string;
  /** With a public key: the token of `customer` (see `CustomerRecommendationOptions`). */
  customerToken?: string;
}

/** The request header a customer token travels in. */
export const CUSTOMER_TOKEN_HEADER = "shelfwise-customer-token";

function tokenHeaders(customerToken: string | undefined): Record<string, string> | undefined {
  return customerToken === undefined ? undefined : { [CUSTOMER_TOKEN_HEADER]: customerToken };
}

/** `POST /recommendations/session` options. */
export interface SessionOptions {
  count?: number;
  exclude?: string[];
  fields?: ItemField[];
  filters?: FilterBody;
}

export interface WaitOptions {
  /** Milliseconds between polls (default 1,000). */
  intervalMs?: number;
  /** Give up (TimeoutError) after this many ms (default one hour). */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Called with each polled state, e.g. to show `progress`. */
  onPoll?: (job: TrainingJob) => void;
}

type RecommendationQuery = QueryParams<Operation<"/api/v1/recommendations/popular", "get">> & PropertyQuery;

/** Every row of a cursor-paginated list, following `next_cursor` page by page. */
async function* everyPage<Q extends { cursor?: string }, R>(
  query: Q,
  list: (query: Q) => Promise<{ results: R[]; next_cursor?: string | null }>,
): AsyncGenerator<R> {
  let cursor: string | undefined = query.cursor;
  do {
    const page = await list({ ...query, cursor });
    yield* page.results;
    cursor = page.next_cursor ?? undefined;
  } while (cursor !== undefined);
}

function joined(values: readonly string[] | undefined): string | undefined {
  return values === undefined || values.length === 0 ? undefined : values.join(",");
}

function filterQuery(filters: RecommendationFilters): RecommendationQuery {
  const query: RecommendationQuery = {
    count: filters.count,
    exclude: joined(filters.exclude),
    fields: joined(filters.fields),
    category: joined(filters.categories),
    categories_match: filters.categoriesMatch,
    price_min: filters.priceMin,
    price_max: filters.priceMax,
    in_stock: filters.inStock,
  };
  for (const [name, value] of Object.entries(filters.properties ?? {})) {
    query[`prop.${name}`] = typeof value === "string" ? value : value.join(",");
  }
  return query;
}

const EMPTY_UPSERT: UpsertBatchResult = {
  received: 0,
  created: 0,
  updated: 0,
  unchanged: 0,
  rejected: 0,
  errors: [],
  errors_truncated: false,
};

const EMPTY_EVENTS: EventBatchResult = {
  received: 0,
  stored: 0,
  duplicates: 0,
  rejected: 0,
  customers_created: 0,
  items_created: 0,
  errors: [],
  errors_truncated: false,
};

/** Recommendations per `POST /recommendations:batch` request. */
export const MAX_RECOMMENDATION_BATCH = 100;

abstract class Resource {
  constructor(protected readonly http: Transport) {}
}

export class Items extends Resource {
  /** Create or replace an item (`PUT /items/{item_id}`; restores a deleted one). */
  upsert(item: ItemInput, options?: RequestOptions): Promise<Item> {
    return this.http.call("put", "/api/v1/items/{item_id}", { path: { item_id: item.item_id }, body: item }, options);
  }

  get(itemId: string, options?: RequestOptions): Promise<Item> {
    return this.http.call("get", "/api/v1/items/{item_id}", { path: { item_id: itemId } }, options);
  }

  /** Soft-delete: never recommended again; `upsert` restores it. */
  async delete(itemId: string, options?: RequestOptions): Promise<void> {
    await this.http.call("delete", "/api/v1/items/{item_id}", { path: { item_id: itemId } }, options);
  }

  list(query: ItemListQuery = {}, options?: RequestOptions): Promise<ItemPage> {
    return this.http.call("get", "/api/v1/items", { query }, options);
  }

  /** Every item matching `query`, following `next_cursor` page by page. */
  iterate(query: ItemListQuery = {}, options?: RequestOptions): AsyncGenerator<Item> {
    return everyPage(query, (page) => this.list(page, options));
  }

  /**
   * Upsert any number of items: sent in requests of at most 10,000 (and 15 MiB), their counts
   * summed and per-row errors indexed by position in `items`.
   */
  batch(items: readonly ItemInput[], options: BatchOptions = {}): Promise<UpsertBatchResult> {
    const chunks = chunkRows("items", items, options);
    return sendChunks(
      chunks,
      (body) => this.http.call("post", "/api/v1/items:batch", { body }, options),
      EMPTY_UPSERT,
    );
  }
}

export class Customers extends Resource {
  /** Create or replace a customer (`PUT /customers/{customer_id}`). */
  upsert(customer: CustomerInput, options?: RequestOptions): Promise<Customer> {
    return this.http.call(
      "put",
      "/api/v1/customers/{customer_id}",
      { path: { customer_id: customer.customer_id }, body: customer },
      options,
    );
  }

  get(customerId: string, options?: RequestOptions): Promise<Customer> {
    return this.http.call("get", "/api/v1/customers/{customer_id}", { path: { customer_id: customerId } }, options);
  }

  /** Erase the customer, their events and every derived trace (also when already gone). */
  async erase(customerId: string, options?: RequestOptions): Promise<void> {
    await this.http.call("delete", "/api/v1/customers/{customer_id}", { path: { customer_id: customerId } }, options);
  }

  list(query: CustomerListQuery = {}, options?: RequestOptions): Promise<CustomerPage> {
    return this.http.call("get", "/api/v1/customers", { query }, options);
  }

  iterate(query: CustomerListQuery = {}, options?: RequestOptions): AsyncGenerator<Customer> {
    return everyPage(query, (page) => this.list(page, options));
  }

  /** Upsert any number of customers, chunked like `items.batch`. */
  batch(customers: readonly CustomerInput[], options: BatchOptions = {}): Promise<UpsertBatchResult> {
    const chunks = chunkRows("customers", customers, options);
    return sendChunks(
      chunks,
      (body) => this.http.call("post", "/api/v1/customers:batch", { body }, options),
      EMPTY_UPSERT,
    );
  }

  /** The customer's history, newest first. */
  events(customerId: string, query: CustomerEventsQuery = {}, options?: RequestOptions): Promise<EventPage> {
    return this.http.call(
      "get",
      "/api/v1/customers/{customer_id}/events",
      { path: { customer_id: customerId }, query },
      options,
    );
  }
}

export class Events extends Resource {
  /**
   * Send one event or any number: chunked like `items.batch`. Events are idempotent by
   * `event_id` (a re-sent one counts as a duplicate), so give each one.
   */
  send(events: EventInput | readonly EventInput[], options: BatchOptions = {}): Promise<EventBatchResult> {
    const rows: readonly EventInput[] = Array.isArray(events) ? events : [events as EventInput];
    const chunks = chunkRows("events", rows, options);
    return sendChunks(chunks, (body) => this.http.call("post", "/api/v1/events", { body }, options), EMPTY_EVENTS);
  }
}

export class RecommendationsApi extends Resource {
  /** Personalised recommendations (popular items, `strategy: "fallback"`, for unknown customers). */
  forCustomer(
    customerId: string,
    { scenario, excludeSeen, customerToken, ...filters }: CustomerRecommendationOptions = {},
    options?: RequestOptions,
  ): Promise<Recommendations> {
    return this.http.call(
      "get",
      "/api/v1/customers/{customer_id}/recommendations",
      {
        path: { customer_id: customerId },
        query: { ...filterQuery(filters), scenario, exclude_seen: excludeSeen },
        headers: tokenHeaders(customerToken),
      },
      options,
    );
  }

  /** The model's neighbours of an item (NotFoundError for an unknown item). */
  similar(
    itemId: string,
    { customer, customerToken, ...filters }: SimilarItemsOptions = {},
    options?: RequestOptions,
  ): Promise<Recommendations> {
    return this.http.call(
      "get",
      "/api/v1/items/{item_id}/similar",
      {
        path: { item_id: itemId },
        query: { ...filterQuery(filters), customer },
        headers: tokenHeaders(customerToken),
      },
      options,
    );
  }

  /** Time-decayed popularity (half-life 30 days). */
  popular(filters: RecommendationFilters = {}, options?: RequestOptions): Promise<Recommendations> {
    return this.http.call("get", "/api/v1/recommendations/popular", { query: filterQuery(filters) }, options);
  }

  /** Time-decayed popularity (half-life 1 day). */
  trending(filters: RecommendationFilters = {}, options?: RequestOptions): Promise<Recommendations> {
    return this.http.call("get", "/api/v1/recommendations/trending", { query: filterQuery(filters) }, options);
  }

  /** For an anonymous visitor, from the items of their session (1–100 ids). */
  session(items: string[], sessionOptions: SessionOptions = {}, options?: RequestOptions): Promise<Recommendations> {
    return this.http.call(
      "post",
      "/api/v1/recommendations/session",
      { body: { items, ...sessionOptions } },
      options,
    );
  }

  /**
   * Recommendations for many customers, answers in the order of `requests` (sent 100 per request).
   */
  async batch(
    requests: readonly BatchRecommendationRequest[],
    batchOptions: { fields?: ItemField[] } = {},
    options?: RequestOptions,
  ): Promise<BatchRecommendation[]> {
    const results: BatchRecommendation[] = [];
    for (let start = 0; start < requests.length; start += MAX_RECOMMENDATION_BATCH) {
      const answer = await this.http.call(
        "post",
        "/api/v1/recommendations:batch",
        { body: { requests: requests.slice(start, start + MAX_RECOMMENDATION_BATCH), ...batchOptions } },
        options,
      );
      results.push(...(answer.results as BatchRecommendation[]));
    }
    return results;
  }
}

export class Jobs extends Resource {
  /** The newest 50 training jobs. */
  list(options?: RequestOptions): Promise<TrainingJob[]> {
    return this.http.call("get", "/api/v1/jobs", {}, options);
  }

  get(jobId: string, options?: RequestOptions): Promise<TrainingJob> {
    return this.http.call("get", "/api/v1/jobs/{job_id}", { path: { job_id: jobId } }, options);
  }

  /** Polls the job until it has `succeeded` or `failed` and returns it (check `status`). */
  async wait(
    jobId: string,
    { intervalMs = 1000, timeoutMs = 3_600_000, signal, onPoll }: WaitOptions = {},
  ): Promise<TrainingJob> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const job = await this.get(jobId, signal ? { signal } : {});
      onPoll?.(job);
      if (job.status === "succeeded" || job.status === "failed") return job;
      if (Date.now() + intervalMs > deadline) {
        throw new TimeoutError(timeoutMs, `Job ${jobId} is still ${job.status ?? "queued"} after ${timeoutMs} ms.`);
      }
      await sleep(intervalMs, signal);
    }
  }
}

export class Models extends Resource {
  /** Model versions, newest first (`status`, `limit`). */
  list(query: ModelListQuery = {}, options?: RequestOptions): Promise<ModelVersion[]> {
    return this.http.call("get", "/api/v1/models", { query }, options);
  }

  get(version: number, options?: RequestOptions): Promise<ModelVersion> {
    return this.http.call("get", "/api/v1/models/{version}", { path: { version } }, options);
  }

  /**
   * Queue a training (`algorithm`, `tune`); follow it with `jobs.wait(job.job_id)`.
   * ConflictError `training_in_progress` names the running job in `problem.job_id`.
   */
  train(trainOptions: TrainOptions = {}, options?: RequestOptions): Promise<TrainingJob> {
    return this.http.call("post", "/api/v1/models:train", { body: trainOptions }, options);
  }

  /** Serve this version (ConflictError `promotion_refused` says why not). */
  promote(version: number, promotion: { reason?: string } = {}, options?: RequestOptions): Promise<ModelVersion> {
    return this.http.call("post", "/api/v1/models/{version}:promote", { path: { version }, body: promotion }, options);
  }

  /** Serve the previously active version again. */
  rollback(promotion: { reason?: string } = {}, options?: RequestOptions): Promise<ModelVersion> {
    return this.http.call("post", "/api/v1/models:rollback", { body: promotion }, options);
  }
}

export class Scenarios extends Resource {
  list(options?: RequestOptions): Promise<Scenario[]> {
    return this.http.call("get", "/api/v1/scenarios", {}, options);
  }

  get(key: string, options?: RequestOptions): Promise<Scenario> {
    return this.http.call("get", "/api/v1/scenarios/{key}", { path: { key } }, options);
  }

  /** Create or replace a scenario and its default source. */
  put(key: string, scenario: ScenarioInput, options?: RequestOptions): Promise<Scenario> {
    return this.http.call("put", "/api/v1/scenarios/{key}", { path: { key }, body: scenario }, options);
  }

  async delete(key: string, options?: RequestOptions): Promise<void> {
    await this.http.call("delete", "/api/v1/scenarios/{key}", { path: { key } }, options);
  }
}

export class Experiments extends Resource {
  list(options?: RequestOptions): Promise<Experiment[]> {
    return this.http.call("get", "/api/v1/experiments", {}, options);
  }

  get(experimentId: number, options?: RequestOptions): Promise<Experiment> {
    return this.http.call(
      "get",
      "/api/v1/experiments/{experiment_id}",
      { path: { experiment_id: experimentId } },
      options,
    );
  }

  /** A draft experiment splitting a scenario's traffic between 2–10 variants (shares add up to 100). */
  create(experiment: ExperimentInput, options?: RequestOptions): Promise<Experiment> {
    return this.http.call("post", "/api/v1/experiments", { body: experiment }, options);
  }

  /** Rename; variants change only while a draft. */
  update(experimentId: number, patch: ExperimentPatch, options?: RequestOptions): Promise<Experiment> {
    return this.http.call(
      "patch",
      "/api/v1/experiments/{experiment_id}",
      { path: { experiment_id: experimentId }, body: patch },
      options,
    );
  }

  start(experimentId: number, options?: RequestOptions): Promise<Experiment> {
    return this.http.call(
      "post",
      "/api/v1/experiments/{experiment_id}:start",
      { path: { experiment_id: experimentId } },
      options,
    );
  }

  stop(experimentId: number, options?: RequestOptions): Promise<Experiment> {
    return this.http.call(
      "post",
      "/api/v1/experiments/{experiment_id}:stop",
      { path: { experiment_id: experimentId } },
      options,
    );
  }

  /** Per variant: impressions, clicks, add-to-carts, purchases, CTR and conversion with 95 % intervals. */
  results(experimentId: number, options?: RequestOptions): Promise<Record<string, unknown>> {
    return this.http.call(
      "get",
      "/api/v1/experiments/{experiment_id}/results",
      { path: { experiment_id: experimentId } },
      options,
    );
  }
}

export class StoreSettings extends Resource {
  /** The store's settings by section (`events.weights`, `training.algorithm`, …). */
  get(options?: RequestOptions): Promise<Record<string, unknown>> {
    return this.http.call("get", "/api/v1/settings", {}, options);
  }

  /** Change some settings: `{events: {weights: {wishlist: 3}}}`. */
  update(patch: Record<string, unknown>, options?: RequestOptions): Promise<Record<string, unknown>> {
    return this.http.call("patch", "/api/v1/settings", { body: patch }, options);
  }
}

/** The client (both entry points build on it; the browser build refuses secret keys everywhere). */
export class ShelfwiseClient {
  readonly items: Items;
  readonly customers: Customers;
  readonly events: Events;
  readonly recommendations: RecommendationsApi;
  readonly models: Models;
  readonly jobs: Jobs;
  readonly scenarios: Scenarios;
  readonly experiments: Experiments;
  readonly settings: StoreSettings;
  protected readonly http: Transport;

  protected constructor(options: ClientOptions, browserBuild: boolean) {
    this.http = new Transport(options, browserBuild);
    this.items = new Items(this.http);
    this.customers = new Customers(this.http);
    this.events = new Events(this.http);
    this.recommendations = new RecommendationsApi(this.http);
    this.models = new Models(this.http);
    this.jobs = new Jobs(this.http);
    this.scenarios = new Scenarios(this.http);
    this.experiments = new Experiments(this.http);
    this.settings = new StoreSettings(this.http);
  }

  /** The key's store, prefix, kind and scopes. */
  whoami(options?: RequestOptions): Promise<Whoami> {
    return this.http.call("get", "/api/v1/whoami", {}, options);
  }
}

export { MAX_BATCH_ROWS };
