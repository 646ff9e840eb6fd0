// How a guardrail denial leaves the pipeline: recorded in the audit log (in its own small transaction:
// the denied request itself wrote nothing), counted per rule, and answered with the 403 whose
// `guardrail` member names the rule, the limit, the current and the attempted value.
import type { Principal } from "../auth/principal.js";
import { appendAudit } from "../db/audit.js";
import { guardrailDenied, type ServiceError } from "../errors.js";
import type { Denial } from "./guardrails.js";
import type { PipelineDeps } from "./types.js";

/** The 403 of a denial. */
export function denied(d: Denial): ServiceError {
  const { detail, ...guardrail } = d;
  return guardrailDenied(detail, guardrail);
}

/** Records the denial and builds its 403; a failed audit write is logged, never hides the denial. */
export async function recordDenial(
  deps: Pick<PipelineDeps, "pool" | "log" | "metrics">,
  d: Denial,
  event: {
    action: "transaction.denied" | "signature.denied";
    actor: Extract<Principal, { type: "agent" }>;
    /** What was denied, beside the rule's reason_code. */
    details: Record<string, unknown>;
    requestId?: string;
    ip?: string;
  },
): Promise<ServiceError> {
  await appendAudit(deps.pool, {
    action: event.action,
    actor: event.actor,
    resourceType: "agent",
    resourceId: event.actor.id,
    details: { reason_code: d.reason_code, ...event.details },
    requestId: event.requestId,
    ip: event.ip,
  }).catch((err) => deps.log.error({ err, action: event.action }, "could not record a guardrail denial"));
  deps.metrics.guardrailDenials.inc({ rule: d.reason_code });
  return denied(d);
}
