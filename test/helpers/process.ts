// The service as its own process, started the way `npm start` starts it (one node process with tsx as
// a loader, so signals reach the service itself), for tests of start-up, signals and crashes. The
// testing kit (src/testing.ts) starts its services with the same function.
import path from "node:path";
import { spawnServiceProcess, type ServiceChild } from "../../src/testing.js";

export const ROOT = path.resolve(import.meta.dirname, "../..");

export type ServiceProcess = ServiceChild;

export function spawnService(env: Record<string, string>): ServiceProcess {
  return spawnServiceProcess(env);
}
