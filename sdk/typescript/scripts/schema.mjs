// Generates src/schema.ts from the API's committed OpenAPI document with the pinned
// openapi-typescript, or with --check regenerates it into a temporary file and fails when it
// differs from the committed one: a schema change reaches the SDK only through `npm run generate`,
// after which `tsc` checks the hand-written client against the new types.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const root = fileURLToPath(new URL("..", import.meta.url));
const { values: args } = parseArgs({
  options: { check: { type: "boolean" }, input: { type: "string" }, output: { type: "string" } },
});
// --input/--output: another schema or destination (the pytest driver's breaking-change test).
const openapi = resolve(args.input ?? fileURLToPath(new URL("../../../docs/openapi.yaml", import.meta.url)));
const committed = join(root, "src", "schema.ts");
const cli = join(root, "node_modules", "openapi-typescript", "bin", "cli.js");
// Fields with a default stay optional in request bodies (the API fills them in).
const options = ["--default-non-nullable=false"];

function generate(output) {
  const run = spawnSync(process.execPath, [cli, openapi, ...options, "--output", output], {
    cwd: root,
    encoding: "utf8",
  });
  if (run.status !== 0) {
    process.stderr.write(run.stdout + run.stderr);
    process.exit(run.status ?? 1);
  }
}

if (!args.check) {
  generate(resolve(args.output ?? committed));
  process.exit(0);
}

const scratch = mkdtempSync(join(tmpdir(), "shelfwise-schema-"));
try {
  const fresh = join(scratch, "schema.ts");
  generate(fresh);
  const want = readFileSync(fresh, "utf8").split("\n");
  const have = readFileSync(committed, "utf8").split("\n");
  const line = want.findIndex((text, index) => text !== have[index]);
  if (line === -1 && want.length === have.length) {
    console.log("src/schema.ts matches docs/openapi.yaml");
  } else {
    const at = line === -1 ? Math.min(want.length, have.length) : line;
    console.error(
      `src/schema.ts is out of date with docs/openapi.yaml (first difference at line ${at + 1}):\n` +
        `  committed: ${have[at] ?? "<end of file>"}\n` +
        `  generated: ${want[at] ?? "<end of file>"}\n` +
        "Run `npm run generate` in sdk/typescript, then `npm run typecheck`: the hand-written client " +
        "must still compile against the new types.",
    );
    process.exitCode = 1;
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
