// `intents approvals list|show|approve|reject` as an operator runs them: a child process (tsx
// src/cli.ts) against a live service, with an operator key of its own.
import { execFile } from "node:child_process";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { call, createAgent } from "../helpers/api.js";
import { useService } from "../helpers/use-service.js";

const DEAD = "0x000000000000000000000000000000000000dEaD";
const TSX = path.resolve("node_modules/.bin/tsx");

describe("approvals CLI", () => {
  const svc = useService({ env: { TRACKER: "off" }, listen: true });
  const { op } = svc;

  const cli = (args: string[], key = op): Promise<{ code: number; stdout: string; stderr: string; json: any }> =>
    new Promise((resolve) => {
      const env: NodeJS.ProcessEnv = { ...process.env, INTENTS_URL: svc.baseUrl, INTENTS_OPERATOR_KEY: key };
      delete env.ADMIN_API_KEY;
      execFile(TSX, ["src/cli.ts", ...args], { env, timeout: 60_000 }, (err, stdout, stderr) => {
        let json: unknown;
        try {
          json = JSON.parse(stdout);
        } catch {
          json = undefined;
        }
        resolve({ code: err ? (typeof err.code === "number" ? err.code : -1) : 0, stdout, stderr, json });
      });
    });

  it("lists, shows, approves (executes) and rejects; the vote is the operator key's", async () => {
    const agent = await createAgent(svc.app, op);
    await call(svc.app, "PUT", `/v1/agents/${agent.id}/approval-rules`, { token: op, body: { approval_rules: { everything: true } } });
    const held = await Promise.all(
      ["0.001", "0.002"].map((value) =>
        call(svc.app, "POST", `/v1/agents/${agent.id}/transactions`, { token: agent.token, body: { to: DEAD, chain: "local", value } }),
      ),
    );
    const [first, second] = held.map((r) => r.body.pending_approval_id as string);
    const voter = await call(svc.app, "POST", "/v1/auth/api-keys", { token: op, body: { name: "on call" } });

    const list = await cli(["approvals", "list", "--agent-id", agent.id, "--status", "pending"]);
    expect(list.code, list.stderr).toBe(0);
    expect(list.json.pending_approvals.map((p: { id: string }) => p.id).sort()).toEqual([first, second].sort());
    const table = await cli(["approvals", "list", "--agent-id", agent.id, "--format", "table"]);
    expect(table.stdout).toContain(first);
    const show = await cli(["approvals", "show", first]);
    expect(show.json).toMatchObject({ id: first, status: "pending", summary: { value_wei: "1000000000000000" } });

    const approved = await cli(["approvals", "approve", first, "--reason", "ok"], voter.body.api_key);
    expect(approved.code, approved.stderr).toBe(0);
    expect(approved.json).toMatchObject({
      status: "executed",
      signatures: [{ approver_id: voter.body.key.id, decision: "approve", reason: "ok" }],
    });
    expect(approved.json.result.tx_hash).toMatch(/^0x[0-9a-f]{64}$/);
    const rejected = await cli(["approvals", "reject", second, "--reason", "no"]);
    expect(rejected.json.status).toBe("rejected");
    // Voting again on a decided approval: the service's 409, exit 1.
    const late = await cli(["approvals", "approve", second]);
    expect(late.code).toBe(1);
    expect(late.stdout + late.stderr).not.toContain(op);
    expect((await cli(["approvals", "show", "not-a-uuid"])).code).toBe(2);
  }, 120_000);
});
