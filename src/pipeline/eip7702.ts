// EIP-7702 authorizations in a type-4 transaction. An authorization delegates the whole account of the
// signing key to a contract's code, for good, so it is a guardrail of its own: the delegate must be in
// the agent's eip7702_delegate_allowlist (empty: none allowed; the zero address, which clears a
// delegation, is always allowed), its chain id must be the transaction's chain (0, valid on every
// chain, only with eip7702_allow_chain_id_zero), and its nonce is the service's: the transaction's own
// nonce + 1 + its position, as the sender's nonce is incremented before the list is processed.
// checkAuthorizations is pure; signAuthorizations signs each with the transaction's key in the HSM.
import type { SignedAuthorization, SignedAuthorizationList } from "viem";
import { hashAuthorization } from "viem/utils";
import type { Chain } from "../chains/registry.js";
import type { AgentRow } from "../db/agents.js";
import type { Signer } from "../signer/signer.js";
import type { Denial } from "./guardrails.js";
import type { Intent } from "./request.js";

const ZERO = "0x0000000000000000000000000000000000000000";

export function checkAuthorizations(
  agent: Pick<AgentRow, "eip7702_delegate_allowlist" | "eip7702_allow_chain_id_zero">,
  chain: Pick<Chain, "chain_id" | "name">,
  intent: Pick<Intent, "authorizations">,
): Denial | null {
  const allow = (agent.eip7702_delegate_allowlist ?? []).map((a) => a.toLowerCase());
  for (const a of intent.authorizations ?? []) {
    if (a.delegate !== ZERO && !allow.includes(a.delegate)) {
      return {
        reason_code: "eip7702_delegate_not_allowlisted",
        detail: `Delegating this key's account to ${a.delegate} is not allowed: it is not in this agent's eip7702_delegate_allowlist.`,
        limit: allow,
        current: null,
        attempted: a.delegate,
      };
    }
    if (a.chainId === 0 && !agent.eip7702_allow_chain_id_zero) {
      return {
        reason_code: "eip7702_chain_id_zero",
        detail: "An authorization for chain id 0 is valid on every chain; this agent may not sign one (eip7702_allow_chain_id_zero).",
        limit: chain.chain_id,
        current: null,
        attempted: 0,
      };
    }
    if (a.chainId !== undefined && a.chainId !== 0 && a.chainId !== chain.chain_id) {
      return {
        reason_code: "eip7702_chain_mismatch",
        detail: `An authorization for chain id ${a.chainId} cannot be signed in a transaction on ${chain.name} (${chain.chain_id}).`,
        limit: chain.chain_id,
        current: null,
        attempted: a.chainId,
      };
    }
  }
  return null;
}

/** Signs the intent's authorizations for a transaction with nonce `txNonce`, in order. */
export async function signAuthorizations(
  signer: Signer,
  path: string,
  chain: Chain,
  intent: Intent,
  txNonce: bigint,
): Promise<SignedAuthorizationList | undefined> {
  if (!intent.authorizations?.length) return undefined;
  const out: SignedAuthorization[] = [];
  for (const [i, a] of intent.authorizations.entries()) {
    const auth = { address: a.delegate, chainId: a.chainId ?? chain.chain_id, nonce: Number(txNonce) + 1 + i };
    const sig = await signer.signDigest(path, hashAuthorization(auth));
    out.push({ ...auth, r: sig.r, s: sig.s, yParity: sig.yParity });
  }
  return out;
}
