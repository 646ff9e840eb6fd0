-- Webhooks: operator-registered endpoints and a durable outbox of deliveries.
-- The source of events is the audit log (written in the same transaction as each effect). A fan-out
-- pass reads sealed events past each endpoint's cursor (`chain_seq` is assigned in commit-visible
-- order, so a cursor on it never skips a row) and inserts one delivery per (endpoint, event); a
-- delivery pass POSTs due deliveries and records each attempt. Delivery is at-least-once: receivers
-- dedupe on the delivery id (X-Webhook-Id).

CREATE TABLE webhook_endpoints (
  id                uuid PRIMARY KEY,
  url               text NOT NULL,
  description       text,
  -- The HMAC key, needed in clear to sign. Shown once at creation; never returned by any read.
  secret            text NOT NULL,
  events            text[] NOT NULL CHECK (
                      cardinality(events) > 0 AND events <@ ARRAY['agent.transaction.signed', 'agent.transaction.broadcast',
                                                                  'agent.transaction.confirmed', 'agent.transaction.failed']::text[]),
  is_active         boolean NOT NULL DEFAULT true,
  created_by        text,
  created_at        timestamptz NOT NULL DEFAULT now(),
  deactivated_at    timestamptz,
  -- Highest audit_events.chain_seq already fanned out to this endpoint. Set at creation to the head of
  -- the chain, so an endpoint receives only events sealed after it was created.
  cursor_chain_seq  bigint NOT NULL DEFAULT 0
);

CREATE TABLE webhook_deliveries (
  id                uuid PRIMARY KEY,                  -- sent as X-Webhook-Id and the body's `id`
  endpoint_id       uuid NOT NULL REFERENCES webhook_endpoints (id),
  -- audit_events.id (no foreign key: the audit row is immutable, and a key-share lock on it is not wanted)
  audit_event_id    uuid NOT NULL,
  event_type        text NOT NULL,
  payload           jsonb NOT NULL,
  status            text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
  attempts          integer NOT NULL DEFAULT 0,
  -- When the next attempt is due; a claim moves it forward as a lease while the POST is in flight.
  next_attempt_at   timestamptz NOT NULL DEFAULT now(),
  last_attempt_at   timestamptz,
  last_status_code  integer,
  last_error        text,                              -- safe text only: never a URL, body or secret
  created_at        timestamptz NOT NULL DEFAULT now(),
  delivered_at      timestamptz,
  -- Fan-out is idempotent: an event reaches an endpoint's outbox at most once.
  UNIQUE (endpoint_id, audit_event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, created_at DESC);
-- The claim walks each active endpoint's due deliveries.
CREATE INDEX webhook_deliveries_endpoint_pending ON webhook_deliveries (endpoint_id, next_attempt_at) WHERE status = 'pending';
