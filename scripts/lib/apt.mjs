// A system package the start and test commands need: present, it is used; missing, as root with apt
// the Debian package is installed; elsewhere the command stops with the exact command to run.
import { execFileSync } from "node:child_process";

function hasApt() {
  try {
    execFileSync("apt-get", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/**
 * Exits 0 once `found()` holds (installing the Debian package `pkg` first when root with apt), else 1
 * after saying what to run: `unavailable` words that for when it cannot be installed from here.
 *
 * @param {{ name: string, pkg: string, found: () => unknown,
 *   unavailable: (how: { isRoot: boolean, hasApt: boolean, install: string }) => string }} what
 */
export function ensurePackage({ name, pkg, found, unavailable }) {
  if (found()) process.exit(0);
  const install = `apt-get update && apt-get install -y ${pkg}`;
  const isRoot = process.getuid?.() === 0;
  const apt = hasApt();
  if (isRoot && apt) {
    console.error(`${name} is missing; installing the Debian package ${pkg} …`);
    try {
      execFileSync("apt-get", ["update", "-qq"], { stdio: "inherit" });
      execFileSync("apt-get", ["install", "-y", "-qq", pkg], {
        stdio: "inherit",
        env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
      });
    } catch {
      console.error(`Installing ${name} failed. Run as root:\n  ${install}`);
      process.exit(1);
    }
    if (found()) process.exit(0);
    console.error(`${name} still not found after installing. Run as root:\n  ${install}`);
    process.exit(1);
  }
  console.error(unavailable({ isRoot, hasApt: apt, install }));
  process.exit(1);
}
