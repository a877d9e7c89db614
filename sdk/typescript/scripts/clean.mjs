// Removes build output directories (npm scripts must not rely on `rm`, absent on Windows).
import { rmSync } from "node:fs";

for (const dir of process.argv.slice(2)) rmSync(new URL(`../${dir}`, import.meta.url), { recursive: true, force: true });
