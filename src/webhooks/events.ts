// Webhook event types, and which audit actions produce them. The audit log is the durable source:
// each of these actions is written inside the transaction whose effect it records.
import { createHmac, randomBytes } from "node:crypto";

export const WEBHOOK_EVENT_TYPES = [
  "agent.transaction.signed",
  "agent.transaction.broadcast",
  "agent.transaction.confirmed",
  "agent.transaction.failed",
  "signing_key.nonce_gap_alert",
  "agent.signature.created",
  "approval.requested",
  "approval.decided",
  "approval.executed",
  "approval.expired",
] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];
/** An endpoint registered without `events` gets these: transaction events (signatures are opt-in). */
export const DEFAULT_WEBHOOK_EVENT_TYPES: WebhookEventType[] = WEBHOOK_EVENT_TYPES.filter((t) => t.startsWith("agent.transaction."));

/** Audit action → webhook event type. Actions not listed here are never delivered. */
export const ACTION_TO_EVENT: Readonly<Record<string, WebhookEventType>> = {
  "transaction.submit": "agent.transaction.signed",
  "transaction.sign": "agent.transaction.signed",
  "transaction.broadcast": "agent.transaction.broadcast",
  "transaction.confirmed": "agent.transaction.confirmed",
  "transaction.failed": "agent.transaction.failed",
  "nonce.gap_alert": "signing_key.nonce_gap_alert",
  "signature.create": "agent.signature.created",
  // The chain went back and no longer holds the transaction (tracker/chain-reset.ts): for the client
  // it failed; the payload's chain_status says `chain_reset`.
  "transaction.chain_reset": "agent.transaction.failed",
  // Human approvals (src/approvals): held, decided (approved or rejected), executed (or failed), expired.
  "approval.requested": "approval.requested",
  "approval.decided": "approval.decided",
  "approval.executed": "approval.executed",
  "approval.expired": "approval.expired",
};

/** The audit actions that feed the given event types. */
export function actionsFor(events: readonly string[]): string[] {
  return Object.entries(ACTION_TO_EVENT)
    .filter(([, t]) => events.includes(t))
    .map(([a]) => a);
}

export const WEBHOOK_SECRET_PREFIX = "whsec_";

export function generateWebhookSecret(): string {
  return WEBHOOK_SECRET_PREFIX + randomBytes(32).toString("base64url");
}

/**
 * `sha256=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>`, the key being the whole secret string
 * (prefix included) as UTF-8.
 */
export function signWebhook(secret: string, timestamp: number, body: string): string {
  return "sha256=" + createHmac("sha256", secret).update(`${timestamp}.${body}`, "utf8").digest("hex");
}
