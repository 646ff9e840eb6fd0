// Wire shapes of signing intents: POST /v1/agents/{agent_id}/sign (parsed by src/http/intents.ts) and
// the signature lists and export.
import { z } from "zod";
import { MAX_MESSAGE_BYTES } from "../../pipeline/request.js";
import { UUID } from "../../uuid.js";
import { chainRef, page, period, signingKeyPath, UNSUPPORTED_FIELDS } from "./common.js";

// The transaction fields of the reference request, passed on to the submit pipeline as they are.
export const TX_FIELDS = [
  "to",
  "value",
  "data",
  "nonce",
  "gas_limit",
  "gas_price",
  "max_fee_per_gas",
  "max_priority_fee_per_gas",
  "tx_type",
  "access_list",
  "authorization_list",
  "signing_key_path",
  "simulate_first",
] as const;
// Besides the fields no EVM request has: blobs (type 3), which this service does not sign.
const UNSUPPORTED = [...UNSUPPORTED_FIELDS, "max_fee_per_blob_gas", "blob_versioned_hashes"] as const;

export const SignIntentRequestSchema = z
  .looseObject({
    intent_type: z.enum(["personal_sign", "typed_data", "eip712_digest", "transaction"]),
    chain: chainRef,
    signing_key_path: signingKeyPath.optional(),
    message: z
      .string()
      .max(2 * MAX_MESSAGE_BYTES + 2)
      .optional(),
    typed_data: z.unknown().optional(),
    hash: z
      .string()
      .regex(/^0x[0-9a-fA-F]{64}$/, "must be a 0x-prefixed 32-byte hex digest")
      .optional(),
    sign_only: z.boolean().optional(),
    // A resubmission of a request held for approval (src/approvals/gate.ts answers it).
    approval_id: z.uuid().optional(),
  })
  .superRefine((r, ctx) => {
    const raw = r as Record<string, unknown>;
    for (const k of UNSUPPORTED)
      if (raw[k] !== undefined)
        ctx.addIssue({
          code: "custom",
          path: [k],
          message: k.includes("blob") ? "blob transactions (type 3) are not supported" : "is not supported for EVM signing",
        });
    const allowed = new Set<string>([
      "intent_type",
      "chain",
      "signing_key_path",
      "approval_id",
      ...UNSUPPORTED,
      ...(r.intent_type === "personal_sign"
        ? ["message"]
        : r.intent_type === "typed_data"
          ? ["typed_data"]
          : r.intent_type === "eip712_digest"
            ? ["hash"]
            : [...TX_FIELDS, "sign_only"]),
    ]);
    const extra = Object.keys(raw).filter((k) => !allowed.has(k));
    if (extra.length)
      ctx.addIssue({
        code: "custom",
        path: [extra[0]],
        message: `unknown field(s) for intent_type ${r.intent_type}: ${extra.slice(0, 5).join(", ")}`,
      });
    if (r.intent_type === "personal_sign" && r.message === undefined)
      ctx.addIssue({ code: "custom", path: ["message"], message: "is required for personal_sign" });
    if (r.intent_type === "typed_data" && r.typed_data === undefined)
      ctx.addIssue({ code: "custom", path: ["typed_data"], message: "is required for typed_data" });
    if (r.intent_type === "eip712_digest" && r.hash === undefined)
      ctx.addIssue({ code: "custom", path: ["hash"], message: "is required for eip712_digest" });
  });
export type SignIntentRequest = z.output<typeof SignIntentRequestSchema>;

// Route parameters and the list, history and export queries.
export { AgentParams } from "./common.js";

export const Filters = z.object({
  intent_type: z.enum(["personal_sign", "typed_data", "eip712_digest"]).optional(),
  kind: z.string().max(64).optional(),
  ...period,
  // `signature` (the 65 bytes) is shown only when asked for, like a transaction's signed_tx.
  include_signature: z.string().optional(),
});

export const ListQuery = Filters.extend(page);

export const HistoryQuery = ListQuery.extend({
  agent_id: z
    .string()
    .refine((v) => UUID.test(v), "must be an agent id (uuid)")
    .optional(),
});

export const ExportQuery = Filters.extend({ agent_id: HistoryQuery.shape.agent_id, format: z.enum(["jsonl", "csv"]).default("jsonl") });
