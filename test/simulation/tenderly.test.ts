// The Tenderly adapter against a local HTTP server that checks each request and answers in the shape
// Tenderly documents for /simulate and /simulate-bundle (simulation + transaction.transaction_info),
// then the same server behind the whole service (SIMULATOR=tenderly, SIMULATE_ALL=true).
import http from "node:http";
import type { AddressInfo } from "node:net";
import { encodeAbiParameters, getAddress, type Address } from "viem";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createLogger } from "../../src/log.js";
import { TenderlySimulator } from "../../src/simulators/tenderly.js";
import { call, type TestAgent } from "../helpers/api.js";
import { assertMatchesReference } from "../helpers/reference.js";
import { useService } from "../helpers/use-service.js";
import { chainRecord } from "./helpers.js";

const ACCESS_KEY = "tnd-secret-access-key-0123456789";
const FROM = "0x1111111111111111111111111111111111111111" as Address;
const TO = "0x2222222222222222222222222222222222222222" as Address;
const USDC = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48";

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: any;
}

type Answer = { status: number; body: unknown; delayMs?: number; raw?: string };

/** A stand-in for api.tenderly.co: records requests, answers from a queue (default: success). */
function fakeTenderly() {
  const seen: Seen[] = [];
  const queue: Answer[] = [];
  const server = http.createServer((req, res) => {
    let text = "";
    req.on("data", (c) => (text += c));
    req.on("end", () => {
      let body: any;
      try {
        body = JSON.parse(text);
      } catch {
        body = text;
      }
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
      const a = queue.shift() ?? { status: 200, body: successFor(body) };
      setTimeout(() => {
        res.statusCode = a.status;
        res.setHeader("content-type", a.raw !== undefined ? "text/html" : "application/json");
        res.end(a.raw ?? JSON.stringify(a.body));
      }, a.delayMs ?? 0);
    });
  });
  return {
    seen,
    queue,
    async start() {
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
      return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

let simCounter = 0;

/** One documented simulation result: a successful ETH + USDC movement. */
function simulationResult(req: any, opts: { ok?: boolean; output?: string; error?: string } = {}) {
  const ok = opts.ok ?? true;
  const id = `3f3c9c43-7f6d-4d8e-9a1a-${String(++simCounter).padStart(12, "0")}`;
  return {
    transaction: {
      hash: "0x" + "ab".repeat(32),
      block_number: 19_000_000,
      from: req.from,
      to: req.to,
      gas: req.gas,
      gas_used: ok ? 46_109 : 23_512,
      input: req.input,
      value: req.value,
      status: ok,
      error_message: ok ? undefined : (opts.error ?? "execution reverted"),
      transaction_info: {
        contract_id: `eth:${req.network_id}:${req.to}`,
        call_trace: {
          from: req.from,
          to: req.to,
          input: req.input,
          output: opts.output ?? "0x",
          error: ok ? undefined : "execution reverted",
          gas_used: 23_512,
        },
        logs: [],
        asset_changes: ok
          ? [
              {
                token_info: { standard: "NativeCurrency", type: "Native", symbol: "ETH", name: "Ether", decimals: 18 },
                type: "Transfer",
                from: req.from,
                to: req.to,
                amount: "0.01",
                raw_amount: "10000000000000000",
              },
              {
                token_info: { standard: "ERC20", type: "Fungible", contract_address: USDC, symbol: "usdc", name: "USD Coin", decimals: 6 },
                type: "Transfer",
                from: req.from,
                to: req.to,
                amount: "1.5",
                raw_amount: "1500000",
              },
            ]
          : [],
        balance_diff: ok
          ? [
              { address: req.from, original: "1000000000000000000", dirty: "989000000000000000", is_miner: false },
              { address: req.to, original: "0", dirty: "10000000000000000", is_miner: false },
              { address: "0x95222290dd7278aa3ddd389cc1e1d165cc4bafe5", original: "5", dirty: "6", is_miner: true },
            ]
          : [],
      },
    },
    simulation: {
      id,
      project_id: "p",
      owner_id: "o",
      network_id: req.network_id,
      block_number: 19_000_000,
      from: req.from,
      to: req.to,
      status: ok,
      gas_used: ok ? 46_109 : 23_512,
    },
    contracts: [],
    generated_access_list: [],
  };
}

function successFor(body: any) {
  if (Array.isArray(body?.simulations)) return { simulation_results: body.simulations.map((s: any) => simulationResult(s)) };
  return simulationResult(body);
}

const errorString = (s: string) => ("0x08c379a0" + encodeAbiParameters([{ type: "string" }], [s]).slice(2)) as `0x${string}`;

describe("Tenderly simulator (adapter)", () => {
  const fake = fakeTenderly();
  let sim: TenderlySimulator;
  let url: string;
  const chain = chainRecord("http://127.0.0.1:1", { name: "ethereum", chain_id: 1 });

  beforeAll(async () => {
    url = await fake.start();
    sim = new TenderlySimulator({
      account: "acme",
      project: "wallets",
      accessKey: ACCESS_KEY,
      apiUrl: url,
      log: createLogger("silent"),
      timeoutMs: 500,
    });
  });
  afterAll(() => fake.close());
  beforeEach(() => {
    fake.seen.length = 0;
    fake.queue.length = 0;
  });

  it("sends the documented request, field by field", async () => {
    await sim.simulate(chain, [{ from: FROM, to: TO, value: 10n ** 16n, data: "0xa9059cbb" }]);
    await sim.simulate(chain, [{ from: FROM, to: TO, value: 0n, gas: 90_000n, gasPrice: 7_000_000_000n }]);
    expect(fake.seen).toHaveLength(2);
    const [a, b] = fake.seen;
    expect(a!.method).toBe("POST");
    expect(a!.url).toBe("/api/v1/account/acme/project/wallets/simulate");
    expect(a!.headers["x-access-key"]).toBe(ACCESS_KEY);
    expect(a!.headers["content-type"]).toBe("application/json");
    expect(a!.body).toEqual({
      network_id: "1",
      from: FROM,
      to: TO,
      input: "0xa9059cbb",
      gas: 8_000_000,
      value: "10000000000000000",
      save: true,
      save_if_fails: true,
      simulation_type: "full",
      estimate_gas: true,
    });
    expect(b!.body).toEqual({
      network_id: "1",
      from: FROM,
      to: TO,
      input: "0x",
      gas: 90_000,
      gas_price: "7000000000",
      value: "0",
      save: true,
      save_if_fails: true,
      simulation_type: "full",
    });
  });

  it("maps Tenderly's answer: status, gas, dashboard URL, ETH from balance_diff (miner left out), ERC-20 from asset_changes", async () => {
    const [r] = await sim.simulate(chain, [{ from: FROM, to: TO, value: 10n ** 16n }]);
    expect(r!.status).toBe("success");
    expect(r!.gasUsed).toBe(46_109n);
    expect(r!.id).toMatch(/^3f3c9c43-/);
    expect(r!.dashboardUrl).toBe(`https://dashboard.tenderly.co/acme/wallets/simulator/${r!.id}`);
    expect(r!.balanceChanges).toEqual([
      { address: getAddress(FROM), token: "ETH", token_symbol: "ETH", before: "1", after: "0.989", change: "-0.011" },
      { address: getAddress(TO), token: "ETH", token_symbol: "ETH", before: "0", after: "0.01", change: "0.01" },
      { address: getAddress(FROM), token: getAddress(USDC), token_symbol: "usdc", change: "-1.5" },
      { address: getAddress(TO), token: getAddress(USDC), token_symbol: "usdc", change: "1.5" },
    ]);
  });

  it("a revert: status reverted with the reason decoded from the call trace's output", async () => {
    fake.queue.push({
      status: 200,
      body: simulationResult(
        { network_id: "1", from: FROM, to: TO, input: "0x", gas: 1, value: "0" },
        { ok: false, output: errorString("Ownable: caller is not the owner") },
      ),
    });
    const [r] = await sim.simulate(chain, [{ from: FROM, to: TO, value: 0n }]);
    expect(r).toMatchObject({ status: "reverted", revertReason: "Ownable: caller is not the owner", gasUsed: 23_512n, balanceChanges: [] });
    expect(r!.dashboardUrl).toMatch(/^https:\/\/dashboard\.tenderly\.co\/acme\/wallets\/simulator\//);
  });

  it("an error answer becomes status error with a safe message, never the access key", async () => {
    fake.queue.push({ status: 400, body: { error: { id: "e1", message: "invalid network_id", slug: "invalid_network" } } });
    fake.queue.push({ status: 401, body: { error: { id: "e2", message: `access key ${ACCESS_KEY} is not valid`, slug: "unauthorized" } } });
    fake.queue.push({ status: 502, body: null, raw: "<html>bad gateway</html>" });
    fake.queue.push({ status: 429, body: { error: { message: "rate limit exceeded" } } });
    const out = [];
    for (let i = 0; i < 4; i++) out.push((await sim.simulate(chain, [{ from: FROM, to: TO, value: 0n }]))[0]!);
    expect(out.map((r) => r.status)).toEqual(["error", "error", "error", "error"]);
    expect(out[0]!.error).toBe("Tenderly answered HTTP 400: invalid network_id");
    expect(out[1]!.error).toMatch(/^Tenderly answered HTTP 401: access key \[redacted\] is not valid$/);
    expect(out[2]!.error).toBe("Tenderly answered HTTP 502");
    expect(out[3]!.error).toBe("Tenderly answered HTTP 429: rate limit exceeded");
    expect(JSON.stringify(out)).not.toContain(ACCESS_KEY);
  });

  it("a timeout, an unreachable server and an unreadable body are status error too", async () => {
    fake.queue.push({ status: 200, body: {}, delayMs: 1_500 });
    const [slow] = await sim.simulate(chain, [{ from: FROM, to: TO, value: 0n }]);
    expect(slow).toMatchObject({ status: "error", error: "Tenderly did not answer in time." });

    const down = new TenderlySimulator({
      account: "a",
      project: "p",
      accessKey: ACCESS_KEY,
      apiUrl: "http://127.0.0.1:9",
      log: createLogger("silent"),
    });
    const [d] = await down.simulate(chain, [{ from: FROM, to: TO, value: 0n }]);
    expect(d).toMatchObject({ status: "error", error: "Tenderly could not be reached." });

    fake.queue.push({ status: 200, body: null, raw: "not json" });
    const [garbled] = await sim.simulate(chain, [{ from: FROM, to: TO, value: 0n }]);
    expect(garbled).toMatchObject({ status: "error", error: "Tenderly's answer could not be read." });
  });

  it("a bundle goes to /simulate-bundle; calls after the one Tenderly stopped at are errors", async () => {
    const calls = [
      { from: FROM, to: TO, value: 1n },
      { from: TO, to: FROM, value: 2n, data: "0x095ea7b3" as const },
      { from: FROM, to: TO, value: 3n },
    ];
    const ok = await sim.simulate(chain, calls);
    expect(fake.seen[0]!.url).toBe("/api/v1/account/acme/project/wallets/simulate-bundle");
    expect(fake.seen[0]!.body.simulations.map((s: any) => [s.from, s.to, s.value, s.input, s.network_id, s.save])).toEqual([
      [FROM, TO, "1", "0x", "1", true],
      [TO, FROM, "2", "0x095ea7b3", "1", true],
      [FROM, TO, "3", "0x", "1", true],
    ]);
    expect(ok.map((r) => r.status)).toEqual(["success", "success", "success"]);
    expect(new Set(ok.map((r) => r.id)).size).toBe(3);

    const first = simulationResult(
      { network_id: "1", from: FROM, to: TO, input: "0x", gas: 1, value: "1" },
      { ok: false, output: errorString("stop") },
    );
    fake.queue.push({ status: 200, body: { simulation_results: [first] } });
    const stopped = await sim.simulate(chain, calls);
    expect(stopped.map((r) => r.status)).toEqual(["reverted", "error", "error"]);
    expect(stopped[0]!.revertReason).toBe("stop");
    expect(stopped[1]!.error).toMatch(/stopped the bundle/);
  });
});

describe("Tenderly behind the service (SIMULATOR=tenderly, SIMULATE_ALL=true)", () => {
  const fake = fakeTenderly();
  // Registered before the service's hooks: the fake closes after the service has stopped.
  afterAll(() => fake.close());
  const svc = useService({
    env: async () => ({
      SIMULATOR: "tenderly",
      TENDERLY_ACCOUNT: "acme",
      TENDERLY_PROJECT: "wallets",
      TENDERLY_ACCESS_KEY: ACCESS_KEY,
      TENDERLY_API_URL: await fake.start(),
      SIMULATE_ALL: "true",
    }),
    agent: true,
  });
  let agent: TestAgent;
  let signer: string;

  beforeAll(async () => {
    agent = svc.agent;
    signer = (await svc.ctx.signer.getKey("keys/local-signer"))!.address;
  });
  beforeEach(() => {
    fake.seen.length = 0;
    fake.queue.length = 0;
  });

  it("POST …/simulate answers the reference SimulationResponse with tenderly_dashboard_url", async () => {
    const r = await call(svc.app, "POST", `/v1/agents/${agent.id}/transactions/simulate`, {
      token: agent.token,
      body: { to: TO, value: "0.01", chain: "local", gas_limit: 50_000 },
    });
    expect(r.status).toBe(200);
    assertMatchesReference("SimulationResponse", r.body);
    expect(r.body.status).toBe("success");
    expect(r.body.gas_used).toBe(46_109);
    expect(r.body.tenderly_dashboard_url).toBe(`https://dashboard.tenderly.co/acme/wallets/simulator/${r.body.simulation_id}`);
    expect(fake.seen[0]!.body).toMatchObject({
      network_id: "31337",
      from: signer.toLowerCase(),
      to: TO,
      value: "10000000000000000",
      gas: 50_000,
    });
    expect(r.raw).not.toContain(ACCESS_KEY);
  });

  it("an error answer from Tenderly is 200 with status error, not a 500", async () => {
    fake.queue.push({ status: 403, body: { error: { id: "x", message: "project not found", slug: "not_found" } } });
    const r = await call(svc.app, "POST", `/v1/agents/${agent.id}/transactions/simulate`, {
      token: agent.token,
      body: { to: TO, value: "0", chain: "local" },
    });
    expect(r.status).toBe(200);
    assertMatchesReference("SimulationResponse", r.body);
    expect(r.body).toMatchObject({ status: "error", error: "Tenderly answered HTTP 403: project not found", balance_changes: [] });
  });

  it("the global switch simulates every submission: a revert is 422 with the dashboard URL; a success signs", async () => {
    fake.queue.push({
      status: 200,
      body: simulationResult(
        { network_id: "31337", from: signer, to: TO, input: "0x", gas: 1, value: "0" },
        { ok: false, output: errorString("nope") },
      ),
    });
    const r = await call(svc.app, "POST", `/v1/agents/${agent.id}/transactions`, {
      token: agent.token,
      body: { to: TO, value: "0", chain: "local" },
    });
    expect(r.status).toBe(422);
    expect(r.body).toMatchObject({
      status: "simulation_failed",
      simulation_status: "reverted",
      error_message: "Simulation reverted: nope",
    });
    expect(r.body.tenderly_dashboard_url).toBe(`https://dashboard.tenderly.co/acme/wallets/simulator/${r.body.simulation_id}`);
    assertMatchesReference("TransactionResponse", r.body);

    const ok = await call(svc.app, "POST", `/v1/agents/${agent.id}/transactions`, {
      token: agent.token,
      body: { to: TO, value: "0", chain: "local" },
    });
    expect(ok.status).toBe(201);
    expect(ok.body.simulation_status).toBe("success");
    expect(ok.body.simulation_id).toMatch(/^3f3c9c43-/);
    expect(fake.seen).toHaveLength(2);
  });
});
