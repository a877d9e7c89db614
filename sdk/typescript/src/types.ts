// Public names for the generated schema's types. Every type here is an alias of (or built from)
// `components["schemas"]`, so a change to the API's schema changes them, and code that no longer
// fits fails to compile.

import type { components } from "./schema.js";

type Schemas = components["schemas"];

/** An item as sent (`PUT /items/{item_id}`, `POST /items:batch`). */
export type ItemInput = Schemas["ItemIn"];
/** An item as stored. */
export type Item = Schemas["ItemOut"];
export type ItemPage = Schemas["ItemPage"];
/** A customer as sent. */
export type CustomerInput = Schemas["CustomerIn"];
/** A customer as stored. */
export type Customer = Schemas["CustomerOut"];
export type CustomerPage = Schemas["CustomerPage"];
/** A shopper event as sent (`POST /events`). */
export type EventInput = Schemas["EventIn"];
/** A stored event, in a customer's history. */
export type CustomerEvent = Schemas["EventOut"];
export type EventPage = Schemas["EventPage"];
/** The answer to an items or customers batch. */
export type UpsertBatchResult = Schemas["UpsertBatchResult"];
/** The answer to `POST /events`. */
export type EventBatchResult = Schemas["EventBatchResult"];
/** A row's error in a batch answer; `index` is its position in the array you passed. */
export type RowError = Schemas["RowErrorOut"];

/** Every recommendation answer (customer, similar, popular, trending, session). */
export type Recommendations = Schemas["RecommendationsOut"];
export type RecommendedItem = Schemas["RecommendedItem"];
export type Strategy = Schemas["StrategyEnum"];
/** Filters in a request body (session and batch recommendations). */
export type FilterBody = Schemas["FilterBody"];
/** One customer's request in `POST /recommendations:batch`. */
export type BatchRecommendationRequest = Schemas["BatchRequest"];
/**
 * One answer of `POST /recommendations:batch`, in the order of the requests. The schema leaves
 * the rows untyped (`BatchOut.results: object[]`); the API answers each with the recommendation
 * shape plus the request's `customer_id`.
 */
export type BatchRecommendation = Recommendations & { customer_id: string };

/** A model version: metrics next to popularity, the release gate, timings, data counts. */
export type ModelVersion = Schemas["VersionOut"];
export type ModelStatus = Schemas["VersionOutStatusEnum"];
export type Algorithm = Schemas["AlgorithmEnum"];
export type TrainOptions = Schemas["TrainInRequest"];
/** A training job: status, stage, progress (0–100), its version, its error. */
export type TrainingJob = Schemas["JobOut"];
export type JobStatus = Schemas["JobOutStatusEnum"];

/** What a scenario or a variant serves: `{kind: "active" | "version" | "algorithm" | "popularity" | "trending"}`. */
export type Source = Schemas["Source"];
export type Scenario = Schemas["ScenarioOut"];
export type ScenarioInput = Schemas["ScenarioInRequest"];
export type Experiment = Schemas["ExperimentOut"];
export type ExperimentInput = Schemas["ExperimentInRequest"];
export type ExperimentPatch = Schemas["PatchedExperimentPatchRequest"];
export type VariantInput = Schemas["VariantIn"];
export type ExperimentStatus = Schemas["ExperimentOutStatusEnum"];

/** The key's store, prefix, kind and scopes (`GET /whoami`). */
export type Whoami = Schemas["Output"];

/** Query filters shared by the recommendation reads (customer, similar, popular, trending). */
export interface RecommendationFilters {
  /** How many items, 1–100 (default 10). */
  count?: number;
  /** Item ids to leave out (up to 100). */
  exclude?: readonly string[];
  /** Item fields to include: title, description, categories, price, currency, in_stock, properties. */
  fields?: readonly ItemField[];
  /** Only items in these categories (any of them, or all with `categoriesMatch: "all"`). */
  categories?: readonly string[];
  categoriesMatch?: "any" | "all";
  priceMin?: number;
  priceMax?: number;
  inStock?: boolean;
  /** A property equal to one of the values (or a list property containing one): `{size: ["5", "6"]}`. */
  properties?: Readonly<Record<string, string | readonly string[]>>;
}

export type ItemField = "title" | "description" | "categories" | "price" | "currency" | "in_stock" | "properties";
