// Operators' transaction history across agents: the list with the contract's filters and cursor, one
// transaction by id, the include_signed_tx rules, 403 for agents, and the export as JSON lines and CSV,
// streamed with bounded memory (10,000 rows seeded by SQL, parsed back and compared with a SELECT).
import { randomUUID } from "node:crypto";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { beforeAll, describe, expect, it } from "vitest";
import { csvColumns } from "../../src/http/history.js";
import { parseMajor } from "../../src/units.js";
import { call, createAgent, type TestAgent } from "../helpers/api.js";
import { useService } from "../helpers/use-service.js";

const DEAD = "0x000000000000000000000000000000000000dEaD";

/**
 * An incremental RFC 4180 parser: feed text as it arrives, get the records completed so far. A field is
 * quoted ("…" with "" for a quote) or plain (no quote, comma, CR or LF); records end with CRLF. Text that
 * does not complete a record waits for the next chunk; anything left at the end is malformed.
 */
class CsvParser {
  private buf = "";
  private static readonly FIELD = /(?:"((?:[^"]|"")*)"|([^",\r\n]*))(,|\r\n)/y;

  feed(text: string): string[][] {
    this.buf += text;
    const re = CsvParser.FIELD;
    const out: string[][] = [];
    let pos = 0;
    for (;;) {
      const rec: string[] = [];
      let p = pos;
      let complete = false;
      for (;;) {
        re.lastIndex = p;
        const m = re.exec(this.buf);
        if (!m) break;
        rec.push(m[1] !== undefined ? m[1].replace(/""/g, '"') : m[2]);
        p = re.lastIndex;
        if (m[3] === "\r\n") {
          complete = true;
          break;
        }
      }
      if (!complete) break;
      out.push(rec);
      pos = p;
    }
    this.buf = this.buf.slice(pos);
    return out;
  }

  end(): void {
    if (this.buf !== "") throw new Error(`CSV ends with an incomplete or malformed record: ${JSON.stringify(this.buf.slice(0, 80))}`);
  }
}

describe("operator transaction history", () => {
  const svc = useService({ env: { TRACKER: "off" } });
  const { op } = svc;
  let a1: TestAgent;
  let a2: TestAgent;
  const ids: Record<string, string[]> = {};

  beforeAll(async () => {
    // No tracker: it would follow (and update) the seeded rows while they are compared.
    a1 = await createAgent(svc.app, op);
    a2 = await createAgent(svc.app, op);
    const submit = async (a: TestAgent, path = "") => {
      const r = await call(svc.app, "POST", `/v1/agents/${a.id}/transactions${path}`, {
        token: a.token,
        body: { to: DEAD, value: "0.001", chain: "local" },
      });
      expect(r.status === 201 || r.status === 200).toBe(true);
      (ids[a.id] ??= []).push(r.body.id);
      return r.body;
    };
    for (let i = 0; i < 3; i++) await submit(a1);
    await submit(a2);
    await submit(a2, "/sign");
  });

  it("lists every agent's transactions, newest first, with filters", async () => {
    const all = await call(svc.app, "GET", "/v1/transactions", { token: op });
    expect(all.status).toBe(200);
    const got = all.body.transactions.map((t: { id: string }) => t.id);
    expect(got).toEqual([...ids[a2.id]].reverse().concat([...ids[a1.id]].reverse()));
    expect(all.body.next_cursor).toBeNull();
    for (const t of all.body.transactions) expect("signed_tx" in t).toBe(false);

    const byAgent = await call(svc.app, "GET", `/v1/transactions?agent_id=${a1.id}`, { token: op });
    expect(byAgent.body.transactions.map((t: { id: string }) => t.id)).toEqual([...ids[a1.id]].reverse());
    const signOnly = await call(svc.app, "GET", "/v1/transactions?status=sign_only", { token: op });
    expect(signOnly.body.transactions.map((t: { id: string }) => t.id)).toEqual([ids[a2.id][1]]);
    const unconfirmed = await call(svc.app, "GET", `/v1/transactions?chain=31337&chain_status=unconfirmed&agent_id=${a2.id}`, {
      token: op,
    });
    expect(unconfirmed.body.transactions.map((t: { id: string }) => t.id)).toEqual([ids[a2.id][0]]);
    expect((await call(svc.app, "GET", "/v1/transactions?chain=base", { token: op })).body.transactions).toEqual([]);

    // from/to: created_at >= from and < to.
    const oldest = all.body.transactions[all.body.transactions.length - 1];
    const newest = all.body.transactions[0];
    const fromNewest = await call(svc.app, "GET", `/v1/transactions?from=${encodeURIComponent(newest.created_at)}`, { token: op });
    expect(fromNewest.body.transactions.map((t: { id: string }) => t.id)).toEqual([newest.id]);
    const beforeOldest = await call(svc.app, "GET", `/v1/transactions?to=${encodeURIComponent(oldest.created_at)}`, { token: op });
    expect(beforeOldest.body.transactions).toEqual([]);

    for (const bad of [
      "limit=501",
      "limit=0",
      "cursor=garbage",
      "agent_id=nope",
      "chain=nosuchchain",
      "status=done",
      "chain_status=lost",
      "from=yesterday",
    ]) {
      const r = await call(svc.app, "GET", `/v1/transactions?${bad}`, { token: op });
      expect(r.status, bad).toBe(400);
    }
  });

  it("pages with next_cursor, without losing rows created within the same millisecond", async () => {
    // Six rows in one millisecond (distinct microseconds, and two identical instants).
    const agentId = randomUUID();
    const base = "2020-01-01T00:00:00.123";
    const stamps = ["100", "200", "300", "300", "456", "999"];
    for (const us of stamps) {
      await svc.ctx.pool.query(
        `INSERT INTO transactions (id, agent_id, chain, chain_id, from_address, to_address, value_wei, signing_key_path, status, created_at)
         VALUES ($1, $2, 'local', 31337, '0x1111111111111111111111111111111111111111', '0x2222222222222222222222222222222222222222', 1, 'keys/x', 'sign_only', $3)`,
        [randomUUID(), agentId, `${base}${us}Z`],
      );
    }
    const expected = (
      await svc.ctx.pool.query("SELECT id FROM transactions WHERE agent_id = $1 ORDER BY created_at DESC, id DESC", [agentId])
    ).rows.map((r) => r.id);
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page: { status: number; body: { transactions: Array<{ id: string }>; next_cursor: string | null } } = await call(
        svc.app,
        "GET",
        `/v1/transactions?agent_id=${agentId}&limit=2${cursor ? `&cursor=${cursor}` : ""}`,
        { token: op },
      );
      expect(page.status).toBe(200);
      seen.push(...page.body.transactions.map((t) => t.id));
      cursor = page.body.next_cursor;
      pages++;
    } while (cursor && pages < 10);
    expect(seen).toEqual(expected);
    expect(seen).toHaveLength(6);
  });

  it("signed_tx only with include_signed_tx exactly true or 1, in the list and by id", async () => {
    const id = ids[a1.id][0];
    for (const q of ["", "&include_signed_tx=false", "&include_signed_tx=TRUE", "&include_signed_tx=yes"]) {
      const l = await call(svc.app, "GET", `/v1/transactions?agent_id=${a1.id}${q}`, { token: op });
      for (const t of l.body.transactions) expect("signed_tx" in t, q).toBe(false);
      const one = await call(svc.app, "GET", `/v1/transactions/${id}?x=1${q}`, { token: op });
      expect(one.status).toBe(200);
      expect("signed_tx" in one.body, q).toBe(false);
    }
    for (const q of ["&include_signed_tx=true", "&include_signed_tx=1"]) {
      const l = await call(svc.app, "GET", `/v1/transactions?agent_id=${a1.id}${q}`, { token: op });
      for (const t of l.body.transactions) expect(t.signed_tx).toMatch(/^0x02[0-9a-f]+$/);
      const one = await call(svc.app, "GET", `/v1/transactions/${id}?x=1${q}`, { token: op });
      expect(one.body.signed_tx).toMatch(/^0x02/);
      expect(one.body).toMatchObject({ id, agent_id: a1.id, status: "broadcast" });
    }
    expect((await call(svc.app, "GET", `/v1/transactions/${randomUUID()}`, { token: op })).status).toBe(404);
    expect((await call(svc.app, "GET", "/v1/transactions/not-a-uuid", { token: op })).status).toBe(404);
  });

  it("is for operators: agents get 403 (before validation), no credentials 401", async () => {
    for (const url of [
      "/v1/transactions",
      "/v1/transactions?limit=9999",
      `/v1/transactions/${ids[a1.id][0]}`,
      "/v1/transactions/export?format=csv",
      "/v1/transactions/export?format=xml",
    ]) {
      expect((await call(svc.app, "GET", url, { token: a1.token })).status, url).toBe(403);
      expect((await call(svc.app, "GET", url, { token: a1.apiKey })).status, url).toBe(403);
      expect((await call(svc.app, "GET", url)).status, url).toBe(401);
    }
  });

  it("exports JSON lines and CSV with the list's filters; signed_tx column only when asked", async () => {
    const list = (await call(svc.app, "GET", `/v1/transactions?agent_id=${a1.id}&include_signed_tx=1`, { token: op })).body.transactions;
    const jl = await call(svc.app, "GET", `/v1/transactions/export?format=jsonl&agent_id=${a1.id}&include_signed_tx=1`, { token: op });
    expect(jl.status).toBe(200);
    expect(jl.headers["content-type"]).toMatch(/^application\/x-ndjson/);
    expect(jl.headers["content-disposition"]).toMatch(/^attachment; filename="transactions-\d{8}T\d{6}Z\.jsonl"$/);
    expect(jl.raw.endsWith("\n")).toBe(true);
    expect(
      jl.raw
        .trimEnd()
        .split("\n")
        .map((l) => JSON.parse(l)),
    ).toEqual(list);
    // JSON lines is the default format.
    const dflt = await call(svc.app, "GET", `/v1/transactions/export?agent_id=${a1.id}`, { token: op });
    expect(
      dflt.raw
        .trimEnd()
        .split("\n")
        .map((l) => JSON.parse(l).id),
    ).toEqual(list.map((t: { id: string }) => t.id));
    expect(dflt.raw).not.toContain("signed_tx");

    const csv = await call(svc.app, "GET", `/v1/transactions/export?format=csv&agent_id=${a1.id}`, { token: op });
    expect(csv.headers["content-type"]).toMatch(/^text\/csv/);
    expect(csv.headers["content-disposition"]).toMatch(/filename="transactions-.*\.csv"/);
    const p = new CsvParser();
    const recs = p.feed(csv.raw);
    p.end();
    expect(recs[0]).toEqual(csvColumns(false));
    expect(recs[0]).not.toContain("signed_tx");
    expect(recs.slice(1).map((r) => r[0])).toEqual(list.map((t: { id: string }) => t.id));
    const withSig = await call(svc.app, "GET", `/v1/transactions/export?format=csv&agent_id=${a1.id}&include_signed_tx=true`, {
      token: op,
    });
    const recs2 = new CsvParser().feed(withSig.raw);
    expect(recs2[0][recs2[0].length - 1]).toBe("signed_tx");
    expect(recs2.slice(1).map((r) => r[r.length - 1])).toEqual(list.map((t: { signed_tx: string }) => t.signed_tx));
    for (const q of ["format=xml", "chain=nosuchchain", "status=done", "from=yesterday"]) {
      expect((await call(svc.app, "GET", `/v1/transactions/export?${q}`, { token: op })).status, q).toBe(400);
    }
    // An empty export is a header (CSV) or nothing (JSON lines).
    expect((await call(svc.app, "GET", "/v1/transactions/export?format=csv&chain=base", { token: op })).raw).toBe(
      csvColumns(false).join(",") + "\r\n",
    );
    expect((await call(svc.app, "GET", "/v1/transactions/export?chain=base", { token: op })).raw).toBe("");
  });

  describe("10,000 seeded transactions", () => {
    const N = 10_000;
    let base: string;

    beforeAll(async () => {
      // Realistic rows: valid addresses and hashes, wei values, every status, nonces, fees, calldata on
      // some, error messages with commas, quotes and line breaks on the failed ones, created_at spread
      // over ~8 days with microseconds, a signed_tx of a few hundred bytes.
      await svc.ctx.pool.query(
        `INSERT INTO transactions (id, agent_id, chain, chain_id, from_address, to_address, value_wei, data, nonce, gas_limit,
            max_fee_per_gas, max_priority_fee_per_gas, tx_type, signing_key_path, status, tx_hash, signed_tx, error_message,
            chain_status, block_number, confirmations, created_at, signed_at)
         SELECT gen_random_uuid(),
                (ARRAY[$1, $2, '6f1c5b8e-0000-4000-8000-00000000a11c'])[1 + i % 3]::uuid,
                CASE WHEN i % 4 = 0 THEN 'base' ELSE 'local' END,
                CASE WHEN i % 4 = 0 THEN 8453 ELSE 31337 END,
                '0x' || substr(encode(sha256(('from' || (i % 7))::bytea), 'hex'), 1, 40),
                '0x' || substr(encode(sha256(('to' || i)::bytea), 'hex'), 1, 40),
                (i::numeric * 1000000000000003) % 50000000000000000000,
                CASE WHEN i % 5 = 0 THEN '0xa9059cbb' || encode(sha256(('d' || i)::bytea), 'hex') || encode(sha256(('e' || i)::bytea), 'hex') END,
                i / 3,
                21000 + (i % 5) * 30000,
                (30000000000 + i)::numeric, 1500000000,
                'eip1559',
                'keys/local-signer',
                (ARRAY['broadcast','broadcast','broadcast','signed','sign_only','failed','simulation_failed','pending'])[1 + i % 8],
                '0x' || encode(sha256(('h' || i)::bytea), 'hex'),
                '0x02f8b1827a69' || repeat(encode(sha256(('s' || i)::bytea), 'hex'), 30),
                CASE WHEN i % 8 = 5 THEN 'nonce too low, "replacement" underpriced' || chr(13) || chr(10) || 'at ' || i END,
                CASE WHEN i % 8 < 3 THEN (ARRAY['unconfirmed','confirmed','confirmed','reverted','dropped'])[1 + i % 5] END,
                CASE WHEN i % 8 < 3 THEN 1000000 + i END,
                CASE WHEN i % 8 < 3 THEN i % 13 ELSE 0 END,
                timestamptz '2024-03-01 00:00:00+00' + (i * interval '67.123457 seconds'),
                timestamptz '2024-03-01 00:00:00+00' + (i * interval '67.123457 seconds') + interval '5 ms'
           FROM generate_series(1, $3::int) AS i`,
        [a1.id, a2.id, N],
      );
      base = await svc.app.listen({ port: 0, host: "127.0.0.1" });
    });

    /** The rows as a direct SELECT sees them, in export order, as the CSV should spell them. */
    async function selectExpected(): Promise<string[][]> {
      const ms = (col: string) => `to_char(date_trunc('milliseconds', ${col}) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
      const { rows } = await svc.ctx.pool.query({
        text: `SELECT id::text, agent_id::text, chain, chain_id::text, from_address, to_address, value_wei::text, nonce::text, gas_limit::text,
                      gas_price::text, max_fee_per_gas::text, max_priority_fee_per_gas::text, status, tx_hash, error_message,
                      ${ms("created_at")}, ${ms("signed_at")}, simulation_id, simulation_status, chain_status, block_number::text,
                      confirmations::text, replaced_by, signing_key_path,
                      -- a refused transaction's bytes are never handed out
                      CASE WHEN status = 'failed' THEN NULL ELSE signed_tx END
                 FROM transactions ORDER BY created_at DESC, id DESC`,
        rowMode: "array",
      });
      return rows.map((r: Array<string | null>) => r.map((v) => v ?? ""));
    }

    /** CSV record → the same shape as selectExpected (addresses lower-cased; value checked against value_wei). */
    function normalise(rec: string[]): string[] {
      const [id, agent, chain, chainId, from, to, value, valueWei, ...rest] = rec;
      if (parseMajor(value) !== BigInt(valueWei)) expect(parseMajor(value)).toBe(BigInt(valueWei));
      return [id, agent, chain, chainId, from.toLowerCase(), to.toLowerCase(), valueWei, ...rest];
    }

    it("CSV: streamed with bounded memory, parses back to exactly the rows of a direct SELECT", async () => {
      const expected = await selectExpected();
      expect(expected.length).toBeGreaterThanOrEqual(N);
      setFlagsFromString("--expose-gc");
      const gc = runInNewContext("gc") as () => void;
      gc();
      const heap0 = process.memoryUsage().heapUsed;
      const rss0 = process.memoryUsage().rss;
      let peakLive = 0;
      let peakHeap = 0;
      let peakRss = 0;
      const sample = (withGc: boolean) => {
        if (withGc) gc();
        const m = process.memoryUsage();
        if (withGc) peakLive = Math.max(peakLive, m.heapUsed - heap0);
        peakHeap = Math.max(peakHeap, m.heapUsed - heap0);
        peakRss = Math.max(peakRss, m.rss - rss0);
      };

      const res = await fetch(`${base}/v1/transactions/export?format=csv&include_signed_tx=1`, {
        headers: { authorization: `Bearer ${op}` },
      });
      expect(res.status).toBe(200);
      expect(res.headers.get("content-length")).toBeNull();
      expect(res.headers.get("transfer-encoding")).toBe("chunked");
      const reader = res.body!.getReader();
      const decoder = new TextDecoder();
      const parser = new CsvParser();
      let header: string[] | undefined;
      let n = 0;
      let bytes = 0;
      let chunks = 0;
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        bytes += value.byteLength;
        chunks++;
        sample(chunks % 40 === 0);
        for (const rec of parser.feed(decoder.decode(value, { stream: true }))) {
          if (!header) {
            header = rec;
            continue;
          }
          // Compared as they arrive: the test holds no copy of the export.
          const got = normalise(rec);
          if (JSON.stringify(got) !== JSON.stringify(expected[n])) expect(got).toEqual(expected[n]);
          n++;
        }
      }
      parser.feed(decoder.decode());
      parser.end();
      sample(true);
      expect(header).toEqual(csvColumns(true));
      expect(n).toBe(expected.length);
      const mb = (b: number) => Math.round((b / 2 ** 20) * 10) / 10;
      console.log(
        `export: ${n} rows, ${mb(bytes)} MB in ${chunks} chunks; growth over baseline: live heap (after gc) peak ${mb(peakLive)} MB, ` +
          `heapUsed peak ${mb(peakHeap)} MB, rss peak ${mb(peakRss)} MB`,
      );
      expect(bytes).toBeGreaterThan(10 * 2 ** 20);
      expect(chunks).toBeGreaterThan(50);
      // One page (EXPORT_PAGE_SIZE rows) is the most the server holds at once: a few MB, far below the export.
      expect(peakLive).toBeLessThan(Math.min(12 * 2 ** 20, bytes / 2));
    });

    it("JSON lines: the same rows, in the same order, filtered like the list", async () => {
      const expected = await selectExpected();
      const res = await fetch(`${base}/v1/transactions/export?format=jsonl`, { headers: { authorization: `Bearer ${op}` } });
      expect(res.headers.get("content-type")).toMatch(/^application\/x-ndjson/);
      const reader = res.body!.getReader();
      const decoder = new TextDecoder();
      let buf = "";
      let n = 0;
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        buf += decoder.decode(value, { stream: true });
        let start = 0;
        let nl: number;
        while ((nl = buf.indexOf("\n", start)) >= 0) {
          const t = JSON.parse(buf.slice(start, nl));
          start = nl + 1;
          const e = expected[n++];
          const got = [
            t.id,
            t.agent_id,
            t.value_wei,
            t.status,
            t.nonce === undefined ? "" : String(t.nonce),
            t.error_message ?? "",
            "signed_tx" in t,
          ];
          const want = [e[0], e[1], e[6], e[12], e[7], e[14], false];
          if (JSON.stringify(got) !== JSON.stringify(want)) expect(got).toEqual(want);
        }
        buf = buf.slice(start);
      }
      expect(buf).toBe("");
      expect(n).toBe(expected.length);

      // Filters: one agent, one chain, one status, a time window.
      const q = `agent_id=${a2.id}&chain=base&status=broadcast&from=2024-03-02T00:00:00Z&to=2024-03-05T00:00:00Z`;
      const text = await (
        await fetch(`${base}/v1/transactions/export?format=jsonl&${q}`, { headers: { authorization: `Bearer ${op}` } })
      ).text();
      const got = text
        .trimEnd()
        .split("\n")
        .map((l) => JSON.parse(l).id);
      const want = (
        await svc.ctx.pool.query(
          `SELECT id FROM transactions WHERE agent_id = $1 AND chain = 'base' AND status = 'broadcast'
            AND created_at >= '2024-03-02T00:00:00Z' AND created_at < '2024-03-05T00:00:00Z' ORDER BY created_at DESC, id DESC`,
          [a2.id],
        )
      ).rows.map((r) => r.id);
      expect(want.length).toBeGreaterThan(10);
      expect(got).toEqual(want);
    });
  });
});
