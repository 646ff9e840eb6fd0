// Three service processes on one host, as the README's "Several processes" section sets them up: one
// external PostgreSQL, one shared SoftHSM token (SOFTHSM_DIR), one chain, a DATA_DIR each. Clients
// submit with Idempotency-Keys round-robin across them; one process is killed -9 mid-load; each client
// whose request failed retries with the same key on another process until answered. Every key is
// answered within 10 s of its first retry after the kill (the committed row at once, a claim of the
// dead process taken over as soon as its liveness lock is gone), with one transaction per key: nonces
// distinct and consecutive, all mined. The answer-time distribution is printed.
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { useProcessBench } from "../helpers/process.js";

const DEAD = "0x000000000000000000000000000000000000dEaD";
const SUBMITS = 150;
const CONCURRENCY = 24;
const KILL_AFTER_ANSWERS = 50;

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

describe("three processes, kill -9 of one mid-load", () => {
  const bench = useProcessBench({ anvil: { sweepSeconds: 1 }, dirPrefix: "intents-3p-" });
  const { op, procs } = bench;
  const bases: string[] = [];

  beforeAll(async () => {
    const env = (i: number) => ({
      DATA_DIR: path.join(bench.dir, `data-${i}`),
      SOFTHSM_DIR: path.join(bench.dir, "shared-token"),
      PKCS11_TOKEN_LABEL: "intents-3p",
      TRACKER_INTERVAL_MS: "200",
      BROADCAST_TIMEOUT_MS: "2000",
      LOCAL_CHAIN_STUCK_AFTER_SECONDS: "3",
    });
    // The first creates the token and the key; the others join them.
    for (let i = 0; i < 3; i++) {
      bases.push(await bench.spawn(env(i)).url);
    }
  });

  it("every key is answered within 10 s of its retry, one transaction per key, all mined", async () => {
    const created = await fetch(`${bases[0]}/v1/agents`, {
      method: "POST",
      headers: { authorization: `Bearer ${op}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "load", intents_api_enabled: true }),
    }).then((r) => r.json() as Promise<{ agent: { id: string }; api_key: string }>);
    const agentId = created.agent.id;
    const agentKey = created.api_key; // used directly as the bearer: no token exchange needed

    let answered = 0;
    let killedAt = 0;
    const alive = [true, true, true];
    const conflicts = { before: 0, after: 0 };
    const results: Array<{ key: string; status: number; id: string; nonce: number; firstRetryAfterKill?: number; answeredAt: number }> = [];

    const submitOnce = async (p: number, key: string) => {
      const r = await fetch(`${bases[p]}/v1/agents/${agentId}/transactions`, {
        method: "POST",
        headers: { authorization: `Bearer ${agentKey}`, "content-type": "application/json", "idempotency-key": key },
        body: JSON.stringify({ to: DEAD, value: "0.0001", chain: "local" }),
        signal: AbortSignal.timeout(30_000),
      });
      return { status: r.status, body: (await r.json()) as { id: string; nonce: number } };
    };

    const submitWithRetries = async (i: number) => {
      const key = `load-${i}`;
      let p = i % 3;
      let firstRetryAfterKill: number | undefined;
      for (let attempt = 0; ; attempt++) {
        if (attempt > 0) {
          if (killedAt && firstRetryAfterKill === undefined) firstRetryAfterKill = Date.now();
          await new Promise((r) => setTimeout(r, 100));
          do p = (p + 1) % 3;
          while (!alive[p]);
        }
        let r;
        try {
          r = await submitOnce(p, key);
        } catch {
          continue; // the process died under the request: retry elsewhere with the same key
        }
        if (r.status === 201 || r.status === 200) {
          answered++;
          results.push({ key, status: r.status, id: r.body.id, nonce: r.body.nonce, firstRetryAfterKill, answeredAt: Date.now() });
          return;
        }
        if (r.status === 409 || r.status === 503) {
          if (killedAt) conflicts.after++;
          else conflicts.before++;
          continue;
        }
        throw new Error(`key ${key}: unexpected ${r.status} ${JSON.stringify(r.body)}`);
      }
    };

    let next = 0;
    const worker = async () => {
      for (let i = next++; i < SUBMITS; i = next++) await submitWithRetries(i);
    };
    const killer = (async () => {
      while (answered < KILL_AFTER_ANSWERS) await new Promise((r) => setTimeout(r, 5));
      alive[2] = false;
      killedAt = Date.now();
      procs[2].proc.kill("SIGKILL");
    })();
    await Promise.all([...Array.from({ length: CONCURRENCY }, worker), killer]);

    expect(results).toHaveLength(SUBMITS);
    const retried = results.filter((r) => r.firstRetryAfterKill !== undefined).map((r) => r.answeredAt - r.firstRetryAfterKill!);
    const sorted = [...retried].sort((a, b) => a - b);
    const line =
      `keys retried after the kill -9: ${retried.length} of ${SUBMITS}; answered after their first retry (ms): ` +
      (sorted.length ? `min ${sorted[0]}, p50 ${pct(sorted, 50)}, p90 ${pct(sorted, 90)}, max ${sorted[sorted.length - 1]}` : "none") +
      `; all: [${sorted.join(", ")}]; 409/503 before the kill ${conflicts.before}, after ${conflicts.after}`;
    console.log(line);
    expect(retried.length).toBeGreaterThan(0); // the kill did hit requests in flight
    for (const ms of retried) expect(ms).toBeLessThanOrEqual(10_000);

    // One transaction per key: as many rows as keys, each key's answer naming its own row.
    const ids = new Set(results.map((r) => r.id));
    expect(ids.size).toBe(SUBMITS);
    const { rows } = await bench.client.query<{ id: string; nonce: string; from_address: string }>(
      "SELECT id, nonce, from_address FROM transactions WHERE agent_id = $1 ORDER BY nonce",
      [agentId],
    );
    expect(rows).toHaveLength(SUBMITS);
    expect(new Set(rows.map((r) => r.id))).toEqual(ids);
    const nonces = rows.map((r) => Number(r.nonce));
    expect(nonces).toEqual(Array.from({ length: SUBMITS }, (_, i) => nonces[0] + i));

    // All mined: the chain's count for the address passes the last nonce.
    const from = rows[0].from_address;
    const deadline = Date.now() + 90_000;
    let count = 0;
    while (Date.now() < deadline) {
      const r = await fetch(bench.anvil.url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_getTransactionCount", params: [from, "latest"] }),
      });
      count = Number(((await r.json()) as { result: string }).result);
      if (count >= nonces[nonces.length - 1] + 1) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(count).toBe(nonces[nonces.length - 1] + 1);
  });
});
