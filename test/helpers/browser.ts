// The system's Chromium (Debian package `chromium`, installed by scripts/ensure-chromium.mjs before the
// tests run), driven by playwright-core. No browser build is downloaded; a missing one fails loudly.
import fs from "node:fs";
import { chromium, type Browser } from "playwright-core";

const CANDIDATES = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/lib/chromium/chromium"];

export function chromiumPath(): string {
  const p = process.env.CHROMIUM_PATH ?? CANDIDATES.find((c) => fs.existsSync(c));
  if (!p || !fs.existsSync(p)) throw new Error("Chromium is not installed. Run as root:\n  apt-get update && apt-get install -y chromium");
  return p;
}

export async function launchChromium(): Promise<Browser> {
  // As root, Chromium refuses to start with its sandbox.
  const args = process.getuid?.() === 0 ? ["--no-sandbox"] : [];
  return chromium.launch({
    executablePath: chromiumPath(),
    args: [
      ...args,
      "--disable-gpu",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-default-apps",
      "--disable-sync",
    ],
    headless: true,
  });
}
