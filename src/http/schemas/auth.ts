// Wire shapes of /v1/auth: token exchanges.
import { z } from "zod";

/** A public JWK as the SDK sends it (`dpop_jwk`): bounded in size; the proof's own jwk must match it. */
export const DpopJwk = z
  .looseObject({ kty: z.string().max(8) })
  .refine((j) => Object.keys(j).length <= 16 && JSON.stringify(j).length <= 4096, "too large");

export const AgentTokenRequest = z.strictObject({
  api_key: z.string().min(1).max(200),
  agent_id: z.uuid().optional(),
  /** RFC 9449 binding as the 1Claw SDK requests it: the DPoP key, also in the `DPoP` proof header. */
  dpop_jwk: DpopJwk.optional(),
});

export const TokenResponse = z.object({
  access_token: z.string(),
  token_type: z.enum(["Bearer", "DPoP"]),
  expires_in: z.number().int(),
  agent_id: z.uuid(),
});

export const ApiKeyTokenRequest = z.strictObject({ api_key: z.string().min(1).max(200) });

export const OperatorTokenResponse = z.object({
  access_token: z.string(),
  token_type: z.enum(["Bearer", "DPoP"]),
  expires_in: z.number().int(),
  operator_key_id: z.uuid(),
});
