// Two app instances with their own connection pools against one database, as two replicas would run:
// they coordinate only through PostgreSQL, so nonces stay distinct and consecutive.
import { createPublicClient, http } from "viem";
import { describe, expect, it } from "vitest";
import { call, createAgent } from "../helpers/api.js";
import { useService } from "../helpers/use-service.js";

describe("two replicas on one database", () => {
  // The second replica: its own pool, registry, clients, auth and limiter; the same HSM token
  // (one PKCS#11 module per process) and the same chain.
  const svc = useService({ replicas: 1 });
  const { op } = svc;
  const app2 = () => svc.replicas[0].app;
  it("200 concurrent submits across both get distinct consecutive nonces, all mined", async () => {
    const agent = await createAgent(svc.app, op);
    // A token issued by one replica is accepted by the other (the JWT key is shared through the database).
    expect((await call(app2(), "GET", "/v1/agents/me", { token: agent.token })).status).toBe(200);
    const body = { to: "0x000000000000000000000000000000000000dEaD", value: "0.0001", chain: "local" };
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        call(i % 2 ? app2() : svc.app, "POST", `/v1/agents/${agent.id}/transactions`, { token: agent.token, body }),
      ),
    );
    expect(results.map((r) => r.status)).toEqual(Array(200).fill(201));
    const from = results[0].body.from;
    const nonces = results.map((r) => r.body.nonce).sort((a, b) => a - b);
    const first = nonces[0];
    expect(nonces).toEqual(Array.from({ length: 200 }, (_, i) => first + i));
    const client = createPublicClient({ transport: http(svc.ctx.localChainUrl!) });
    const deadline = Date.now() + 60_000;
    while ((await client.getTransactionCount({ address: from })) < first + 200 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
    expect(await client.getTransactionCount({ address: from })).toBe(first + 200);
  });
});
