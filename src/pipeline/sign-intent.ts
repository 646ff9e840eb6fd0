// Signing intents: POST /v1/agents/{agent_id}/sign. One request, one signature, under the same
// guardrails as a transaction.
//
//   validate → idempotency claim → chain (tx_allowed_chains) and signing key (resolveSigningKey) →
//   decode what is to be signed and check it without history:
//     personal_sign  EIP-191. A SIWE message (EIP-4361) is parsed: its address is the key's, chain id the
//                    chain's, domain in siwe_domain_allowlist (when set), expirationTime present and
//                    within sign_max_validity_seconds. Other text is signed as is; bytes that are not
//                    printable UTF-8 (a 32-byte hash, say) are blind signing: raw_signing_enabled only.
//     typed_data     EIP-712, strictly decoded (./typed-data.ts). Domain chainId = the chain;
//                    verifyingContract in verifying_contract_allowlist (when set). Known kinds put each
//                    approval and transfer under the token guardrails (token-guardrails.ts checkCalldata:
//                    token allowlist, spender/recipient vs tx_to_allowlist, max_per_tx, approval_cap,
//                    unlimited approvals) and cap their validity; unknown kinds follow typed_data_unknown.
//     eip712_digest  a bare 32-byte hash: raw_signing_enabled only, recorded as blind signing.
//     transaction    the submit pipeline itself (submitTransaction), types 0, 1, 2 and 4.
//   → BEGIN: when a token the signature moves has a per-token limit, lock the agent's spend row (the
//     lock the submit pipeline's commit groups take) and check the rolling 24 h token limits with what
//     transactions and earlier signatures moved → sign the digest in the HSM → the signatures row, its
//     token_spend rows, the audit event (with the decoded meaning) and the idempotent answer  COMMIT.
//
// A denial is a 403 with the transaction routes' `guardrail` body and a `signature.denied` audit event;
// nothing else is written.
import { randomUUID } from "node:crypto";
import { hashMessage, hexToBytes, isHex, serializeSignature, stringToBytes, type Hex } from "viem";
import { parseSiweMessage } from "viem/siwe";
import { z } from "zod";
import type { Principal } from "../auth/principal.js";
import type { Chain } from "../chains/registry.js";
import { tokenSpendToday, type AgentRow } from "../db/agents.js";
import { withTransaction } from "../db/pool.js";
import { insertSignature, type SignatureRow } from "../db/signatures.js";
import { badRequest, unprocessable, type ServiceError } from "../errors.js";
import { recordDenial } from "./denials.js";
import type { SigningKeyInfo } from "../signer/signer.js";
import { checkAllowlist, checkChainAllowed, policyOf, type Denial } from "./guardrails.js";
import { claimRequest, releaseClaim, settleClaims, type Claim } from "./idempotency.js";
import { MAX_MESSAGE_BYTES, type SignRequest } from "./request.js";
import { resolveChain, resolveSigningKey } from "./resolve.js";
import { submitTransaction } from "./submit.js";
import type { PipelineDeps, SubmitResult } from "./types.js";
import { checkCalldata, checkTokenOutflows, type TokenOutflow } from "./token-guardrails.js";
import { calldataPolicyOf, tokenDecimals } from "./token-policy.js";
import type { DecodedCall, TokenEffect } from "./calldata.js";
import { decodeTypedData, normalizeTypedData, TypedDataError, type TypedMeaning } from "./typed-data.js";
import { approvalGate, replayAnswer, type ApprovalInput } from "../approvals/gate.js";

const MAX_TYPED_DATA_CHARS = 64 * 1024;

const typedDataShape = z.strictObject({
  types: z
    .record(z.string().max(64), z.array(z.strictObject({ name: z.string().min(1).max(64), type: z.string().min(1).max(96) })).max(64))
    .refine((t) => Object.keys(t).length <= 64, "at most 64 types"),
  primaryType: z.string().min(1).max(64),
  domain: z.record(z.string(), z.unknown()),
  message: z.record(z.string(), z.unknown()),
});

export interface SignInput {
  principal: Extract<Principal, { type: "agent" }>;
  /** The request, parsed by the route (src/http/intents.ts). */
  request: SignRequest;
  /** The body as sent: the idempotency fingerprint and a held approval are of it. */
  body: unknown;
  idempotencyKey?: string;
  requestId?: string;
  ip?: string;
  /** The approval this request belongs to (src/approvals/gate.ts); `executing`: the approved run. */
  approval?: ApprovalInput;
}

/** What is about to be signed, decoded, and the checks it passed. */
interface Decoded {
  kind: string;
  digest: Hex;
  meaning: Record<string, unknown>;
  validUntil: Date | null;
  outflows: TokenOutflow[];
}

function fieldErrors(issues: z.core.$ZodIssue[]) {
  return issues.map((i) => ({ field: i.path.join(".") || "body", message: i.message }));
}

export async function signIntent(deps: PipelineDeps, input: SignInput): Promise<SubmitResult> {
  const req = input.request;
  if (req.intent_type === "transaction") return signTransactionIntent(deps, input, req);

  const agent = input.principal.agent;
  let claim: Claim | undefined;
  if (input.idempotencyKey !== undefined) {
    const claimed = await claimRequest(deps, agent.id, input.idempotencyKey, "sign_intent", input.body);
    if (claimed.kind === "replay") return replayAnswer(deps.pool, agent.id, claimed);
    // A signature's answer is stored in the transaction that records it, so no claim is ever orphaned
    // with a signature behind it; an orphaned claim here belongs to a transaction request.
    if (claimed.kind === "orphaned")
      throw unprocessable("This Idempotency-Key was already used with a different request.", "idempotency_key_reused");
    claim = claimed.claim;
  }
  try {
    const chain = resolveChain(deps.chains, req.chain);
    const chainDenial = checkChainAllowed(policyOf(agent), chain);
    if (chainDenial) throw await deny(deps, input, req, chain, chainDenial);
    const key = await resolveSigningKey(deps.pool, deps.signer, agent, chain, req.signing_key_path, deps.keyAccess);
    const decoded = await decode(deps, agent, chain, key, req);
    if ("reason_code" in decoded) throw await deny(deps, input, req, chain, decoded);
    // Approval rules (src/approvals): past every guardrail, before the signature, it may wait for operators.
    const held = await approvalGate(
      deps,
      {
        ...input,
        mode: "sign_intent",
        approval: input.approval ?? { action: "sign_intent", body: input.body, heldAddresses: [], heldDelegates: [] },
      },
      claim,
      {
        tokens: decoded.outflows,
        typedDataKind: req.intent_type === "typed_data" ? decoded.kind : undefined,
        eip7702: false,
      },
      {
        chain,
        from: key.address,
        details: {
          intent_type: req.intent_type,
          kind: decoded.kind,
          meaning: decoded.meaning,
          digest: decoded.digest,
          valid_until: decoded.validUntil?.toISOString() ?? null,
          signing_key_path: key.path,
        },
      },
    );
    if (held) return held;
    return await commitSignature(deps, input, req, chain, key, decoded, claim);
  } catch (err) {
    if (claim) await releaseClaim(deps.pool, claim).catch(() => {});
    throw err;
  }
}

async function decode(deps: PipelineDeps, agent: AgentRow, chain: Chain, key: SigningKeyInfo, req: SignRequest): Promise<Decoded | Denial> {
  const now = BigInt(Math.floor(Date.now() / 1000));
  const cap = BigInt(agent.sign_max_validity_seconds);
  const tooLong = (field: string, at: bigint): Denial | null =>
    at === 0n || at - now > cap
      ? {
          reason_code: "validity_too_long",
          detail: `The signature's ${field} ${at === 0n ? "never ends" : `is ${at - now} s away`}; this agent's sign_max_validity_seconds is ${cap}.`,
          limit: Number(cap),
          current: null,
          attempted: at === 0n ? "unbounded" : (at - now).toString(),
        }
      : null;

  if (req.intent_type === "eip712_digest") {
    if (!agent.raw_signing_enabled)
      return {
        reason_code: "raw_signing_disabled",
        detail: "Signing a bare digest (blind signing) needs raw_signing_enabled on this agent.",
        limit: null,
        current: null,
        attempted: "eip712_digest",
      };
    return {
      kind: "blind_digest",
      digest: req.hash!.toLowerCase() as Hex,
      meaning: { blind: true, digest: req.hash!.toLowerCase() },
      validUntil: null,
      outflows: [],
    };
  }

  if (req.intent_type === "personal_sign") {
    // The reference takes hex bytes; the official SDK also sends UTF-8 text.
    const bytes =
      isHex(req.message!, { strict: true }) && req.message!.length % 2 === 0 ? hexToBytes(req.message as Hex) : stringToBytes(req.message!);
    if (bytes.length > MAX_MESSAGE_BYTES)
      throw badRequest(`message is over ${MAX_MESSAGE_BYTES} bytes.`, [{ field: "message", message: "too large" }]);
    const digest = hashMessage({ raw: bytes });
    let text: string | null = null;
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    } catch {
      text = null;
    }
    if (text === null || bytes.length === 0 || /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(text)) {
      if (!agent.raw_signing_enabled)
        return {
          reason_code: "raw_signing_disabled",
          detail:
            "The message is not printable text (it could be a hash or a transaction): signing it is blind signing, which needs raw_signing_enabled.",
          limit: null,
          current: null,
          attempted: "personal_sign",
        };
      return { kind: "blind_message", digest, meaning: { blind: true, bytes: bytes.length }, validUntil: null, outflows: [] };
    }
    // Anything that mentions the SIWE header is held to the SIWE rules: a near-miss is refused, not
    // signed as plain text.
    if (!/wants you to sign in with your Ethereum account/i.test(text)) {
      return {
        kind: "message",
        digest,
        meaning: { text: text.length > 512 ? text.slice(0, 512) + "…" : text, bytes: bytes.length },
        validUntil: null,
        outflows: [],
      };
    }
    const siwe = parseSiweMessage(text);
    const bad = (
      detail: string,
      reason = "siwe_invalid",
      limit: Denial["limit"] = null,
      attempted: Denial["attempted"] = null,
    ): Denial => ({ reason_code: reason, detail, limit, current: null, attempted });
    if (!siwe.domain || !siwe.address || !siwe.uri || siwe.version !== "1" || siwe.chainId === undefined || !siwe.nonce || !siwe.issuedAt) {
      return bad(
        "The message reads as Sign-In with Ethereum (EIP-4361) but lacks a required field (domain, address, uri, version 1, chain id, nonce, issued at).",
      );
    }
    if (siwe.address.toLowerCase() !== key.address.toLowerCase())
      return bad(`The SIWE address ${siwe.address} is not this key's address.`, "siwe_address_mismatch", key.address, siwe.address);
    if (siwe.chainId !== chain.chain_id)
      return bad(
        `The SIWE chain id ${siwe.chainId} is not ${chain.name}'s (${chain.chain_id}).`,
        "siwe_chain_mismatch",
        chain.chain_id,
        siwe.chainId,
      );
    const domain = siwe.domain.toLowerCase();
    if (agent.siwe_domain_allowlist.length > 0 && !agent.siwe_domain_allowlist.includes(domain)) {
      return bad(
        `Signing in to ${domain} is not allowed: it is not in this agent's siwe_domain_allowlist.`,
        "siwe_domain_not_allowlisted",
        agent.siwe_domain_allowlist,
        domain,
      );
    }
    if (!siwe.expirationTime) return bad("A SIWE message must carry an Expiration Time.", "siwe_expiry_missing");
    const expiry = BigInt(Math.floor(siwe.expirationTime.getTime() / 1000));
    const long = tooLong("expirationTime", expiry);
    if (long) return long;
    return {
      kind: "siwe",
      digest,
      validUntil: siwe.expirationTime,
      outflows: [],
      meaning: {
        domain,
        uri: siwe.uri,
        address: siwe.address.toLowerCase(),
        chain_id: siwe.chainId,
        nonce: siwe.nonce,
        issued_at: siwe.issuedAt.toISOString(),
        expiration_time: siwe.expirationTime.toISOString(),
        ...(siwe.statement ? { statement: siwe.statement } : {}),
      },
    };
  }

  // typed_data
  const shape = typedDataShape.safeParse(req.typed_data);
  if (!shape.success)
    throw badRequest(
      "typed_data is not EIP-712 JSON ({ types, primaryType, domain, message }).",
      fieldErrors(shape.error.issues).map((e) => ({ ...e, field: `typed_data.${e.field}` })),
    );
  if (JSON.stringify(req.typed_data).length > MAX_TYPED_DATA_CHARS)
    throw badRequest("typed_data is too large.", [{ field: "typed_data", message: "too large" }]);
  let td;
  try {
    td = normalizeTypedData(shape.data);
  } catch (err) {
    if (err instanceof TypedDataError)
      throw badRequest(`Invalid typed_data: ${err.message}`, [{ field: "typed_data", message: err.message }]);
    throw err;
  }
  if (td.domain.chainId === undefined || td.domain.chainId !== BigInt(chain.chain_id)) {
    return {
      reason_code: "typed_data_chain_mismatch",
      detail: `The typed data's domain chainId (${td.domain.chainId ?? "none"}) must be ${chain.name}'s (${chain.chain_id}).`,
      limit: chain.chain_id,
      current: null,
      attempted: td.domain.chainId?.toString() ?? null,
    };
  }
  const vc = td.domain.verifyingContract;
  const vcDenial = checkAllowlist(
    agent.verifying_contract_allowlist,
    vc ?? null,
    "verifying_contract_not_allowlisted",
    `The typed data's verifyingContract ${vc ?? "(none)"} is not in this agent's verifying_contract_allowlist.`,
  );
  if (vcDenial) return vcDenial;
  const meaning = decodeTypedData(td);
  const common = {
    primary_type: td.primaryType,
    domain: { ...td.domain, chainId: td.domain.chainId.toString() },
    message: meaning.details,
  };
  if (meaning.kind === "typed_data_unknown") {
    if (unknownTypedDataPolicy(agent) === "deny") {
      return {
        reason_code: "typed_data_unknown",
        detail: `Typed data of type ${td.primaryType} is not a kind this service understands and this agent's policy denies it (typed_data_unknown).`,
        limit: "deny",
        current: null,
        attempted: td.primaryType,
      };
    }
    return { kind: meaning.kind, digest: td.hash, meaning: common, validUntil: null, outflows: [] };
  }
  if (meaning.owner !== undefined && meaning.owner !== key.address.toLowerCase()) {
    return {
      reason_code: "typed_data_owner_mismatch",
      detail: `The typed data speaks for ${meaning.owner}, not for this key's address.`,
      limit: key.address.toLowerCase(),
      current: null,
      attempted: meaning.owner,
    };
  }
  const checked = await checkTokenMeaning(deps, agent, chain, meaning);
  if ("reason_code" in checked) return checked;
  let validUntil = 0n;
  for (const e of meaning.expiries) {
    const long = tooLong(e.field, e.at);
    if (long) return long;
    if (e.at > validUntil) validUntil = e.at;
  }
  return {
    kind: meaning.kind,
    digest: td.hash,
    outflows: checked,
    validUntil: new Date(Number(validUntil) * 1000),
    meaning: {
      ...common,
      approvals: meaning.approvals.map((a) => ({ token: a.token, spender: a.spender, amount: a.amount.toString() })),
      transfers: meaning.transfers.map((t) => ({ token: t.token, recipient: t.recipient, amount: t.amount.toString() })),
      valid_until: new Date(Number(validUntil) * 1000).toISOString(),
    },
  };
}

/** typed_data_unknown, or its default: deny when the agent has recipient or token rules. */
export function unknownTypedDataPolicy(
  agent: Pick<AgentRow, "typed_data_unknown" | "tx_to_allowlist" | "tx_token_allowlist" | "tx_token_limits">,
): "allow" | "deny" {
  if (agent.typed_data_unknown) return agent.typed_data_unknown;
  const rules =
    agent.tx_to_allowlist.length > 0 || agent.tx_token_allowlist.length > 0 || Object.keys(agent.tx_token_limits ?? {}).length > 0;
  return rules ? "deny" : "allow";
}

/**
 * Each approval and transfer a typed-data signature grants, under the same checks as the calldata of a
 * transaction doing the same; returns the amounts to count in the rolling token limits. Decimals are
 * read (once per token) only when the token has a limit: otherwise allowlists alone decide.
 */
async function checkTokenMeaning(deps: PipelineDeps, agent: AgentRow, chain: Chain, m: TypedMeaning): Promise<TokenOutflow[] | Denial> {
  const policy = calldataPolicyOf(agent);
  const outflows: TokenOutflow[] = [];
  const decimalsOf = (token: string) =>
    policy.tokenLimits[token] !== undefined
      ? tokenDecimals(deps.pool, deps.clients.get(chain), chain.chain_id, token)
      : Promise.resolve(undefined);
  // A signed permit sets the allowance (it does not add to it): judged by its own amount. What a signed
  // approval lets the spender take counts as if sent now: it needs no further signature.
  const effects: Array<{ token: string; amount: bigint; effect: TokenEffect; counts: boolean }> = [
    ...m.approvals.map((a) => ({
      token: a.token,
      amount: a.amount,
      effect: { type: "approve", token: a.token, spender: a.spender, amount: a.amount, mode: "set" } as const,
      counts: a.amount > 0n,
    })),
    ...m.transfers.map((t) => ({
      token: t.token,
      amount: t.amount,
      effect: { type: "transfer", token: t.token, standard: "erc20", recipient: t.recipient, amount: t.amount } as const,
      counts: true,
    })),
  ];
  for (const e of effects) {
    const decimals = await decimalsOf(e.token);
    const call: DecodedCall = { kind: "token", selector: "0x", fn: m.kind, effects: [e.effect] };
    const denial = checkCalldata(policy, call, { decimals: () => decimals, allowance: () => 0n });
    if (denial && denial !== "simulate") return denial;
    if (e.counts) outflows.push({ token: e.token, amount: e.amount, decimals: decimals ?? 0 });
  }
  return outflows;
}

async function commitSignature(
  deps: PipelineDeps,
  input: SignInput,
  req: SignRequest,
  chain: Chain,
  key: SigningKeyInfo,
  d: Decoded,
  claim: Claim | undefined,
): Promise<SubmitResult> {
  const agent = input.principal.agent;
  const policy = calldataPolicyOf(agent);
  const tokenLimited = d.outflows.some((o) => policy.tokenLimits[o.token] !== undefined);
  const id = randomUUID();
  const result = await withTransaction(deps.pool, async (tx): Promise<SubmitResult | Denial> => {
    if (tokenLimited) {
      // The agent's spend row: the lock the submit pipeline's commit groups take (checkGroupLimits), so
      // transfers and signatures of this agent are counted one after the other, across replicas.
      await tx.query("SELECT 1 FROM agent_spend_locks WHERE agent_id = $1 FOR UPDATE", [agent.id]);
      const spent = await tokenSpendToday(tx, agent.id);
      const denial = checkTokenOutflows(policy, d.outflows, (t) => spent.get(t) ?? 0n);
      if (denial) return denial;
    }
    const sig = await deps.metrics.time("sign", () => deps.signer.signDigest(key.path, d.digest));
    const signature = serializeSignature(sig);
    const row: SignatureRow = {
      id,
      agent_id: agent.id,
      intent_type: req.intent_type as SignatureRow["intent_type"],
      kind: d.kind,
      chain: chain.name,
      chain_id: chain.chain_id,
      signer_address: key.address.toLowerCase(),
      signing_key_path: key.path,
      digest: d.digest,
      signature,
      meaning: d.meaning,
      valid_until: d.validUntil,
    };
    const body = JSON.stringify(
      withoutNulls({
        id,
        intent_type: req.intent_type,
        chain: chain.name,
        chain_id: chain.chain_id,
        from: key.address,
        signature,
        signed_tx: null,
        tx_hash: null,
        message_hash: req.intent_type === "personal_sign" ? d.digest : null,
        typed_data_hash: req.intent_type === "personal_sign" ? null : d.digest,
        tx_type: null,
        kind: d.kind,
        meaning: d.meaning,
      }),
    );
    await insertSignature(tx, row, {
      outflows: d.outflows,
      audit: {
        action: "signature.create",
        actor: input.principal,
        resourceType: "signature",
        resourceId: id,
        requestId: input.requestId,
        ip: input.ip,
      },
    });
    if (claim) await settleClaims(tx, [{ claim, status: 200, body }], []);
    return { status: 200, body };
  });
  if ("reason_code" in result) throw await deny(deps, input, req, chain, result);
  deps.metrics.submissions.inc({ mode: `sign_${req.intent_type}`, status: "signed" });
  return result;
}

function deny(deps: PipelineDeps, input: SignInput, req: SignRequest, chain: Chain, d: Denial): Promise<ServiceError> {
  return recordDenial(deps, d, {
    action: "signature.denied",
    actor: input.principal,
    details: { intent_type: req.intent_type, chain: chain.name, attempted: d.attempted },
    requestId: input.requestId,
    ip: input.ip,
  });
}

/**
 * intent_type "transaction": the submit pipeline (guardrails, nonce, simulation, HSM, broadcast unless
 * sign_only), answered in the SignIntentResponse shape. The pipeline's stored answer (for idempotent
 * replays) is its transaction response; this maps it the same way every time.
 */
async function signTransactionIntent(deps: PipelineDeps, input: SignInput, req: SignRequest): Promise<SubmitResult> {
  const { intent, body } = req.transaction!;
  const result = await submitTransaction(deps, {
    principal: input.principal,
    intent,
    body,
    mode: req.sign_only ? "sign" : "submit",
    operation: `sign_intent:${req.sign_only ? "sign" : "submit"}`,
    idempotencyKey: input.idempotencyKey,
    requestId: input.requestId,
    ip: input.ip,
    approval: input.approval ?? { action: "sign_intent", body: input.body, heldAddresses: [], heldDelegates: [] },
  });
  // Held for operators (202), or an approval's stored result (already in this shape): as it is.
  if (result.approval) return result;
  const tx = JSON.parse(result.body) as Record<string, unknown>;
  const signed = typeof tx.signed_tx === "string" ? tx.signed_tx : null;
  const typeByte = signed ? parseInt(signed.slice(2, 4), 16) : NaN;
  const txType = typeof body.tx_type === "number" ? body.tx_type : Number.isNaN(typeByte) ? null : typeByte >= 0xc0 ? 0 : typeByte;
  return {
    status: 200,
    body: JSON.stringify(
      withoutNulls({
        id: tx.id,
        intent_type: "transaction",
        chain: tx.chain,
        chain_id: tx.chain_id,
        from: tx.from,
        signature: null,
        signed_tx: signed,
        tx_hash: tx.tx_hash ?? null,
        message_hash: null,
        typed_data_hash: null,
        tx_type: txType,
        status: tx.status,
        nonce: tx.nonce,
        ...(tx.error_message ? { error_message: tx.error_message } : {}),
      }),
    ),
  };
}

/**
 * The SignIntentResponse's hash and transaction fields are optional: the official SDK types them as
 * absent-or-string, so a field that does not apply to the intent is left out rather than sent as null.
 */
function withoutNulls<T extends Record<string, unknown>>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== null && v !== undefined)) as Partial<T>;
}
