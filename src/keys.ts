// Signing keys: generated inside the HSM (labelled by path), mirrored in `signing_keys` for listing.
// The HSM is the source of truth for key material; the table only holds path, address and public key.
import type { Queryable } from "./db/pool.js";
import { recordSigningKey } from "./db/signing-keys.js";
import { HsmError, type Signer, type SigningKeyInfo } from "./signer/signer.js";

/** Returns the key at `path`, generating it in the HSM first when it does not exist yet. */
export async function ensureSigningKey(
  db: Queryable,
  signer: Signer,
  path: string,
  meta: { chain?: string | null; agentId?: string | null } = {},
): Promise<SigningKeyInfo> {
  let key = await signer.getKey(path);
  if (!key) {
    try {
      key = await signer.createKey(path);
    } catch (err) {
      // Another request created it between our lookup and our create: in this process the signer
      // serialises creations per path and answers key_exists (signer/pkcs11.ts createKey); across
      // replicas sharing a token its check is best effort, so a key_exists may come from either.
      if (!(err instanceof HsmError && err.code === "key_exists")) throw err;
      key = await signer.getKey(path);
      if (!key) throw err;
    }
  }
  await recordSigningKey(db, key, meta);
  return key;
}
