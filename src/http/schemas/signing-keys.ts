// Wire shapes of the signing-key routes (/v1/signing-keys and the per-agent key routes).
import { z } from "zod";
import { UUID } from "../../uuid.js";

const KEY_PATH = /^(keys|wallets|agents\/[0-9a-f-]{36})\/[A-Za-z0-9._/-]+$/;

const keyPath = z
  .string()
  .max(256)
  .regex(KEY_PATH, "must be keys/…, wallets/… or agents/{agent_id}/… using letters, digits and . _ / -")
  .refine(
    (p) => !p.includes("..") && !p.includes("//") && !p.endsWith("/") && !p.split("/").includes("."),
    "must not contain '..', '//' or '.' segments, nor end with '/'",
  )
  .refine((p) => !p.startsWith("agents/") || UUID.test(p.slice(7, 43)), "agents/{agent_id}/… needs a valid agent id");

export const CreateSigningKeyRequest = z.strictObject({
  path: keyPath,
  chain: z.string().min(1).max(64).optional(),
  agent_id: z
    .uuid()
    .transform((v) => v.toLowerCase())
    .optional(),
});
export const CreateAgentSigningKeyRequest = z.strictObject({ chain: z.string().min(1).max(64) });

export { AgentParams } from "./common.js";
export const BalanceParams = z.object({ agent_id: z.string().max(100), chain: z.string().max(100) });

export const SigningKeyResponse = z.object({
  id: z.string(),
  path: z.string(),
  address: z.string(),
  public_key: z.string(),
  chain: z.string().optional(),
  agent_id: z.string().optional(),
  curve: z.literal("secp256k1"),
  key_version: z.number().int(),
  is_active: z.boolean(),
  created_at: z.string(),
});
export const SigningKeyListResponse = z.object({ keys: z.array(SigningKeyResponse) });

// Grants: a key named by id or by (URL-encoded) path; one agent per grant.
export const KeyParams = z.object({ key: z.string().min(1).max(256) });
export const GrantParams = z.object({ key: z.string().min(1).max(256), agent_id: z.string().max(100) });
export const CreateGrantRequest = z.strictObject({ agent_id: z.uuid().transform((v) => v.toLowerCase()) });
export const UpdateSigningKeyRequest = z.strictObject({ is_active: z.boolean() });
export const GrantResponse = z.object({
  key_id: z.string(),
  path: z.string(),
  agent_id: z.string(),
  granted_by: z.string(),
  created_at: z.string(),
});
export const GrantListResponse = z.object({ grants: z.array(GrantResponse) });
export const SigningKeyBalanceResponse = z.object({
  chain: z.string(),
  address: z.string(),
  balance_wei: z.string(),
  balance_display: z.string(),
});
