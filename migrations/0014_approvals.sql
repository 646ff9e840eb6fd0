-- Human approvals: what an agent's approval rules hold back waits for operators (a quorum of
-- operator keys) instead of failing, and is then executed once through the normal pipeline.
ALTER TABLE agents
  -- The agent's approval rules (src/approvals/rules.ts); NULL: none, nothing is held back.
  ADD COLUMN approval_rules jsonb;

CREATE TABLE pending_approvals (
  id                 uuid PRIMARY KEY,
  agent_id           uuid NOT NULL,
  -- Which entry point executes it: transaction.submit, transaction.sign (sign-only) or sign_intent.
  action             text NOT NULL CHECK (action IN ('transaction.submit', 'transaction.sign', 'sign_intent')),
  action_payload     jsonb NOT NULL,        -- the request body as the agent sent it (approval_id removed)
  payload_hash       text NOT NULL,         -- sha256 of the canonical {action, body}; votes are bound to it
  reasons            jsonb NOT NULL,        -- the rules that matched
  -- Addresses not in the agent's allowlists that the rules turned into this approval: allowed for this
  -- execution only (tx_to_allowlist, eip7702_delegate_allowlist).
  held_addresses     text[] NOT NULL DEFAULT '{}',
  held_delegates     text[] NOT NULL DEFAULT '{}',
  summary            jsonb NOT NULL,        -- decoded: chain, from, to, amounts, fees, balance changes
  chain              text NOT NULL,
  chain_id           bigint NOT NULL,
  status             text NOT NULL CHECK (status IN ('pending', 'executing', 'executed', 'failed', 'rejected', 'expired', 'cancelled')),
  required_approvals integer NOT NULL CHECK (required_approvals BETWEEN 1 AND 20),
  current_approvals  integer NOT NULL DEFAULT 0,
  -- The process executing it (its liveness key): the sweep takes over when that process is gone.
  executor_key       integer,
  result_status      integer,
  result_body        text,
  failure_reason     text,
  expires_at         timestamptz NOT NULL,
  decided_at         timestamptz,
  executed_at        timestamptz,
  created_at         timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX pending_approvals_agent_created ON pending_approvals (agent_id, created_at DESC);
CREATE INDEX pending_approvals_status ON pending_approvals (status, expires_at) WHERE status IN ('pending', 'executing');

-- One vote per operator key per approval (the unique key makes a second vote by the same key a no-op).
CREATE TABLE approval_votes (
  id           uuid PRIMARY KEY,
  approval_id  uuid NOT NULL REFERENCES pending_approvals (id) ON DELETE CASCADE,
  operator_id  text NOT NULL,
  decision     text NOT NULL CHECK (decision IN ('approve', 'reject')),
  reason       text,
  payload_hash text NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  UNIQUE (approval_id, operator_id)
);

ALTER TABLE webhook_endpoints DROP CONSTRAINT webhook_endpoints_events_check;
ALTER TABLE webhook_endpoints ADD CONSTRAINT webhook_endpoints_events_check CHECK (
  cardinality(events) > 0 AND events <@ ARRAY['agent.transaction.signed', 'agent.transaction.broadcast',
                                              'agent.transaction.confirmed', 'agent.transaction.failed',
                                              'signing_key.nonce_gap_alert', 'agent.signature.created',
                                              'approval.requested', 'approval.decided', 'approval.executed',
                                              'approval.expired']::text[]);
