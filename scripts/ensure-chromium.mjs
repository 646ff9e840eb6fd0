#!/usr/bin/env node
// Run before `npm test` and `npm run console:screenshots`: the console's browser tests drive the
// system's Chromium (Debian package `chromium`) with playwright-core; no browser is ever downloaded.
// With CHROMIUM_PATH set, that binary is used and nothing is installed. Otherwise, as root with apt it
// is installed; elsewhere we stop with the exact command.
import { execFileSync } from "node:child_process";
import fs from "node:fs";

const CANDIDATES = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/lib/chromium/chromium"];
const INSTALL = "apt-get update && apt-get install -y chromium";

if (process.env.CHROMIUM_PATH) {
  if (!fs.existsSync(process.env.CHROMIUM_PATH)) {
    console.error(`CHROMIUM_PATH: no file at ${process.env.CHROMIUM_PATH}`);
    process.exit(2);
  }
  process.exit(0);
}
if (CANDIDATES.some((p) => fs.existsSync(p))) process.exit(0);

const isRoot = process.getuid?.() === 0;
let hasApt = false;
try {
  execFileSync("apt-get", ["--version"], { stdio: "ignore" });
  hasApt = true;
} catch {}

if (isRoot && hasApt) {
  console.error("Chromium is missing; installing the Debian package chromium …");
  try {
    execFileSync("apt-get", ["update", "-qq"], { stdio: "inherit" });
    execFileSync("apt-get", ["install", "-y", "-qq", "chromium"], {
      stdio: "inherit",
      env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    });
  } catch {
    console.error(`Installing Chromium failed. Run as root:\n  ${INSTALL}`);
    process.exit(1);
  }
  if (CANDIDATES.some((p) => fs.existsSync(p))) process.exit(0);
  console.error(`Chromium still not found after installing. Run as root:\n  ${INSTALL}`);
  process.exit(1);
}
console.error(
  `Chromium is not installed and cannot be installed from here (the console's browser tests need it).\n` +
    `Run as root:\n  ${INSTALL}\nor set CHROMIUM_PATH to a Chromium binary.`,
);
process.exit(1);
