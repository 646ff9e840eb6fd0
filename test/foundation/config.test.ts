import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config.js";

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe("config", () => {
  it("has working defaults with an empty environment", () => {
    const c = loadConfig({});
    expect(c.port).toBe(8080);
    expect(c.host).toBe("127.0.0.1");
    expect(c.localChain).toBe("anvil");
    expect(c.databaseUrl).toBeUndefined();
    expect(c.dataDir.endsWith(".data")).toBe(true);
  });

  it.each(["abc", "70000", "-1", "80.5"])("a malformed PORT=%s stops the start naming PORT", (v) => {
    const p = problems({ PORT: v });
    expect(p).toHaveLength(1);
    expect(p[0]).toMatch(/^PORT: /);
  });

  it.each(["not a url", "mysql://h/db", "http://localhost/db", "postgres://"])(
    "a malformed DATABASE_URL=%s stops the start naming DATABASE_URL",
    (v) => {
      const p = problems({ DATABASE_URL: v });
      expect(p).toHaveLength(1);
      expect(p[0]).toMatch(/^DATABASE_URL: /);
    },
  );

  it("quotas: defaults, overrides, and bad values naming the variable", () => {
    const d = loadConfig({});
    expect(d).toMatchObject({
      maxDataBytes: 32768,
      agentRequestsPerMinute: 1200,
      authFailuresPerCredential: 10,
      simulationQueue: { perAgent: 8, max: 64 },
    });
    expect(d.metricsToken).toBeUndefined();
    const c = loadConfig({
      MAX_DATA_BYTES: "131072",
      AGENT_REQUESTS_PER_MINUTE: "0",
      SIMULATION_QUEUE_PER_AGENT: "2",
      SIMULATION_QUEUE_MAX: "5",
      METRICS_TOKEN: "t".repeat(16),
    });
    expect(c).toMatchObject({
      maxDataBytes: 131072,
      agentRequestsPerMinute: 0,
      simulationQueue: { perAgent: 2, max: 5 },
      metricsToken: "t".repeat(16),
    });
    for (const [k, v] of [
      ["MAX_DATA_BYTES", "131073"],
      ["AGENT_REQUESTS_PER_MINUTE", "-1"],
      ["SIMULATION_QUEUE_PER_AGENT", "0"],
      ["SIMULATION_QUEUE_MAX", "x"],
      ["METRICS_TOKEN", "short"],
      ["AUTH_FAILURES_PER_CREDENTIAL_PER_MINUTE", "1.5"],
    ]) {
      const p = problems({ [k]: v });
      expect(p, k).toHaveLength(1);
      expect(p[0]).toMatch(new RegExp(`^${k}: `));
      if (k === "METRICS_TOKEN") expect(p[0]).not.toContain(v);
    }
  });

  it("TRUST_PROXY: off by default; only an explicit list of proxy addresses/CIDRs; `true` and anything else names the variable", () => {
    expect(loadConfig({}).trustProxy).toBe(false);
    expect(loadConfig({ TRUST_PROXY: "10.0.0.1,10.1.0.0/16,::1" }).trustProxy).toEqual(["10.0.0.1", "10.1.0.0/16", "::1"]);
    expect(loadConfig({ TRUST_PROXY: "10.0.0.1, 192.168.0.0/24" }).trustProxy).toEqual(["10.0.0.1", "192.168.0.0/24"]);
    expect(problems({ TRUST_PROXY: "true" })).toEqual([expect.stringMatching(/^TRUST_PROXY: 'true' is not accepted: list the proxies/)]);
    for (const bad of ["yes", "10.0.0.1;rm", "10.0.0.1/33", "::1/129", "10.0.0", "1.2.3.4/8/8", "loopback", "10.0.0.1,"]) {
      expect(problems({ TRUST_PROXY: bad })[0], bad).toMatch(/^TRUST_PROXY: /);
    }
    expect(loadConfig({}).authFailuresPerMinute).toBe(60);
    expect(problems({ AUTH_FAILURES_PER_MINUTE: "-1" })[0]).toMatch(/^AUTH_FAILURES_PER_MINUTE: /);
  });

  it("never echoes a bad secret value", () => {
    const secret = "1ck_short";
    const p = problems({ ADMIN_API_KEY: secret, PKCS11_PIN: "12", DATABASE_URL: "postgres://u:hunter2@" });
    expect(p.join("\n")).not.toContain("hunter2");
    expect(p.join("\n")).not.toContain(secret);
    expect(p.some((l) => l.startsWith("ADMIN_API_KEY"))).toBe(true);
    expect(p.some((l) => l.startsWith("PKCS11_PIN"))).toBe(true);
  });

  it("reports every bad variable at once", () => {
    const p = problems({ PORT: "x", LOCAL_CHAIN: "maybe", LOG_LEVEL: "loud", CHAIN_BASE_RPC_URLS: "ftp://x" });
    expect(p.map((l) => l.split(":")[0]).sort()).toEqual(["CHAIN_BASE_RPC_URLS", "LOCAL_CHAIN", "LOG_LEVEL", "PORT"]);
  });

  it("reads CHAIN_<NAME>_RPC_URLS as comma-separated overrides", () => {
    const c = loadConfig({ CHAIN_BASE_SEPOLIA_RPC_URLS: "http://a:1, http://b:2/x" });
    expect(c.rpcOverrides).toEqual({ BASE_SEPOLIA: ["http://a:1", "http://b:2/x"] });
  });

  it("needs all three Tenderly variables together", () => {
    expect(problems({ TENDERLY_ACCOUNT: "a" })[0]).toMatch(/TENDERLY_/);
    expect(problems({ TENDERLY_ACCOUNT: "a", TENDERLY_PROJECT: "p", TENDERLY_ACCESS_KEY: "k" })).toEqual([]);
  });
});
