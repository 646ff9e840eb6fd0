// Prometheus metrics (prom-client), one registry per process context so that several app instances in
// one process (tests, replicas) never collide. Names follow Prometheus conventions; no label ever
// carries an id, address or secret (bounded cardinality).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { Signer } from "./signer/signer.js";

const FAST = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class Metrics {
  readonly registry = new Registry();
  readonly httpDuration = new Histogram({
    name: "intents_http_request_duration_seconds",
    help: "HTTP request latency by route and status",
    labelNames: ["method", "route", "status"] as const,
    buckets: FAST,
    registers: [this.registry],
  });
  readonly stageDuration = new Histogram({
    name: "intents_submit_stage_duration_seconds",
    help: "Submit pipeline latency per stage (guardrails, chain_read, lock_wait, sign, commit, broadcast)",
    labelNames: ["stage"] as const,
    buckets: FAST,
    registers: [this.registry],
  });
  readonly hsmSignDuration = new Histogram({
    name: "intents_hsm_sign_duration_seconds",
    help: "HSM transaction signing latency",
    buckets: FAST,
    registers: [this.registry],
  });
  readonly hsmErrors = new Counter({
    name: "intents_hsm_errors_total",
    help: "HSM operations that failed, by error code",
    labelNames: ["code"] as const,
    registers: [this.registry],
  });
  readonly guardrailDenials = new Counter({
    name: "intents_guardrail_denials_total",
    help: "Submissions denied by a guardrail, by rule",
    labelNames: ["rule"] as const,
    registers: [this.registry],
  });
  readonly broadcastResults = new Counter({
    name: "intents_broadcast_results_total",
    help: "Broadcast outcomes by class (accepted, already_known, nonce_used, rejected, unknown)",
    labelNames: ["chain", "outcome"] as const,
    registers: [this.registry],
  });
  readonly nonceGapAlerts = new Counter({
    name: "intents_nonce_gap_alerts_total",
    help: "Nonce gaps the tracker did not fill because the key's gap-fill bound was reached (GAP_FILLS_PER_KEY_PER_DAY)",
    labelNames: ["chain"] as const,
    registers: [this.registry],
  });
  readonly submissions = new Counter({
    name: "intents_submissions_total",
    help: "Transaction requests by mode and result status",
    labelNames: ["mode", "status"] as const,
    registers: [this.registry],
  });
  readonly chainResets = new Counter({
    name: "intents_chain_resets_total",
    help: "Chains found to have gone back (a signing address's nonce or a confirmed block lost), per chain",
    labelNames: ["chain"] as const,
    registers: [this.registry],
  });
  // Human approvals (src/approvals): how many wait, how long operators take to decide.
  readonly approvalsRequested = new Counter({
    name: "intents_approvals_requested_total",
    help: "Requests held for operator approval, per action",
    labelNames: ["action"] as const,
    registers: [this.registry],
  });
  readonly approvalsPending = new Gauge({
    name: "intents_approvals_pending",
    help: "Approvals waiting for operators (read from the database by the approvals sweep)",
    registers: [this.registry],
  });
  readonly approvalDecisionSeconds = new Histogram({
    name: "intents_approval_decision_seconds",
    help: "Time from an approval's request to its decision, per outcome (approved, rejected, expired)",
    labelNames: ["outcome"] as const,
    buckets: [1, 10, 60, 300, 900, 1800, 3600, 7200, 86400],
    registers: [this.registry],
  });
  readonly approvalExecutions = new Counter({
    name: "intents_approval_executions_total",
    help: "Approved requests executed, per result (executed, failed)",
    labelNames: ["result"] as const,
    registers: [this.registry],
  });
  readonly trackerLag = new Gauge({
    name: "intents_tracker_lag_seconds",
    help: "Age of the oldest transaction the tracker is still following, per chain",
    labelNames: ["chain"] as const,
    registers: [this.registry],
  });

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: "intents_" });
  }

  /** Times `fn` under the given pipeline stage. */
  async time<T>(stage: string, fn: () => Promise<T>): Promise<T> {
    const end = this.stageDuration.startTimer({ stage });
    try {
      return await fn();
    } finally {
      end();
    }
  }
}

/** The signer with its signing latency and errors recorded; everything else passes through. */
export function instrumentSigner(signer: Signer, metrics: Metrics): Signer {
  return new Proxy(signer, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (prop !== "signTransaction" && prop !== "signDigest") return typeof value === "function" ? value.bind(target) : value;
      return async (...args: unknown[]) => {
        const end = metrics.hsmSignDuration.startTimer();
        try {
          return await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
        } catch (err) {
          metrics.hsmErrors.inc({ code: (err as { code?: string }).code ?? "error" });
          throw err;
        } finally {
          end();
        }
      };
    },
  });
}
