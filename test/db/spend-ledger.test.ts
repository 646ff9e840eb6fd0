// The per-minute spend ledger (migrations/0015_spend_ledger.sql) against what it replaces: summing the
// agent's counted transactions of the last 24 h. Random inserts, status changes (refusals, disclosure),
// fee bumps and deletes, many rows right at the window's far edge; the ledger's answer must equal the
// full scan to the wei, for every agent, after every step. Real PostgreSQL.
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import fc from "fast-check";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { lockSpend, spendOf, type SpendToday } from "../../src/db/agents.js";
import { migrate, MIGRATIONS_DIR } from "../../src/db/migrate.js";
import { createEmptyDatabase, useTestDatabase } from "../helpers/db.js";

// The query the ledger replaces, kept here as the reference.
async function scan(db: pg.ClientBase, agentIds: string[]): Promise<Map<string, SpendToday>> {
  const out = new Map<string, SpendToday>();
  for (const id of agentIds) {
    const { rows } = await db.query(
      `SELECT coalesce(sum(value_wei), 0)::text AS spent, coalesce(sum(fee_wei), 0)::text AS fees,
              count(*) FILTER (WHERE created_at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') AS count_today
         FROM transactions
        WHERE agent_id = $1 AND created_at > now() - interval '24 hours'
          AND counts_toward_limits AND (status NOT IN ('failed', 'simulation_failed') OR signed_tx_disclosed)`,
      [id],
    );
    out.set(id, { spent_wei: BigInt(rows[0].spent), fees_wei: BigInt(rows[0].fees), count_today: Number(rows[0].count_today) });
  }
  return out;
}

const STATUSES = ["signed", "sign_only", "broadcast", "failed", "simulation_failed"] as const;
const DAY = 24 * 3600;

const rowArb = (agents: number) =>
  fc.record({
    agent: fc.nat({ max: agents - 1 }),
    // Seconds before now: anywhere in 26 h, or within 90 s of the window's far edge.
    age: fc.oneof(fc.integer({ min: 0, max: DAY + 7200 }), fc.integer({ min: DAY - 90, max: DAY + 90 })),
    value: fc.bigInt({ min: 0n, max: 2n ** 200n }),
    fee: fc.bigInt({ min: 0n, max: 2n ** 80n }),
    status: fc.constantFrom(...STATUSES),
    disclosed: fc.boolean(),
    counts: fc.boolean(),
  });

type Row = { agent: number; age: number; value: bigint; fee: bigint; status: string; disclosed: boolean; counts: boolean };
type Step =
  | { kind: "insert"; rows: Row[] }
  | { kind: "status"; pick: number[]; status: string; disclosed: boolean }
  | { kind: "fee"; pick: number[]; fee: bigint }
  | { kind: "delete"; pick: number[] };

async function insertRows(db: pg.ClientBase, agentIds: string[], rows: Row[]): Promise<string[]> {
  const ids = rows.map(() => randomUUID());
  // One statement for the batch, as a commit group writes them.
  await db.query(
    `INSERT INTO transactions (id, agent_id, chain, chain_id, from_address, to_address, value_wei, signing_key_path,
                               status, fee_wei, signed_tx_disclosed, counts_toward_limits, created_at)
     SELECT u.id, u.agent, 'local', 31337, '0x01', '0x02', u.value, 'keys/local-signer', u.status, u.fee, u.disclosed, u.counts,
            now() - make_interval(secs => u.age)
       FROM unnest($1::uuid[], $2::uuid[], $3::numeric[], $4::text[], $5::numeric[], $6::bool[], $7::bool[], $8::float8[])
         AS u(id, agent, value, status, fee, disclosed, counts, age)`,
    [
      ids,
      rows.map((r) => agentIds[r.agent]),
      rows.map((r) => r.value.toString()),
      rows.map((r) => r.status),
      rows.map((r) => r.fee.toString()),
      rows.map((r) => r.disclosed),
      rows.map((r) => r.counts),
      rows.map((r) => r.age),
    ],
  );
  return ids;
}

describe("rolling spend ledger", () => {
  const db = useTestDatabase(4);
  it("equals the full scan after any sequence of inserts, refusals, fee bumps and deletes", async () => {
    const agents = 3;
    const stepArb = fc.oneof(
      {
        arbitrary: fc.record({ kind: fc.constant("insert" as const), rows: fc.array(rowArb(agents), { minLength: 1, maxLength: 12 }) }),
        weight: 3,
      },
      {
        arbitrary: fc.record({
          kind: fc.constant("status" as const),
          pick: fc.array(fc.nat(), { minLength: 1, maxLength: 6 }),
          status: fc.constantFrom(...STATUSES),
          disclosed: fc.boolean(),
        }),
        weight: 2,
      },
      {
        arbitrary: fc.record({
          kind: fc.constant("fee" as const),
          pick: fc.array(fc.nat(), { minLength: 1, maxLength: 3 }),
          fee: fc.bigInt({ min: 0n, max: 2n ** 90n }),
        }),
        weight: 1,
      },
      {
        arbitrary: fc.record({ kind: fc.constant("delete" as const), pick: fc.array(fc.nat(), { minLength: 1, maxLength: 3 }) }),
        weight: 1,
      },
    );
    await fc.assert(
      fc.asyncProperty(fc.array(stepArb, { minLength: 1, maxLength: 8 }), async (steps) => {
        const agentIds = Array.from({ length: agents }, () => randomUUID());
        const c = await db.pool.connect();
        try {
          const ids: string[] = [];
          for (const step of steps as Step[]) {
            const picked = (pick: number[]) => (ids.length ? [...new Set(pick.map((p) => ids[p % ids.length]))] : []);
            if (step.kind === "insert") ids.push(...(await insertRows(c, agentIds, step.rows)));
            else if (step.kind === "status")
              await c.query("UPDATE transactions SET status = $2, signed_tx_disclosed = $3 WHERE id = ANY($1::uuid[])", [
                picked(step.pick),
                step.status,
                step.disclosed,
              ]);
            else if (step.kind === "fee")
              await c.query("UPDATE transactions SET fee_wei = $2 WHERE id = ANY($1::uuid[])", [picked(step.pick), step.fee.toString()]);
            else await c.query("DELETE FROM transactions WHERE id = ANY($1::uuid[])", [picked(step.pick)]);

            // Both reads in one transaction: the same now().
            await c.query("BEGIN");
            try {
              const [ledger, reference] = [await spendOf(c, agentIds), await scan(c, agentIds)];
              expect(ledger).toEqual(reference);
            } finally {
              await c.query("COMMIT");
            }
          }
        } finally {
          c.release();
        }
      }),
      { numRuns: 60 },
    );
  });

  it("under the lock, pruning drops only buckets that left the window", async () => {
    const agentIds = [randomUUID()];
    const c = await db.pool.connect();
    try {
      await c.query("INSERT INTO agent_spend_locks (agent_id) VALUES ($1)", agentIds);
      await insertRows(c, agentIds, [
        { agent: 0, age: DAY + 2 * 3600, value: 5n, fee: 1n, status: "signed", disclosed: true, counts: true },
        { agent: 0, age: 60, value: 7n, fee: 2n, status: "signed", disclosed: true, counts: true },
      ]);
      const buckets = async () =>
        Number((await c.query("SELECT count(*) FROM agent_spend_minutes WHERE agent_id = $1", agentIds)).rows[0].count);
      expect(await buckets()).toBe(2);
      const before = await spendOf(c, agentIds);
      await c.query("BEGIN");
      expect(await lockSpend(c, agentIds)).toEqual(before);
      await c.query("COMMIT");
      expect(await buckets()).toBe(1);
      expect(before.get(agentIds[0])).toMatchObject({ spent_wei: 7n, fees_wei: 2n });
    } finally {
      c.release();
    }
  });

  it("a caller that waited for the lock counts what the holder committed", async () => {
    const agentIds = [randomUUID()];
    await db.pool.query("INSERT INTO agent_spend_locks (agent_id) VALUES ($1)", agentIds);
    const [a, b] = [await db.pool.connect(), await db.pool.connect()];
    try {
      await a.query("BEGIN");
      expect((await lockSpend(a, agentIds)).get(agentIds[0])!.spent_wei).toBe(0n);
      await b.query("BEGIN");
      const waiting = lockSpend(b, agentIds);
      await insertRows(a, agentIds, [{ agent: 0, age: 0, value: 11n, fee: 3n, status: "signed", disclosed: true, counts: true }]);
      // Wait until b is blocked on a's lock; a's row must then be in what b reads once a commits.
      const blocked = async () =>
        (await db.pool.query("SELECT count(*)::int AS n FROM pg_locks WHERE NOT granted AND locktype = 'transactionid'")).rows[0].n > 0;
      while (!(await blocked())) await new Promise((r) => setTimeout(r, 10));
      await a.query("COMMIT");
      expect((await waiting).get(agentIds[0])).toMatchObject({ spent_wei: 11n, fees_wei: 3n, count_today: expect.any(Number) });
      await b.query("COMMIT");
    } finally {
      a.release();
      b.release();
    }
  });
});

describe("spend ledger migration", () => {
  it("starts from the transactions already stored", async () => {
    const db = await createEmptyDatabase();
    const pool = new pg.Pool({ connectionString: db.url, max: 1 });
    const before = fs.mkdtempSync(path.join(os.tmpdir(), "migrations-"));
    try {
      for (const f of fs.readdirSync(MIGRATIONS_DIR).filter((f) => f < "0015"))
        fs.copyFileSync(path.join(MIGRATIONS_DIR, f), path.join(before, f));
      await migrate(pool, before);
      const agentIds = [randomUUID(), randomUUID()];
      const c = await pool.connect();
      try {
        await insertRows(c, agentIds, fc.sample(rowArb(2), { numRuns: 40, seed: 7 }));
      } finally {
        c.release();
      }
      await migrate(pool);
      const c2 = await pool.connect();
      try {
        await c2.query("BEGIN");
        expect(await spendOf(c2, agentIds)).toEqual(await scan(c2, agentIds));
        await c2.query("COMMIT");
      } finally {
        c2.release();
      }
    } finally {
      await pool.end();
      await db.drop();
      fs.rmSync(before, { recursive: true, force: true });
    }
  });
});
