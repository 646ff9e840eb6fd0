// API keys: `ocv_` for agents, `1ck_` for operators, 32 random bytes in base64url. Only their SHA-256
// is stored; lookups go by that hash, and the fetched hash is compared again in constant time.
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

export const AGENT_KEY_PREFIX = "ocv_";
export const OPERATOR_KEY_PREFIX = "1ck_";

export function generateApiKey(prefix: string): string {
  return prefix + randomBytes(32).toString("base64url");
}

export function hashApiKey(key: string): Buffer {
  return createHash("sha256").update(key, "utf8").digest();
}

export function sameHash(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The first characters of a key: enough to tell keys apart in a listing, useless to an attacker. */
export function keyPrefix(key: string): string {
  return key.slice(0, 8);
}
