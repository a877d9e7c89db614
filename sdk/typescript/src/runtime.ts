// What the client needs to know about where it runs, without depending on Node's types: the
// package has no runtime dependencies and must load unchanged in browsers, workers and Node 18+.

interface NodeProcessLike {
  versions?: { node?: string };
}

/** True in a web page: the rule from the issue, `window` and `document` both defined. */
export function isBrowser(): boolean {
  return typeof window !== "undefined" && typeof document !== "undefined";
}

/** Node's version (e.g. "22.20.0"), or undefined anywhere else (browsers, Deno's web mode, workers). */
export function nodeVersion(): string | undefined {
  const process = (globalThis as { process?: NodeProcessLike }).process;
  const version = process?.versions?.node;
  return typeof version === "string" && !isBrowser() ? version : undefined;
}

interface CryptoLike {
  randomUUID?: () => string;
  getRandomValues?: <T extends ArrayBufferView | null>(array: T) => T;
}

function uuidFromBytes(bytes: Uint8Array): string {
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x40; // version 4
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80; // RFC 4122 variant
  const hex = Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

let nodeCrypto: Promise<CryptoLike | undefined> | undefined;

/**
 * A random (v4) UUID for an Idempotency-Key. `crypto.randomUUID` exists in Node 19+ and in
 * browsers' secure contexts; `getRandomValues` also on plain-http pages; Node 18 has neither as a
 * global, so there the built-in `node:crypto` module is loaded (the specifier is a variable so that
 * browser bundlers leave it alone).
 */
export async function randomUUID(): Promise<string> {
  const web = (globalThis as { crypto?: CryptoLike }).crypto;
  if (typeof web?.randomUUID === "function") return web.randomUUID();
  if (typeof web?.getRandomValues === "function") return uuidFromBytes(web.getRandomValues(new Uint8Array(16)));
  if (nodeVersion() !== undefined) {
    const specifier = "node:crypto";
    nodeCrypto ??= import(/* webpackIgnore: true */ /* @vite-ignore */ specifier).then(
      (module: { webcrypto?: CryptoLike; randomUUID?: () => string }) =>
        module.randomUUID ? { randomUUID: module.randomUUID } : module.webcrypto,
      () => undefined,
    );
    const loaded = await nodeCrypto;
    if (typeof loaded?.randomUUID === "function") return loaded.randomUUID();
  }
  throw new Error("@shelfwise/client needs crypto.randomUUID or crypto.getRandomValues to make Idempotency-Keys");
}
