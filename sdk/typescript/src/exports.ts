// What both entry points export besides the client class.

export { MAX_BATCH_BYTES, MAX_BATCH_ROWS, type ChunkOptions } from "./batch.js";
export {
  Customers,
  Events,
  Experiments,
  Items,
  Jobs,
  MAX_RECOMMENDATION_BATCH,
  Models,
  RecommendationsApi,
  Scenarios,
  StoreSettings,
  type BatchOptions,
  type CustomerEventsQuery,
  type CustomerListQuery,
  type CustomerRecommendationOptions,
  type ItemListQuery,
  type ModelListQuery,
  type SessionOptions,
  type SimilarItemsOptions,
  type WaitOptions,
} from "./client.js";
export {
  AuthenticationError,
  ConfigurationError,
  ConflictError,
  NetworkError,
  NotFoundError,
  PermissionDeniedError,
  RateLimitedError,
  ServerError,
  ShelfwiseError,
  TimeoutError,
  ValidationError,
  type FieldError,
  type Problem,
} from "./errors.js";
export type { ClientOptions, RequestOptions } from "./http.js";
export type { components, operations, paths } from "./schema.js";
export type * from "./types.js";
export { VERSION } from "./version.js";
