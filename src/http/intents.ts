// The bodies that carry intents (submit, sign, simulate, sign-intent), parsed at the edge: the data
// size cap is counted on the raw body before its shape is read, then the wire schema, then the
// pipeline's own types (src/pipeline/request.ts). The raw body travels on beside the parsed request:
// the idempotency fingerprint and a held approval are of the body as sent. The approvals service
// parses a stored request with these same functions (passed in by src/http/approvals.ts).
import type { z } from "zod";
import type { RequestParsers } from "../approvals/service.js";
import type { AgentRow } from "../db/agents.js";
import { badRequest } from "../errors.js";
import type { Intent, SignRequest, SimulationIntent } from "../pipeline/request.js";
import { checkDataSize, dataLimitOf, DEFAULT_MAX_DATA_BYTES } from "../quotas.js";
import { parseMajor } from "../units.js";
import { SignIntentRequestSchema, TX_FIELDS } from "./schemas/signatures.js";
import {
  MAX_BUNDLE,
  SimulateBundleRequestSchema,
  SimulateTransactionRequestSchema,
  TransactionRequestSchema,
  type SimulateTransactionRequest,
  type TransactionRequest,
} from "./schemas/transactions.js";

/** What parsing needs to know besides the body: the agent's data size cap, else the service's. */
export interface ParseContext {
  agent: AgentRow;
  maxDataBytes?: number;
}

const dataLimit = (c: ParseContext) => dataLimitOf(c.agent, c.maxDataBytes ?? DEFAULT_MAX_DATA_BYTES);

/** The body against its schema, or a 400 naming each field (the first five in the detail). */
export function parseBody<S extends z.ZodType>(schema: S, body: unknown, what: string): z.output<S> {
  const parsed = schema.safeParse(body);
  if (parsed.success) return parsed.data;
  const errors = parsed.error.issues.map((i) => ({
    field: i.path.join(".") || ((i as { keys?: string[] }).keys?.join(", ") ?? "body"),
    message: i.code === "unrecognized_keys" ? `unknown field(s): ${(i as unknown as { keys: string[] }).keys.join(", ")}` : i.message,
  }));
  throw badRequest(
    `Invalid ${what}: ${errors
      .slice(0, 5)
      .map((e) => `${e.field}: ${e.message}`)
      .join("; ")}`,
    errors,
  );
}

/** Submit and sign: 413 for oversized `data` first, then the schema. */
export function parseTransaction(body: unknown, c: ParseContext): Intent {
  checkDataSize((body as { data?: unknown } | null)?.data, dataLimit(c));
  return toIntent(parseBody(TransactionRequestSchema, body, "transaction request"));
}

export function parseSimulation(body: unknown, c: ParseContext): SimulationIntent[] {
  checkDataSize((body as { data?: unknown } | null)?.data, dataLimit(c));
  return [toSimulationIntent(parseBody(SimulateTransactionRequestSchema, body, "simulation request"))];
}

export function parseBundle(body: unknown, c: ParseContext): SimulationIntent[] {
  const txs = (body as { transactions?: unknown } | null)?.transactions;
  if (Array.isArray(txs))
    txs
      .slice(0, MAX_BUNDLE)
      .forEach((t, i) => checkDataSize((t as { data?: unknown } | null)?.data, dataLimit(c), `transactions.${i}.data`));
  return parseBody(SimulateBundleRequestSchema, body, "bundle simulation request").transactions.map(toSimulationIntent);
}

/** A signing intent; a transaction intent's fields are parsed as a transaction request of their own. */
export function parseSignIntent(body: unknown, c: ParseContext): SignRequest {
  const req = parseBody(SignIntentRequestSchema, body, "signing request");
  const out: SignRequest = {
    intent_type: req.intent_type,
    chain: req.chain,
    signing_key_path: req.signing_key_path,
    message: req.message,
    typed_data: req.typed_data,
    hash: req.hash,
    sign_only: req.sign_only,
  };
  if (req.intent_type !== "transaction") return out;
  const raw = body as Record<string, unknown>;
  const tx: Record<string, unknown> = { chain: req.chain };
  for (const k of TX_FIELDS) if (raw[k] !== undefined) tx[k] = raw[k];
  if (tx.value === undefined) tx.value = "0";
  return { ...out, transaction: { body: tx, intent: parseTransaction(tx, c) } };
}

function toIntent(r: TransactionRequest): Intent {
  return {
    ...toSimulationIntent(r),
    nonce: r.nonce,
    gasPrice: r.gas_price !== undefined ? BigInt(r.gas_price) : undefined,
    maxFeePerGas: r.max_fee_per_gas !== undefined ? BigInt(r.max_fee_per_gas) : undefined,
    maxPriorityFeePerGas: r.max_priority_fee_per_gas !== undefined ? BigInt(r.max_priority_fee_per_gas) : undefined,
    simulateFirst: r.simulate_first ?? false,
    txType: (r.tx_type ?? (r.authorization_list ? 4 : undefined)) as Intent["txType"],
    accessList: r.access_list?.map((e) => ({
      address: e.address.toLowerCase() as `0x${string}`,
      storageKeys: e.storage_keys.map((k) => k.toLowerCase() as `0x${string}`),
    })),
    authorizations: r.authorization_list?.map((a) => ({ delegate: a.address.toLowerCase() as `0x${string}`, chainId: a.chain_id })),
  };
}

function toSimulationIntent(r: SimulateTransactionRequest): SimulationIntent {
  return {
    to: r.to.toLowerCase() as `0x${string}`,
    valueWei: parseMajor(r.value)!,
    chain: r.chain,
    data: r.data && r.data !== "0x" ? (r.data.toLowerCase() as `0x${string}`) : undefined,
    signingKeyPath: r.signing_key_path,
    gasLimit: r.gas_limit !== undefined ? BigInt(r.gas_limit) : undefined,
  };
}

/** The parsers the approvals service runs a stored request through (the same as the routes'). */
export function requestParsers(deps: { config?: { maxDataBytes?: number } }): RequestParsers {
  return {
    transaction: (body, agent) => parseTransaction(body, { agent, maxDataBytes: deps.config?.maxDataBytes }),
    signIntent: (body, agent) => parseSignIntent(body, { agent, maxDataBytes: deps.config?.maxDataBytes }),
  };
}
