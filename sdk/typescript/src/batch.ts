// Large batches split into requests the API accepts (at most MAX_BATCH_ROWS rows and a body well
// under its 16 MB limit), sent one after another, and their answers added up as if one request
// had carried them all: counts summed, per-row errors re-indexed to the caller's positions.

import { ShelfwiseError, type FieldError } from "./errors.js";
import type { JsonText } from "./http.js";

/** Rows per request the API accepts (`MAX_BATCH_ROWS` in catalog/contracts.py). */
export const MAX_BATCH_ROWS = 10_000;
/** Default body size per request: under the API's 16 MiB limit with room for the envelope. */
export const MAX_BATCH_BYTES = 15 * 1024 * 1024;

/** How a batch is split; both default to the API's limits. */
export interface ChunkOptions {
  /** Rows per request, 1 to 10,000 (default 10,000). */
  chunkSize?: number;
  /** Bytes of JSON per request (default 15 MiB). */
  maxChunkBytes?: number;
}

/** Counts and per-row errors of a batch (items, customers or events). */
export interface BatchResultShape {
  received: number;
  rejected: number;
  errors: FieldError[];
  errors_truncated: boolean;
}

export interface Chunk<W> {
  offset: number;
  rows: number;
  body: JsonText<W>;
}

const encoder = new TextEncoder();

/** Splits `rows` into request bodies `{"<key>": [...]}` within the row and byte limits. */
export function chunkRows<K extends string, R>(
  key: K,
  rows: readonly R[],
  options: ChunkOptions = {},
): Chunk<{ [P in K]: R[] }>[] {
  const maxRows = options.chunkSize ?? MAX_BATCH_ROWS;
  const maxBytes = options.maxChunkBytes ?? MAX_BATCH_BYTES;
  if (!Number.isInteger(maxRows) || maxRows < 1 || maxRows > MAX_BATCH_ROWS) {
    throw new RangeError(`chunkSize must be an integer from 1 to ${MAX_BATCH_ROWS}`);
  }
  const head = `{${JSON.stringify(key)}:[`;
  const chunks: Chunk<{ [P in K]: R[] }>[] = [];
  let parts: string[] = [];
  let bytes = head.length + 2;
  let offset = 0;
  const flush = () => {
    chunks.push({ offset, rows: parts.length, body: `${head}${parts.join(",")}]}` as JsonText<{ [P in K]: R[] }> });
    offset += parts.length;
    parts = [];
    bytes = head.length + 2;
  };
  for (const row of rows) {
    const json = JSON.stringify(row);
    const size = encoder.encode(json).length + 1;
    // A single row larger than the limit still goes alone: the API answers it with its own error.
    if (parts.length > 0 && (parts.length >= maxRows || bytes + size > maxBytes)) flush();
    parts.push(json);
    bytes += size;
  }
  if (parts.length > 0) flush();
  return chunks;
}

function reindexed(errors: readonly FieldError[], offset: number): FieldError[] {
  return errors.map((error) => (typeof error.index === "number" ? { ...error, index: error.index + offset } : error));
}

/** Whether a chunk's error means "no row of this chunk was accepted", with the rows' errors. */
function rejectedEveryRow(error: unknown): error is ShelfwiseError {
  return (
    error instanceof ShelfwiseError &&
    ((error.status === 400 && error.code === "validation_error") ||
      (error.status === 403 && error.code === "quota_exceeded")) &&
    error.errors.length > 0 &&
    error.errors.every((row) => typeof row.index === "number")
  );
}

/**
 * Sends the chunks in order and adds up their answers. A chunk whose every row was refused
 * (the API's 400/403 with per-row errors) counts as rejected rows when other rows were accepted;
 * when no row of the whole batch was, that error is thrown with every chunk's errors, re-indexed,
 * as the API does for one request. Any other error stops the batch: it carries `rowsCompleted`.
 */
export async function sendChunks<W, T extends BatchResultShape>(
  chunks: readonly Chunk<W>[],
  send: (body: JsonText<W>) => Promise<T>,
  empty: T,
): Promise<T> {
  const total: T = { ...empty, errors: [] };
  let firstRefusal: ShelfwiseError | undefined;
  let accepted = 0;
  for (const chunk of chunks) {
    let result: T;
    try {
      result = await send(chunk.body);
    } catch (error) {
      if (chunks.length > 1 && rejectedEveryRow(error)) {
        firstRefusal ??= error;
        total.received += chunk.rows;
        total.rejected += chunk.rows;
        total.errors.push(...reindexed(error.errors, chunk.offset));
        continue;
      }
      if (error instanceof ShelfwiseError && chunks.length > 1) {
        error.errors = reindexed(error.errors, chunk.offset);
        error.rowsCompleted = chunk.offset;
      }
      throw error;
    }
    accepted += result.received - result.rejected;
    for (const [name, value] of Object.entries(result)) {
      const counter = (total as Record<string, unknown>)[name];
      if (typeof value === "number" && typeof counter === "number") {
        (total as Record<string, unknown>)[name] = counter + value;
      }
    }
    total.errors.push(...reindexed(result.errors, chunk.offset));
    total.errors_truncated = total.errors_truncated || result.errors_truncated;
  }
  if (firstRefusal !== undefined && accepted === 0) {
    firstRefusal.errors = total.errors;
    throw firstRefusal;
  }
  return total;
}
