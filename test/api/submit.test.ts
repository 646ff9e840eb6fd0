// Submit, sign, list and get against real Postgres, SoftHSM and anvil; every body is checked against
// the reference schemas.
import { createPublicClient, http, parseTransaction, recoverTransactionAddress, type Hex } from "viem";
import { beforeAll, describe, expect, it } from "vitest";
import { call, createAgent } from "../helpers/api.js";
import { assertMatchesReference } from "../helpers/reference.js";
import { useService } from "../helpers/use-service.js";

const DEAD = "0x000000000000000000000000000000000000dEaD";

describe("transactions", () => {
  const svc = useService({ agent: true });
  const { op } = svc;
  let chain: ReturnType<typeof createPublicClient>;

  beforeAll(async () => {
    chain = createPublicClient({ transport: http(svc.ctx.localChainUrl!) });
  });

  const submit = (body: unknown, opts: { token?: string; headers?: Record<string, string>; path?: string; agentId?: string } = {}) =>
    call(svc.app, "POST", `/v1/agents/${opts.agentId ?? svc.agent.id}/transactions${opts.path ?? ""}`, {
      token: opts.token ?? svc.agent.token,
      body,
      headers: opts.headers,
    });

  it("submits, signs in the HSM, broadcasts, and the transaction mines", async () => {
    const r = await submit({ to: DEAD, value: "0.01", chain: "local" });
    expect(r.status).toBe(201);
    assertMatchesReference("TransactionResponse", r.body);
    expect(r.body).toMatchObject({
      status: "broadcast",
      chain: "local",
      chain_id: 31337,
      value_wei: "10000000000000000",
      chain_status: "unconfirmed",
    });
    expect(typeof r.body.signed_tx).toBe("string");
    const signer = await recoverTransactionAddress({ serializedTransaction: r.body.signed_tx as Hex } as never);
    expect(signer.toLowerCase()).toBe(r.body.from.toLowerCase());
    const receipt = await chain.waitForTransactionReceipt({ hash: r.body.tx_hash });
    expect(receipt.status).toBe("success");
    expect(parseTransaction(r.body.signed_tx).type).toBe("eip1559");
  });

  it("uses legacy type 0 when gas_price is given and honours gas_limit", async () => {
    const r = await submit({ to: DEAD, value: "0", chain: "31337", gas_price: "3000000000", gas_limit: 30000 });
    expect(r.status).toBe(201);
    const tx = parseTransaction(r.body.signed_tx);
    expect(tx.type).toBe("legacy");
    expect(tx.gas).toBe(30000n);
    expect(tx.gasPrice).toBe(3000000000n);
    expect(tx.chainId).toBe(31337);
    expect((await chain.waitForTransactionReceipt({ hash: r.body.tx_hash })).status).toBe("success");
  });

  it("GET omits signed_tx unless include_signed_tx is exactly true or 1", async () => {
    const r = await submit({ to: DEAD, value: "0.001", chain: "anvil" });
    const url = `/v1/agents/${svc.agent.id}/transactions/${r.body.id}`;
    for (const q of ["", "?include_signed_tx=false", "?include_signed_tx=yes", "?include_signed_tx=TRUE"]) {
      const g = await call(svc.app, "GET", url + q, { token: svc.agent.token });
      expect(g.status).toBe(200);
      expect("signed_tx" in g.body).toBe(false);
      assertMatchesReference("TransactionResponse", g.body);
    }
    for (const q of ["?include_signed_tx=true", "?include_signed_tx=1"]) {
      const g = await call(svc.app, "GET", url + q, { token: svc.agent.token });
      expect(g.body.signed_tx).toBe(r.body.signed_tx);
    }
    const op404 = await call(svc.app, "GET", `/v1/agents/${svc.agent.id}/transactions/00000000-0000-4000-8000-000000000000`, {
      token: svc.agent.token,
    });
    expect(op404.status).toBe(404);
    assertMatchesReference("ProblemDetails", op404.body);
  });

  it("sign-only returns a signed transaction that is not broadcast", async () => {
    const before = await chain.getTransactionCount({
      address: (await svc.ctx.signer.getKey("keys/local-signer"))!.address,
      blockTag: "pending",
    });
    const r = await submit({ to: DEAD, value: "0.002", chain: "local" }, { path: "/sign" });
    expect(r.status).toBe(200);
    assertMatchesReference("SignTransactionResponse", r.body);
    expect(r.body.status).toBe("sign_only");
    const after = await chain.getTransactionCount({ address: r.body.from, blockTag: "pending" });
    expect(after).toBe(before);
    await expect(chain.getTransactionReceipt({ hash: r.body.tx_hash })).rejects.toThrow();
  });

  it("lists newest first with cursor pagination and filters", async () => {
    const fresh = await createAgent(svc.app, op);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++)
      ids.push((await submit({ to: DEAD, value: "0", chain: "local" }, { token: fresh.token, agentId: fresh.id })).body.id);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const q: string = `?limit=2${cursor ? `&cursor=${cursor}` : ""}`;
      const page = await call(svc.app, "GET", `/v1/agents/${fresh.id}/transactions${q}`, { token: fresh.token });
      expect(page.status).toBe(200);
      assertMatchesReference("TransactionListResponse", page.body);
      for (const t of page.body.transactions) expect("signed_tx" in t).toBe(false);
      seen.push(...page.body.transactions.map((t: { id: string }) => t.id));
      cursor = page.body.next_cursor;
    } while (cursor);
    expect(seen).toEqual([...ids].reverse());
    const filtered = await call(svc.app, "GET", `/v1/agents/${fresh.id}/transactions?status=sign_only`, { token: fresh.token });
    expect(filtered.body.transactions).toEqual([]);
    const byChain = await call(svc.app, "GET", `/v1/agents/${fresh.id}/transactions?chain=31337&limit=500`, { token: fresh.token });
    expect(byChain.body.transactions).toHaveLength(5);
    expect((await call(svc.app, "GET", `/v1/agents/${fresh.id}/transactions?limit=501`, { token: fresh.token })).status).toBe(400);
    expect((await call(svc.app, "GET", `/v1/agents/${fresh.id}/transactions?cursor=garbage`, { token: fresh.token })).status).toBe(400);
    // Operators may read any agent's transactions.
    expect((await call(svc.app, "GET", `/v1/agents/${fresh.id}/transactions`, { token: op })).body.transactions).toHaveLength(5);
  });

  it("a node rejection is recorded as failed and the next submit reuses its nonce: no gap on chain", async () => {
    const poor = await call(svc.app, "POST", "/v1/signing-keys", { token: op, body: { path: "keys/poor-signer" } });
    const poorAddr = (poor.status === 201 ? poor.body.address : (await svc.ctx.signer.createKey("keys/poor-signer")).address) as Hex;
    if (poor.status !== 201) {
      const { recordSigningKey } = await import("../../src/db/signing-keys.js");
      await recordSigningKey(svc.ctx.pool, (await svc.ctx.signer.getKey("keys/poor-signer"))!);
    }
    // Keys are granted, not guessed: the operator lets this agent sign with it.
    expect(
      (await call(svc.app, "POST", "/v1/signing-keys/keys%2Fpoor-signer/grants", { token: op, body: { agent_id: svc.agent.id } })).status,
    ).toBe(201);
    // Enough for one transfer, not for two; gas_limit skips the estimate so the node itself decides.
    await chain.request({ method: "anvil_setBalance" as never, params: [poorAddr, "0x" + (10n ** 16n).toString(16)] as never });
    const body = (value: string) => ({ to: DEAD, value, chain: "local", signing_key_path: "keys/poor-signer", gas_limit: 21000 });
    const rejected = await submit(body("5"));
    expect(rejected.status).toBe(201);
    assertMatchesReference("TransactionResponse", rejected.body);
    expect(rejected.body.status).toBe("failed");
    expect(rejected.body.error_message).toMatch(/insufficient funds/i);
    expect(rejected.body.nonce).toBe(0);

    const ok = await submit(body("0.001"));
    expect(ok.status).toBe(201);
    expect(ok.body.status).toBe("broadcast");
    expect(ok.body.nonce).toBe(0);
    await chain.waitForTransactionReceipt({ hash: ok.body.tx_hash });
    expect(await chain.getTransactionCount({ address: poorAddr })).toBe(1);
    // A failed transaction does not count toward the agent's spend.
    const me = await call(svc.app, "GET", `/v1/agents/${svc.agent.id}`, { token: svc.agent.token });
    expect(Number(me.body.tx_spent_today)).toBeLessThan(5);
  });

  it("200 concurrent submits on one address get 200 distinct consecutive nonces, all mined", async () => {
    const a = await createAgent(svc.app, op);
    const key = await svc.ctx.signer.createKey(`agents/${a.id}/chains/local`);
    const { recordSigningKey } = await import("../../src/db/signing-keys.js");
    await recordSigningKey(svc.ctx.pool, key, { chain: "local", agentId: a.id });
    await chain.request({ method: "anvil_setBalance" as never, params: [key.address, "0x" + (10n ** 21n).toString(16)] as never });

    const results = await Promise.all(
      Array.from({ length: 200 }, () => submit({ to: DEAD, value: "0.0001", chain: "local" }, { token: a.token, agentId: a.id })),
    );
    for (const r of results) {
      expect(r.status).toBe(201);
      expect(r.body.status).toBe("broadcast");
      expect(r.body.from.toLowerCase()).toBe(key.address.toLowerCase());
    }
    const nonces = results.map((r) => r.body.nonce).sort((x, y) => x - y);
    expect(nonces).toEqual(Array.from({ length: 200 }, (_, i) => i));
    const deadline = Date.now() + 60_000;
    while ((await chain.getTransactionCount({ address: key.address })) < 200 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
    expect(await chain.getTransactionCount({ address: key.address })).toBe(200);
    // Each row's hash once the tracker has seen it mined: on a busy machine the local chain may hold one
    // back past LOCAL_CHAIN_STUCK_AFTER_SECONDS, and the tracker then mines it under a fee bump's hash.
    const mined = () =>
      svc.ctx.pool.query<{ tx_hash: `0x${string}` }>(
        "SELECT tx_hash FROM transactions WHERE id = ANY($1::uuid[]) AND block_number IS NOT NULL",
        [results.map((r) => r.body.id)],
      );
    let { rows } = await mined();
    while (rows.length < 200 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      ({ rows } = await mined());
    }
    expect(rows).toHaveLength(200);
    const receipts = await Promise.all(rows.map((r) => chain.getTransactionReceipt({ hash: r.tx_hash })));
    expect(receipts.every((x) => x.status === "success")).toBe(true);
  });

  it("commit groups span signing addresses: 120 concurrent submits over 4 addresses, consecutive nonces per address, all mined", async () => {
    const a = await createAgent(svc.app, op);
    const { recordSigningKey } = await import("../../src/db/signing-keys.js");
    const keys: Array<{ path: string; address: `0x${string}` }> = [];
    for (let i = 0; i < 4; i++) {
      const key = await svc.ctx.signer.createKey(`agents/${a.id}/hot-${i}`);
      await recordSigningKey(svc.ctx.pool, key, { chain: "local", agentId: a.id });
      await chain.request({ method: "anvil_setBalance" as never, params: [key.address, "0x" + (10n ** 21n).toString(16)] as never });
      keys.push(key);
    }
    const commitsBefore = await commits();
    const results = await Promise.all(
      Array.from({ length: 120 }, (_, i) =>
        submit({ to: DEAD, value: "0.0001", chain: "local", signing_key_path: keys[i % 4].path }, { token: a.token, agentId: a.id }),
      ),
    );
    expect(results.every((r) => r.status === 201 && r.body.status === "broadcast")).toBe(true);
    for (const key of keys) {
      const mine = results.filter((r) => r.body.from.toLowerCase() === key.address.toLowerCase());
      expect(mine.map((r) => r.body.nonce).sort((x, y) => x - y)).toEqual(Array.from({ length: 30 }, (_, i) => i));
    }
    // Fewer COMMITs than submissions: queued submissions really were committed together.
    const groups = (await commits()) - commitsBefore;
    expect(groups).toBeGreaterThan(0);
    expect(groups).toBeLessThan(120);
    const deadline = Date.now() + 60_000;
    const mined = () => Promise.all(keys.map((k) => chain.getTransactionCount({ address: k.address })));
    while ((await mined()).some((n) => n < 30) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(await mined()).toEqual([30, 30, 30, 30]);
  });

  it("the local anvil also mines a block every LOCAL_CHAIN_SWEEP_SECONDS (1 s) with nothing sent, which unsticks what automine leaves behind", async () => {
    const start = await chain.getBlockNumber();
    const deadline = Date.now() + 10_000;
    while ((await chain.getBlockNumber()) < start + 2n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(await chain.getBlockNumber()).toBeGreaterThanOrEqual(start + 2n);
  });

  it("a request whose values PostgreSQL refuses fails alone: the others queued in its commit group still commit, with no nonce gap", async () => {
    const a = await createAgent(svc.app, op);
    const key = await svc.ctx.signer.createKey(`agents/${a.id}/refused`);
    const { recordSigningKey } = await import("../../src/db/signing-keys.js");
    await recordSigningKey(svc.ctx.pool, key, { chain: "local", agentId: a.id });
    await chain.request({ method: "anvil_setBalance" as never, params: [key.address, "0x" + (10n ** 21n).toString(16)] as never });
    // Stands in for any value the database refuses after validation passed (a data or constraint error).
    await svc.ctx.pool.query("ALTER TABLE transactions ADD CONSTRAINT test_refuse_value CHECK (value_wei <> 123000000000000)");
    try {
      const values = Array.from({ length: 12 }, (_, i) => (i === 6 ? "0.000123" : "0.0001"));
      const results = await Promise.all(
        values.map((value) => submit({ to: DEAD, value, chain: "local", signing_key_path: key.path }, { token: a.token, agentId: a.id })),
      );
      const refused = results.filter((r) => r.status !== 201);
      expect(refused).toHaveLength(1);
      expect(refused[0].status).toBeGreaterThanOrEqual(500);
      expect(refused[0].body.status).toBe(refused[0].status); // a problem body
      const ok = results.filter((r) => r.status === 201);
      expect(ok.map((r) => r.body.nonce).sort((x, y) => x - y)).toEqual(Array.from({ length: 11 }, (_, i) => i));
      const deadline = Date.now() + 30_000;
      while ((await chain.getTransactionCount({ address: key.address })) < 11 && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 100));
      expect(await chain.getTransactionCount({ address: key.address })).toBe(11);
    } finally {
      await svc.ctx.pool.query("ALTER TABLE transactions DROP CONSTRAINT test_refuse_value");
    }
  });

  /** Commit groups so far: the `commit` stage is observed once per group. */
  async function commits(): Promise<number> {
    const m = await svc.ctx.metrics.stageDuration.get();
    return m.values.find((v) => v.metricName?.endsWith("_count") && v.labels.stage === "commit")?.value ?? 0;
  }
});
