// Wire shapes of /v1/auth/api-keys (operator keys).
import { z } from "zod";

export const CreateApiKeyRequest = z.strictObject({
  name: z.string().trim().min(1).max(100),
  expires_at: z.iso.datetime({ offset: true }).optional(),
});

export const ApiKeyResponse = z.object({
  id: z.uuid(),
  name: z.string(),
  key_prefix: z.string(),
  is_active: z.boolean(),
  created_at: z.string(),
  last_used_at: z.string().nullable(),
  expires_at: z.string().nullable(),
  revoked_at: z.string().nullable(),
});

export const KeyParams = z.strictObject({ key_id: z.uuid() });

/** The key itself is in this answer only. */
export const CreateApiKeyResponse = z.object({ key: ApiKeyResponse, api_key: z.string() });
export const ApiKeyListResponse = z.object({ keys: z.array(ApiKeyResponse) });
