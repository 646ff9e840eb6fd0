// The agent field table (src/agents/guardrail-fields.ts) is wired end to end: every field written
// through the API reads back as sent, every CLI flag gives the same request, and the guardrail checks
// see what was written. A table entry that some layer does not carry fails here.
import { describe, expect, it } from "vitest";
import { GUARDRAIL_FIELDS, type AgentField } from "../../src/agents/guardrail-fields.js";
import { parse } from "../../src/cli/args.js";
import { agentBody, COMMANDS } from "../../src/cli/commands.js";
import { getAgent } from "../../src/db/agents.js";
import { policyOf } from "../../src/pipeline/guardrails.js";
import { call } from "../helpers/api.js";
import { useService } from "../helpers/use-service.js";

const fields = GUARDRAIL_FIELDS as readonly AgentField<string, unknown>[];

/** The example as a CLI flag's text. */
const flagText = (f: AgentField<string, unknown>) => (Array.isArray(f.example) ? f.example.join(",") : String(f.example));

describe("agent field table", () => {
  const svc = useService({ env: { LOCAL_CHAIN: "off" } });

  const newAgent = async () => {
    const r = await call(svc.app, "POST", "/v1/agents", { token: svc.op, body: { name: "fields" } });
    expect(r.status).toBe(201);
    return r.body.agent.id as string;
  };
  const get = async (id: string) => (await call(svc.app, "GET", `/v1/agents/${id}`, { token: svc.op })).body;

  it.each(fields.map((f) => [f.wire, f] as const))("%s: PATCH then GET reads back the example", async (_, f) => {
    const id = await newAgent();
    const before = await get(id);
    expect(before[f.wire], "the example must differ from the default").not.toEqual(f.example);
    const policyBefore = policyOf((await getAgent(svc.ctx.pool, id))!);

    const patched = await call(svc.app, "PATCH", `/v1/agents/${id}`, { token: svc.op, body: { [f.wire]: f.example } });
    expect(patched.status, patched.raw).toBe(200);
    expect(patched.body[f.wire]).toEqual(f.example);
    expect((await get(id))[f.wire]).toEqual(f.example);
    if (f.alias) expect((await get(id))[f.alias]).toEqual(f.example);

    const policyAfter = policyOf((await getAgent(svc.ctx.pool, id))!);
    if (f.policy)
      expect(policyAfter[f.policy.key as keyof typeof policyAfter]).not.toEqual(policyBefore[f.policy.key as keyof typeof policyBefore]);
  });

  it.each(fields.filter((f) => f.alias).map((f) => [f.alias!, f] as const))("%s: the alias writes the same column", async (_, f) => {
    const id = await newAgent();
    const r = await call(svc.app, "PATCH", `/v1/agents/${id}`, { token: svc.op, body: { [f.alias!]: f.example } });
    expect(r.status, r.raw).toBe(200);
    expect(r.body[f.wire]).toEqual(f.example);
  });

  it.each(fields.filter((f) => f.cli).map((f) => [f.cli!.flag, f] as const))("--%s: the CLI sends the field", async (flag, f) => {
    const argv = ["agents", "update", "00000000-0000-4000-8000-000000000000", `--${flag}`, flagText(f)];
    const p = parse(argv);
    expect(COMMANDS["agents update"].options).toContain(flag);
    expect(COMMANDS["agents create"].options).toContain(flag);
    const body = agentBody(p.values);
    expect(body).toEqual({ [f.wire]: f.example });
    // And the service takes what the CLI sends.
    const id = await newAgent();
    const r = await call(svc.app, "PATCH", `/v1/agents/${id}`, { token: svc.op, body });
    expect(r.status, r.raw).toBe(200);
    expect(r.body[f.wire]).toEqual(f.example);
  });
});
