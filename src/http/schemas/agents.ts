// Wire shapes of /v1/agents: the agent and its guardrails as operators send them.
import { z } from "zod";
import { guardrailRequestShape } from "../../agents/guardrail-fields.js";

// Every settable field of the agent, from the field table (its rules live there).
const guardrailFields = guardrailRequestShape();

export const CreateAgentRequest = z.strictObject({
  name: z.string().min(1).max(200),
  auth_method: z.literal("api_key", { error: "only api_key is supported" }).optional(),
  ...guardrailFields,
});
export const UpdateAgentRequest = z.strictObject({
  name: z.string().min(1).max(200).optional(),
  is_active: z.boolean().optional(),
  ...guardrailFields,
});
export type GuardrailInput = z.infer<typeof UpdateAgentRequest>;

export { AgentParams } from "./common.js";
