// The submit pipeline's shapes, shared by its stages (./submit.ts tells the order; ./limits.ts,
// ./group-broadcast.ts and ./rows.ts are stages): what it depends on, what it takes and answers, and a
// request on its way through a commit group.
import type { Logger } from "pino";
import type { ApprovalInput } from "../approvals/gate.js";
import type { Principal } from "../auth/principal.js";
import type { ChainClients } from "../chains/clients.js";
import type { Chain, ChainRegistry } from "../chains/registry.js";
import type { Pool } from "../db/pool.js";
import type { TxRow } from "../db/transactions.js";
import type { Metrics } from "../metrics.js";
import type { Signer, SigningKeyInfo } from "../signer/signer.js";
import type { SimulatorRegistry } from "../simulators/index.js";
import type { AddressAdmission } from "./admission.js";
import type { CommitGroups } from "./commit-groups.js";
import type { FeeBounds, Fees } from "./fees.js";
import type { GuardrailPolicy } from "./guardrails.js";
import type { Claim } from "./idempotency.js";
import type { KeyAccessCache } from "./resolve.js";
import type { Intent } from "./request.js";
import type { PassedSimulation } from "./simulate.js";
import type { IncreaseRecheck } from "./token-policy.js";
import type { TokenOutflow } from "./token-guardrails.js";

export interface PipelineDeps {
  pool: Pool;
  signer: Signer;
  chains: ChainRegistry;
  clients: ChainClients;
  log: Logger;
  /** Per signing address: how many submissions may be in flight (load shedding). */
  admission: AddressAdmission;
  /** Signing keys agents were found allowed to use (resolve.ts); without it every request asks the database. */
  keyAccess?: KeyAccessCache;
  /** Per chain: the commit groups and the broadcast order. */
  commits: CommitGroups;
  metrics: Metrics;
  /** Simulators for step 5; without them a submission that needs simulation is refused (503). */
  simulators?: SimulatorRegistry;
  config?: {
    simulateAll?: boolean;
    testCrashAfterCommit?: boolean;
    maxDataBytes?: number;
    /** Fee bounds for chains that set none of their own (MAX_FEE_PER_GAS_CAP_GWEI, BASE_FEE_MULTIPLE). */
    feeBounds?: FeeBounds;
  };
  /** This process's liveness lock: stamped on idempotency claims so retries learn when it died. */
  liveness?: { key: number };
}

export interface SubmitInput {
  principal: Extract<Principal, { type: "agent" }>;
  /** The request, parsed by the route (src/http/intents.ts). */
  intent: Intent;
  /** The body as sent: the idempotency fingerprint and a held approval are of it. */
  body: unknown;
  mode: "submit" | "sign";
  idempotencyKey?: string;
  requestId?: string;
  ip?: string;
  /** Names the operation in the idempotency fingerprint (default: the mode). */
  operation?: string;
  /** The approval this request belongs to (src/approvals/gate.ts); `executing`: the approved run. */
  approval?: ApprovalInput;
}

export interface SubmitResult {
  status: number;
  /** The exact JSON text to send: a replay must be byte-identical to the first answer. */
  body: string;
  /** An answer from a pending approval (202) or an executed approval's stored result. */
  approval?: true;
}

/** A request that passed every check that needs no lock, waiting for its chain's commit group. */
export interface Queued {
  input: SubmitInput;
  intent: Intent;
  policy: GuardrailPolicy;
  chain: Chain;
  key: SigningKeyInfo;
  gas: bigint;
  fees: Fees;
  /** Worst-case fee of the signature: gas × max fee per gas. */
  feeWei: bigint;
  simulation?: PassedSimulation;
  outflows: TokenOutflow[];
  tokenLimited: boolean;
  /** Allowance increases, checked again under the agent's spend lock. */
  recheck?: IncreaseRecheck;
  claim?: Claim;
  queued: () => void;
  resolve: (r: SubmitResult) => void;
  reject: (err: unknown) => void;
}

/** A request whose row is committed: its broadcast and answer are all that is left. */
export interface Committed {
  item: Queued;
  row: TxRow;
}

/** The signing address of a queued request, lower-case: the nonce row's key and the lock order. */
export const fromOf = (item: Queued) => item.key.address.toLowerCase();
