// Wire shapes of /v1/agents: the agent and its guardrails as operators send them.
import { isAddress } from "viem";
import { z } from "zod";
import { MAX_DATA_BYTES_CEILING } from "../../config.js";
import { parseMajor } from "../../units.js";

const addressList = z
  .array(
    z.string().refine((v) => /^0x[0-9a-fA-F]{40}$/.test(v) && isAddress(v, { strict: false }), "must be a 0x-prefixed 20-byte address"),
  )
  .max(1000)
  .transform((l) => [...new Set(l.map((a) => a.toLowerCase()))]);
const major = z.string().refine((v) => parseMajor(v) !== undefined, "must be a non-negative decimal string with at most 18 decimals");
const chainList = z
  .array(z.string().min(1).max(64))
  .max(100)
  .transform((l) => [...new Set(l.map((c) => c.toLowerCase()))]);
const ttl = z.number().int().min(60).max(86_400).nullable();
const dateTime = z.iso.datetime({ offset: true });

const guardrailFields = {
  description: z.string().max(2000).optional(),
  scopes: z.array(z.string().max(100)).max(100).optional(),
  intents_api_enabled: z.boolean().optional(),
  tx_to_allowlist: addressList.optional(),
  tx_max_value: major.nullable().optional(),
  tx_max_value_eth: major.nullable().optional(),
  tx_daily_limit: major.nullable().optional(),
  tx_daily_limit_eth: major.nullable().optional(),
  tx_max_per_day: z.number().int().min(0).max(1_000_000).nullable().optional(),
  tx_allowed_chains: chainList.optional(),
  tx_token_allowlist: addressList.optional(),
  token_ttl_seconds: ttl.optional(),
  api_key_expires_at: dateTime.nullable().optional(),
  expires_at: dateTime.nullable().optional(),
  simulate_required: z.boolean().optional(),
  // null: the default (deny when recipient or token rules exist, else allow).
  tx_unknown_calldata: z.enum(["allow", "deny", "simulate"]).nullable().optional(),
  tx_token_limits: z
    .record(
      z.string().regex(/^0x[0-9a-fA-F]{40}$/, "must be a token address"),
      z.strictObject({ max_per_tx: major.optional(), daily_limit: major.optional(), approval_cap: major.optional() }),
    )
    .refine((r) => Object.keys(r).length <= 200, "at most 200 tokens")
    .transform((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k.toLowerCase(), v])))
    .optional(),
  tx_unlimited_approval_allowlist: addressList.optional(),
  // Quotas (src/quotas.ts); null: the server's default.
  requests_per_minute: z.number().int().min(0).max(10_000_000).nullable().optional(),
  tx_max_data_bytes: z.number().int().min(0).max(MAX_DATA_BYTES_CEILING).nullable().optional(),
  // Fee limits (worst-case fee = gas_limit × max fee per gas), in the native unit; null: no limit.
  tx_max_fee: major.nullable().optional(),
  tx_daily_fee_budget: major.nullable().optional(),
  tx_max_gas_limit: z.number().int().min(21_000).max(1_000_000_000).nullable().optional(),
  /** false: the agent may not sign with the chain's shared keys/{chain}-signer. */
  shared_signer: z.boolean().optional(),
  // Signing intents (POST /v1/agents/{id}/sign).
  typed_data_unknown: z.enum(["allow", "deny"]).nullable().optional(),
  siwe_domain_allowlist: z
    .array(
      z
        .string()
        .min(1)
        .max(253)
        .regex(/^[A-Za-z0-9.-]+(:\d{1,5})?$/, "must be a host name, optionally with :port"),
    )
    .max(1000)
    .transform((l) => [...new Set(l.map((d) => d.toLowerCase()))])
    .optional(),
  verifying_contract_allowlist: addressList.optional(),
  raw_signing_enabled: z.boolean().optional(),
  eip7702_delegate_allowlist: addressList.optional(),
  eip7702_allow_chain_id_zero: z.boolean().optional(),
  sign_max_validity_seconds: z.number().int().min(60).max(31_536_000).optional(),
};

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

// Any string: an agent naming another (or a malformed) id must get 403/404, not a 400 about its shape.
export const AgentParams = z.object({ agent_id: z.string().max(100) });
