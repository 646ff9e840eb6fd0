// Wire shapes of /v1/agents/{agent_id}/transactions: the request body shared by submit, sign and
// simulate, validated with zod. Unknown fields
// are rejected: a typo like `gaslimit` must not silently fall back to an estimate.
import { isAddress } from "viem";
import { z } from "zod";
import { CHAIN_STATUSES, TX_STATUSES } from "../../db/transactions.js";
import { MAX_UINT256, parseMajor } from "../../units.js";
import { chainRef, page, period, signingKeyPath, UNSUPPORTED_FIELDS } from "./common.js";

export const MAX_EXPLICIT_NONCE = 2 ** 32 - 1;

const address = z
  .string()
  .refine((v) => /^0x[0-9a-fA-F]{40}$/.test(v), "must be a 0x-prefixed 20-byte hex address")
  .refine((v) => isAddress(v, { strict: true }), "has an invalid EIP-55 checksum (use all lower case to skip it)");

const hexData = z
  .string()
  .max(4 * 1024 * 1024, "is too large")
  .regex(/^0x([0-9a-fA-F]{2})*$/, "must be 0x-prefixed hex with an even number of digits");

const wei = z
  .string()
  .regex(/^(0|[1-9]\d{0,77})$/, "must be a non-negative integer number of wei, as a decimal string")
  // zod runs this even after the regex failed, so it re-checks the shape before BigInt().
  .refine((v) => !/^\d+$/.test(v) || BigInt(v) <= MAX_UINT256, "is larger than 2^256-1");

const bytes32 = z.string().regex(/^0x[0-9a-fA-F]{64}$/, "must be a 0x-prefixed 32-byte hex value");

// EIP-2930 access list entry, in the API's snake_case.
const accessListEntry = z.strictObject({ address, storage_keys: z.array(bytes32).max(64) });

// EIP-7702 authorization: the delegate and, optionally, its chain id and nonce. The service signs each
// with the transaction's own key (see src/pipeline/eip7702.ts for the rules that apply to them).
const authorizationEntry = z.strictObject({
  address,
  chain_id: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
  nonce: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
});

const majorValue = z
  .string()
  .refine(
    (v) => parseMajor(v) !== undefined,
    'must be a non-negative decimal string in the native unit with at most 18 decimals (e.g. "0.5")',
  );

export const TransactionRequestSchema = z
  .strictObject({
    to: address,
    value: majorValue,
    chain: chainRef,
    data: hexData.optional(),
    signing_key_path: signingKeyPath.optional(),
    // EIP-2681 allows up to 2^64 - 1; no key of this service gets near 2^32, and larger values are refused
    // here rather than in the signer. Which nonces are accepted at all: src/pipeline/nonce.ts.
    nonce: z.number().int().min(0).max(MAX_EXPLICIT_NONCE).optional(),
    gas_limit: z.number().int().min(21_000).max(1_000_000_000).optional(),
    gas_price: wei.optional(),
    max_fee_per_gas: wei.optional(),
    max_priority_fee_per_gas: wei.optional(),
    simulate_first: z.boolean().optional(),
    mode: z.literal("eoa", { error: "only 'eoa' is supported" }).optional(),
    gasless: z.literal(false, { error: "gasless transactions are not supported" }).optional(),
    // EIP-2718 type: 0 legacy, 1 access list (EIP-2930), 2 EIP-1559, 4 set-code (EIP-7702). Default: 2
    // where the chain supports EIP-1559, else 0, or as the fee fields say.
    tx_type: z
      .number()
      .int()
      .refine((v) => v !== 3, "blob transactions (type 3) are not supported")
      .refine((v) => v === 3 || [0, 1, 2, 4].includes(v), "must be 0, 1, 2 or 4")
      .optional(),
    access_list: z.array(accessListEntry).max(64).optional(),
    authorization_list: z.array(authorizationEntry).min(1).max(8).optional(),
    // A resubmission of a request held for approval: answered from the approval (src/approvals/gate.ts).
    approval_id: z
      .uuid()
      .optional()
      .describe(
        "The pending_approval_id of a 202: returns the approved request's result (never signs again), 202 while it waits, 409 once it was rejected, expired, cancelled or failed",
      ),
    ...Object.fromEntries(UNSUPPORTED_FIELDS.map((k) => [k, z.never({ error: "is not supported for EVM transactions" }).optional()])),
  })
  .superRefine((r, ctx) => {
    // Runs even when a field already failed its own check: read amounts defensively.
    const big = (v: string | undefined) => (v !== undefined && /^\d{1,78}$/.test(v) ? BigInt(v) : undefined);
    if (r.gas_price !== undefined && (r.max_fee_per_gas !== undefined || r.max_priority_fee_per_gas !== undefined)) {
      ctx.addIssue({ code: "custom", path: ["gas_price"], message: "cannot be combined with max_fee_per_gas / max_priority_fee_per_gas" });
    }
    if ((r.max_fee_per_gas === undefined) !== (r.max_priority_fee_per_gas === undefined)) {
      ctx.addIssue({
        code: "custom",
        path: [r.max_fee_per_gas === undefined ? "max_fee_per_gas" : "max_priority_fee_per_gas"],
        message: "max_fee_per_gas and max_priority_fee_per_gas go together",
      });
    }
    const legacyType = r.tx_type === 0 || r.tx_type === 1;
    if (legacyType && r.max_fee_per_gas !== undefined) {
      ctx.addIssue({ code: "custom", path: ["max_fee_per_gas"], message: `cannot be used with tx_type ${r.tx_type} (use gas_price)` });
    }
    if ((r.tx_type === 2 || r.tx_type === 4) && r.gas_price !== undefined) {
      ctx.addIssue({ code: "custom", path: ["gas_price"], message: `cannot be used with tx_type ${r.tx_type} (use max_fee_per_gas)` });
    }
    if (r.access_list !== undefined && r.tx_type === 0) {
      ctx.addIssue({ code: "custom", path: ["access_list"], message: "needs tx_type 1, 2 or 4" });
    }
    if (r.authorization_list !== undefined && r.tx_type !== undefined && r.tx_type !== 4) {
      ctx.addIssue({ code: "custom", path: ["authorization_list"], message: "needs tx_type 4" });
    }
    if (r.tx_type === 4 && r.authorization_list === undefined) {
      ctx.addIssue({ code: "custom", path: ["authorization_list"], message: "is required for tx_type 4" });
    }
    if (r.authorization_list !== undefined && r.gas_price !== undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["gas_price"],
        message: "cannot be used with an authorization_list (type 4 uses max_fee_per_gas)",
      });
    }
    // An authorization's nonce is the key's account nonce when it is processed: the transaction's own
    // nonce + 1 + its position. The service picks it; a caller may only state the same value.
    r.authorization_list?.forEach((a, i) => {
      if (a.nonce === undefined) return;
      if (r.nonce === undefined) {
        ctx.addIssue({
          code: "custom",
          path: ["authorization_list", i, "nonce"],
          message: "is chosen by the service (the transaction's nonce + 1 + position); omit it",
        });
      } else if (a.nonce !== r.nonce + 1 + i) {
        ctx.addIssue({
          code: "custom",
          path: ["authorization_list", i, "nonce"],
          message: `must be ${r.nonce + 1 + i} (the transaction's nonce + 1 + position)`,
        });
      }
    });
    const maxFee = big(r.max_fee_per_gas);
    const tip = big(r.max_priority_fee_per_gas);
    if (maxFee !== undefined && tip !== undefined && tip > maxFee) {
      ctx.addIssue({ code: "custom", path: ["max_priority_fee_per_gas"], message: "must not exceed max_fee_per_gas" });
    }
  });

export type TransactionRequestBody = z.input<typeof TransactionRequestSchema>;
export type TransactionRequest = z.output<typeof TransactionRequestSchema>;

// The wire shape of a transaction: built by the pipeline, whose stored answers are replayed byte for byte.
export type { TransactionResponse } from "../../pipeline/response.js";

// Simulation: POST …/transactions/simulate and …/simulate-bundle.

const F = TransactionRequestSchema.shape;

/** The reference SimulateTransactionRequest, with the submit request's own field rules. */
export const SimulateTransactionRequestSchema = z.strictObject({
  to: F.to,
  value: F.value,
  chain: F.chain,
  data: F.data,
  signing_key_path: F.signing_key_path,
  gas_limit: F.gas_limit,
});
export type SimulateTransactionRequest = z.output<typeof SimulateTransactionRequestSchema>;

export const MAX_BUNDLE = 20;

export const SimulateBundleRequestSchema = z.strictObject({
  transactions: z
    .array(SimulateTransactionRequestSchema)
    .min(1, "must hold at least one transaction")
    .max(MAX_BUNDLE, `may hold at most ${MAX_BUNDLE} transactions`),
});

export const BalanceChangeSchema = z.object({
  address: z.string(),
  token: z.string(),
  token_symbol: z.string(),
  before: z.string().optional(),
  after: z.string().optional(),
  change: z.string(),
});

export const SimulationResponseSchema = z.object({
  simulation_id: z.string(),
  status: z.enum(["success", "reverted", "error"]),
  gas_used: z.number().int(),
  balance_changes: z.array(BalanceChangeSchema),
  revert_reason: z.string().optional(),
  error: z.string().optional(),
  tenderly_dashboard_url: z.string().optional(),
  simulated_at: z.string(),
});
export type SimulationResponse = z.infer<typeof SimulationResponseSchema>;

export const BundleSimulationResponseSchema = z.object({ simulations: z.array(SimulationResponseSchema) });
export type BundleSimulationResponse = z.infer<typeof BundleSimulationResponseSchema>;

// Route parameters and the transaction list query.
export const AgentParams = z.object({ agent_id: z.string() });

export const TxParams = z.object({ agent_id: z.string(), tx_id: z.string() });

export const ListQuery = z.object({
  status: z.enum(TX_STATUSES).optional(),
  chain: z.string().max(64).optional(),
  chain_status: z.enum(CHAIN_STATUSES).optional(),
  ...period,
  ...page,
  include_signed_tx: z.string().optional(),
});
export type ListQuery = z.infer<typeof ListQuery>;

/** The optional Idempotency-Key header of submit, sign and sign-intent. */
export const IdempotencyHeaders = z.object({ "idempotency-key": z.string().optional() });

/** `?include_signed_tx=`: only "true" and "1" include the raw signed transaction. */
export const SignedTxQuery = z.object({ include_signed_tx: z.string().optional() });
