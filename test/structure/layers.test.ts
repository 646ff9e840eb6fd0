// The dependency rule: the layers below the routes never import from src/http (neither code nor
// types). The routes parse and shape the wire; the pipeline, the repositories, the chains, the signer,
// the tracker and the approvals service take and hand back domain values.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";

const SRC = path.resolve(__dirname, "../../src");
const LOWER = ["pipeline", "db", "chains", "signer", "tracker", "approvals", "agents"];

/** Every module specifier a file names: static and type imports, re-exports, dynamic import(). */
export function specifiers(source: string): string[] {
  const out: string[] = [];
  const patterns = [
    /\b(?:import|export)\s[^;]*?\sfrom\s*["']([^"']+)["']/g,
    /\bimport\s*["']([^"']+)["']/g,
    /\bimport\(\s*["']([^"']+)["']\s*\)/g,
  ];
  for (const re of patterns) for (const m of source.matchAll(re)) out.push(m[1]);
  return out;
}

/** The files of `src/<layer>` that import something inside `src/http`, with what they import. */
export function httpImports(src: string, layer: string): string[] {
  const dir = path.join(src, layer);
  const bad: string[] = [];
  for (const rel of fs.readdirSync(dir, { recursive: true }) as string[]) {
    if (!/\.(ts|mts|js|mjs)$/.test(rel)) continue;
    const file = path.join(dir, rel);
    for (const spec of specifiers(fs.readFileSync(file, "utf8"))) {
      if (!spec.startsWith(".")) continue;
      const target = path.resolve(path.dirname(file), spec);
      if (target === path.join(src, "http") || target.startsWith(path.join(src, "http") + path.sep)) {
        bad.push(`${path.relative(src, file)} → ${spec}`);
      }
    }
  }
  return bad;
}

describe("layers", () => {
  it.each(LOWER)("src/%s imports nothing from src/http", (layer) => {
    expect(httpImports(SRC, layer)).toEqual([]);
  });

  it("the check sees every form of import", () => {
    const forms = [
      'import { x } from "../http/schemas/transactions.js";',
      'import type { X } from "../../http/types.js";',
      'export { y } from "../http/errors.js";',
      'import "../http/side-effect.js";',
      'const m = await import("../http/agents.js");',
      "import {\n  a,\n  b,\n} from '../http/intents.js';",
    ];
    for (const f of forms)
      expect(
        specifiers(f).filter((s) => s.includes("/http/")),
        f,
      ).toHaveLength(1);
    expect(specifiers('import { z } from "zod"; // from "../http/x.js" in a comment is not an import')).toEqual(["zod"]);
  });

  it("fails on a lower layer that imports src/http", () => {
    const src = fs.mkdtempSync(path.join(os.tmpdir(), "layers-"));
    try {
      fs.mkdirSync(path.join(src, "pipeline", "deep"), { recursive: true });
      fs.writeFileSync(path.join(src, "pipeline", "ok.ts"), 'import { x } from "./deep/y.js";\nimport { z } from "zod";\n');
      fs.writeFileSync(path.join(src, "pipeline", "deep", "bad.ts"), 'import type { App } from "../../http/types.js";\n');
      expect(httpImports(src, "pipeline")).toEqual([`${path.join("pipeline", "deep", "bad.ts")} → ../../http/types.js`]);
    } finally {
      fs.rmSync(src, { recursive: true, force: true });
    }
  });
});
