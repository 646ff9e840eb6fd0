// Stages 8–9 of the submit pipeline, after a commit group's COMMIT: the broadcast (submit mode) in
// nonce order as one JSON-RPC batch, the outcomes recorded (accepted ones in one statement, the rest
// one by one: a rejection releases its nonce), then the idempotent answers stored and sent. Takes the
// committed requests and their rows; never fails a request. Writes: the rows' broadcast status,
// attempts, audit events, released nonces, idempotency answers.
import { auditRecordset } from "../db/audit.js";
import { markBroadcastGroup } from "../db/transactions.js";
import { broadcastEvent, recordBroadcastOutcome, sendSigned, type BroadcastOutcome } from "./broadcast.js";
import { settleClaims } from "./idempotency.js";
import { toTransactionResponse } from "./response.js";
import type { Committed, PipelineDeps } from "./types.js";

/**
 * 8–9. A committed group: broadcast (submit mode) in nonce order, record the outcomes, store and send
 * the answers. Runs while the next group commits. Never fails a request: its row is committed, so an
 * error here leaves the row `signed` (the tracker resends it) and the answer shows the stored row.
 */
export async function finishGroup(deps: PipelineDeps, committed: Committed[]): Promise<void> {
  const finals = new Map(committed.map((c) => [c.row.id, c.row]));
  const toSend = committed.filter((c) => c.item.input.mode === "submit");
  if (toSend.length > 0) {
    const endBroadcast = deps.metrics.stageDuration.startTimer({ stage: "broadcast" });
    try {
      const chain = toSend[0].item.chain;
      // Sent together, the transport makes them one JSON-RPC batch, in this (nonce) order; and never
      // before the group committed ahead of this one was answered, so a node sees every address's
      // nonces in order (a nonce that arrives before the one below it waits in the node's queue, and
      // anvil's automine leaves it there until some later transaction arrives).
      const outcomes = await deps.commits.inOrder(`broadcast:${chain.chain_id}`, () =>
        Promise.all(toSend.map((c) => sendSigned(deps, chain, c.row.signed_tx!, c.row.tx_hash!))),
      );
      const sent = toSend.filter((_, i) => reachedNode(outcomes[i]));
      if (sent.length > 0) {
        const audit = auditRecordset(sent.map((c) => broadcastEvent(c.row, c.item.input.principal, c.item.input.requestId)));
        for (const row of await markBroadcastGroup(
          deps.pool,
          sent.map((c) => c.row.id),
          sent.map((c) => c.row.tx_hash!),
          audit,
        ))
          finals.set(row.id, row);
      }
      // The rest one by one: a rejection releases its nonce; an unknown outcome stays `signed`.
      for (let i = 0; i < toSend.length; i++) {
        const { item, row } = toSend[i];
        if (reachedNode(outcomes[i])) continue;
        finals.set(
          row.id,
          await recordBroadcastOutcome(deps, row, outcomes[i], {
            requestId: item.input.requestId,
            principal: item.input.principal,
            beforeAnswer: true,
          }),
        );
      }
    } catch (err) {
      deps.log.warn(
        { err: (err as Error)?.message, count: toSend.length },
        "could not record a broadcast outcome; the tracker will resend",
      );
    }
    endBroadcast();
  }

  // 9. The answers, stored for replay unless the transaction failed (failed requests are not cached).
  const answers = committed.map(({ item, row }) => {
    const final = finals.get(row.id)!;
    deps.metrics.submissions.inc({ mode: item.input.mode, status: final.status });
    return {
      item,
      final,
      status: item.input.mode === "sign" ? 200 : 201,
      body: JSON.stringify(toTransactionResponse(final, { includeSignedTx: true })),
    };
  });
  await settleClaims(
    deps.pool,
    answers
      .filter((a) => a.item.claim && a.final.status !== "failed")
      .map((a) => ({ claim: a.item.claim!, status: a.status, body: a.body })),
    answers.filter((a) => a.item.claim && a.final.status === "failed").map((a) => a.item.claim!),
  ).catch((err) =>
    deps.log.warn({ err: (err as Error)?.message }, "could not store idempotent answers; a retry is answered from the stored row"),
  );
  for (const a of answers) a.item.resolve({ status: a.status, body: a.body });
}

/** The node has the transaction: recorded together (markBroadcastGroup); other outcomes one by one. */
const reachedNode = (o: BroadcastOutcome) => o.kind === "accepted" || o.kind === "already_known";
