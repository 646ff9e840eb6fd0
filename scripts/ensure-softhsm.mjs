#!/usr/bin/env node
// Run before `npm start`, `npm test` and `npm run bench`: makes sure a PKCS#11 module is there.
// With PKCS11_MODULE set, that module is used and nothing is installed. Otherwise SoftHSM2 is needed:
// as root with apt it is installed (Debian package softhsm2); elsewhere we stop with the exact command.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import { ensurePackage } from "./lib/apt.mjs";

const CANDIDATES = [
  "/usr/lib/softhsm/libsofthsm2.so",
  "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
  "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
  "/usr/local/lib/softhsm/libsofthsm2.so",
  "/usr/lib64/pkcs11/libsofthsm2.so",
  "/opt/homebrew/lib/softhsm/libsofthsm2.so",
];

if (process.env.PKCS11_MODULE) {
  if (!fs.existsSync(process.env.PKCS11_MODULE)) {
    console.error(`PKCS11_MODULE: no file at ${process.env.PKCS11_MODULE}`);
    process.exit(2);
  }
  process.exit(0);
}
function hasUtil() {
  try {
    execFileSync("softhsm2-util", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}
ensurePackage({
  name: "SoftHSM2",
  pkg: "softhsm2",
  found: () => CANDIDATES.find((p) => fs.existsSync(p)) && hasUtil(),
  unavailable: ({ isRoot, hasApt, install }) =>
    `SoftHSM2 (libsofthsm2.so) is not installed and cannot be installed from here.\n` +
    `Run as root:\n  ${isRoot ? "" : "sudo "}${hasApt ? install : "install your distribution's softhsm2 package"}\n` +
    `or point PKCS11_MODULE (with PKCS11_PIN) at another PKCS#11 module.`,
});
