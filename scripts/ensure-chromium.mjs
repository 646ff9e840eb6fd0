#!/usr/bin/env node
// Run before `npm test` and `npm run console:screenshots`: the console's browser tests drive the
// system's Chromium (Debian package `chromium`) with playwright-core; no browser is ever downloaded.
// With CHROMIUM_PATH set, that binary is used and nothing is installed. Otherwise, as root with apt it
// is installed; elsewhere we stop with the exact command.
import fs from "node:fs";
import { ensurePackage } from "./lib/apt.mjs";

const CANDIDATES = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/lib/chromium/chromium"];

if (process.env.CHROMIUM_PATH) {
  if (!fs.existsSync(process.env.CHROMIUM_PATH)) {
    console.error(`CHROMIUM_PATH: no file at ${process.env.CHROMIUM_PATH}`);
    process.exit(2);
  }
  process.exit(0);
}
ensurePackage({
  name: "Chromium",
  pkg: "chromium",
  found: () => CANDIDATES.some((p) => fs.existsSync(p)),
  unavailable: ({ install }) =>
    `Chromium is not installed and cannot be installed from here (the console's browser tests need it).\n` +
    `Run as root:\n  ${install}\nor set CHROMIUM_PATH to a Chromium binary.`,
});
