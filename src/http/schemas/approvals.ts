// Wire shapes of /v1/pending-approvals and an agent's approval rules.
import { z } from "zod";
import { ApprovalRulesSchema } from "../../approvals/rules.js";
import { UUID } from "../../uuid.js";

const uuid = z.string().refine((v) => UUID.test(v), "must be a uuid");

export const IdParams = z.object({ id: z.string().max(100) });

export { AgentParams } from "./common.js";

const STATUSES = ["pending", "executing", "executed", "failed", "rejected", "expired", "cancelled"] as const;

export const ListQuery = z.object({
  agent_id: uuid.optional(),
  status: z.enum(STATUSES).optional(),
  chain: z.string().max(64).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(50),
  offset: z.coerce.number().int().min(0).max(100_000).default(0),
});

export const ApprovePendingApprovalRequestSchema = z.strictObject({
  decision: z.enum(["approve", "reject"]),
  payload_hash: z.string().regex(/^0x[0-9a-fA-F]{64}$/, "must be the approval's payload_hash"),
  reason: z.string().max(1000).optional(),
  // Accepted for the reference's shape; an operator key's vote is always `api_key`.
  credential_type: z.enum(["password", "passkey", "totp", "biometric", "api_key"]).optional(),
});

// PUT …/approval-rules: validated in the handler (a 400 naming the rule) with the strict shape; the
// route documents the plain one.
export const ApprovalRulesBody = z.object({ approval_rules: ApprovalRulesSchema.nullable() });
export const ApprovalRulesRequest = z.strictObject({ approval_rules: ApprovalRulesSchema.nullable() });
