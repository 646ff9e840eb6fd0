// How a retry learns that the claimant of its Idempotency-Key is dead: each process holds a
// PostgreSQL advisory lock for its life (ProcessLiveness); a claim names it. While the owner lives, a
// retry of an uncommitted claim is 409; the moment the owner's connection is gone, the retry takes the
// claim over. A claim whose transaction row is committed is answered from the row at once, stored
// only when its owner is dead.
import { randomUUID } from "node:crypto";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { claimIdempotencyKey, hashIdempotencyKey, requestFingerprint } from "../../src/pipeline/idempotency.js";
import { ProcessLiveness } from "../../src/pipeline/liveness.js";
import { ServiceError } from "../../src/errors.js";
import { useTestDatabase } from "../helpers/db.js";

describe("idempotency claims of dead processes", () => {
  const db = useTestDatabase(4);
  const log = pino({ level: "silent" });
  const agentId = randomUUID();
  const fp = requestFingerprint("submit", { to: "0x0", value: "1" });

  const conflictOf = async (p: Promise<unknown>) => {
    try {
      await p;
    } catch (err) {
      return err instanceof ServiceError ? `${err.status} ${err.code}` : String(err);
    }
    return "no error";
  };

  it("an uncommitted claim is 409 while its owner lives, and taken over as soon as it dies", async () => {
    const a = await ProcessLiveness.start(db.url, log);
    const b = await ProcessLiveness.start(db.url, log);
    try {
      expect((await claimIdempotencyKey(db.pool, agentId, "k1", fp, a.key)).kind).toBe("claimed");
      expect(await conflictOf(claimIdempotencyKey(db.pool, agentId, "k1", fp, b.key))).toBe("409 idempotency_key_in_flight");
      await a.stop(); // the owner's connection closes, as when its process is killed
      const taken = await claimIdempotencyKey(db.pool, agentId, "k1", fp, b.key);
      expect(taken.kind).toBe("claimed");
      const { rows } = await db.pool.query("SELECT owner_key FROM idempotency_keys WHERE agent_id = $1 AND key_hash = $2", [
        agentId,
        hashIdempotencyKey(agentId, "k1"),
      ]);
      expect(rows[0].owner_key).toBe(b.key);
      // The new owner lives: another retry is 409 again; a different body is still 422.
      expect(await conflictOf(claimIdempotencyKey(db.pool, agentId, "k1", fp, a.key))).toBe("409 idempotency_key_in_flight");
      expect(await conflictOf(claimIdempotencyKey(db.pool, agentId, "k1", requestFingerprint("submit", { other: 1 }), a.key))).toBe(
        "422 idempotency_key_reused",
      );
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  it("a committed claim is answered from its row at once; stored only once its owner is dead", async () => {
    const a = await ProcessLiveness.start(db.url, log);
    const b = await ProcessLiveness.start(db.url, log);
    try {
      expect((await claimIdempotencyKey(db.pool, agentId, "k2", fp, a.key)).kind).toBe("claimed");
      const txId = randomUUID();
      await db.pool.query("UPDATE idempotency_keys SET tx_id = $3 WHERE agent_id = $1 AND key_hash = $2", [
        agentId,
        hashIdempotencyKey(agentId, "k2"),
        txId,
      ]);
      const live = await claimIdempotencyKey(db.pool, agentId, "k2", fp, b.key);
      expect(live).toMatchObject({ kind: "orphaned", txId, finish: false });
      await a.stop();
      const dead = await claimIdempotencyKey(db.pool, agentId, "k2", fp, b.key);
      expect(dead).toMatchObject({ kind: "orphaned", txId, finish: true });
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  it("a lost liveness connection is taken again with the same key (the process is still alive)", async () => {
    const a = await ProcessLiveness.start(db.url, log);
    try {
      expect((await claimIdempotencyKey(db.pool, agentId, "k3", fp, a.key)).kind).toBe("claimed");
      await db.pool.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'intents-liveness' AND datname = current_database()",
      );
      // Back within a second or so: the claim is its again, not takeable.
      const deadline = Date.now() + 10_000;
      let held = false;
      while (!held && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 200));
        const { rows } = await db.pool.query(
          "SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND classid = 7371 AND objid = $1::oid AND granted",
          [a.key],
        );
        held = rows[0].n === 1;
      }
      expect(held).toBe(true);
      expect(await conflictOf(claimIdempotencyKey(db.pool, agentId, "k3", fp, 12345))).toBe("409 idempotency_key_in_flight");
    } finally {
      await a.stop();
    }
  });
});
