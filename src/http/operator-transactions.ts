// Operators act on a pending transaction by id: speed it up (the same transaction, re-signed with the
// same nonce and fees ≥ +10%) or cancel it (a zero-value transfer to the sender itself with the same
// nonce and bumped fees). Both keep the transaction's id and add a signed attempt to its hash
// history, which GET …/attempts lists. The tracker does the work (src/tracker/replace.ts).
import { requireOperator } from "../auth/principal.js";
import type { Pool } from "../db/pool.js";
import { getTransaction } from "../db/transactions.js";
import { notFound, trackerNotAvailable } from "../errors.js";
import { toTransactionResponse } from "../pipeline/response.js";
import { attemptsOrOriginal, listAttempts, type AttemptRow } from "../db/attempts.js";
import type { Tracker } from "../tracker/tracker.js";
import type { App } from "./types.js";
import { UUID } from "../uuid.js";
import { TxParams } from "./schemas/operator-transactions.js";

function txId(raw: string): string {
  if (!UUID.test(raw)) throw notFound("Transaction not found.");
  return raw.toLowerCase();
}

export function attemptResponse(a: AttemptRow) {
  return {
    tx_hash: a.tx_hash,
    kind: a.kind,
    status: a.status,
    to: a.to_address,
    value_wei: a.value_wei,
    ...(a.gas_limit !== null ? { gas_limit: Number(a.gas_limit) } : {}),
    ...(a.gas_price !== null ? { gas_price: a.gas_price } : {}),
    ...(a.max_fee_per_gas !== null ? { max_fee_per_gas: a.max_fee_per_gas } : {}),
    ...(a.max_priority_fee_per_gas !== null ? { max_priority_fee_per_gas: a.max_priority_fee_per_gas } : {}),
    ...(a.replaced_by !== null ? { replaced_by: a.replaced_by } : {}),
    ...(a.error_message !== null ? { error_message: a.error_message } : {}),
    send_count: a.send_count,
    ...(a.last_sent_at ? { last_sent_at: a.last_sent_at.toISOString() } : {}),
    created_at: a.created_at.toISOString(),
  };
}

export async function operatorTransactionRoutes(app: App, deps: { pool: Pool; tracker?: Tracker }): Promise<void> {
  const tracker = () => {
    if (!deps.tracker) throw trackerNotAvailable();
    return deps.tracker;
  };

  for (const kind of ["speed_up", "cancel"] as const) {
    app.post(
      `/v1/transactions/:tx_id/${kind === "speed_up" ? "speed-up" : "cancel"}`,
      {
        config: { operatorOnly: true },
        schema: {
          tags: ["Transactions"],
          summary:
            kind === "speed_up"
              ? "Replace a pending transaction with the same one at higher fees (operators)"
              : "Cancel a pending transaction: a zero-value self-transfer takes its nonce at higher fees (operators)",
          params: TxParams,
        },
      },
      async (req) => {
        const op = requireOperator(req);
        const r = await tracker().replace(txId(req.params.tx_id), kind, op, req.id);
        return {
          transaction: toTransactionResponse(r.row, { includeSignedTx: false }),
          attempt: attemptResponse(r.attempt),
          result: r.result,
        };
      },
    );
  }

  app.get(
    "/v1/transactions/:tx_id/attempts",
    {
      config: { operatorOnly: true },
      schema: {
        tags: ["Transactions"],
        summary: "Every signed attempt of a transaction, oldest first: its hash history (operators)",
        params: TxParams,
      },
    },
    async (req) => {
      requireOperator(req);
      const id = txId(req.params.tx_id);
      const row = await getTransaction(deps.pool, id);
      if (!row) throw notFound("Transaction not found.");
      return { transaction_id: id, attempts: attemptsOrOriginal(row, await listAttempts(deps.pool, id)).map(attemptResponse) };
    },
  );
}
