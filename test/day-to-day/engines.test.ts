// The supported Node versions (package.json `engines`) are the ones every installed package accepts,
// so `npm ci` prints no EBADENGINE warning on them; the Dockerfile's Node is one of them.
import fs from "node:fs";
import path from "node:path";
import semver from "semver";
import { describe, expect, it } from "vitest";
import { ROOT } from "../helpers/process.js";

const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8"));
const supported: string = pkg.engines.node;
/** The lowest release of each supported major: the versions most likely to be refused. */
const lowest = ["20.19.0", "22.12.0", "24.0.0"];

function installed(dir: string, out: Array<{ name: string; version: string; node?: string }> = []) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (!e.isDirectory() || e.name === ".bin") continue;
    const p = path.join(dir, e.name);
    if (e.name.startsWith("@")) {
      installed(p, out);
      continue;
    }
    const file = path.join(p, "package.json");
    if (!fs.existsSync(file)) continue;
    const j = JSON.parse(fs.readFileSync(file, "utf8"));
    out.push({ name: j.name, version: j.version, node: j.engines?.node });
    if (fs.existsSync(path.join(p, "node_modules"))) installed(path.join(p, "node_modules"), out);
  }
  return out;
}

describe("Node engines", () => {
  it("every installed package accepts the lowest release of each supported Node major", () => {
    for (const v of lowest) expect(semver.satisfies(v, supported), `${v} in ${supported}`).toBe(true);
    const refused = installed(path.join(ROOT, "node_modules")).flatMap((p) =>
      lowest.filter((v) => p.node && !semver.satisfies(v, p.node)).map((v) => `${p.name}@${p.version} wants node ${p.node}, not ${v}`),
    );
    expect(refused).toEqual([]);
  });

  it("the Dockerfile's Node is a supported one", () => {
    const froms = [...fs.readFileSync(path.join(ROOT, "Dockerfile"), "utf8").matchAll(/^FROM node:(\d+)/gm)].map((m) => Number(m[1]));
    expect(froms.length).toBeGreaterThan(0);
    for (const major of froms) expect(lowest.some((v) => semver.major(v) === major)).toBe(true);
  });
});
