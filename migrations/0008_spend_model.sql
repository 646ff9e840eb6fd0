-- One spend model: every signature that leaves the service costs its worst case,
-- value + gas_limit × max fee per gas (or gas price), and fees are counted under their own limits.

-- Per-agent fee limits, on by default (NULL = no limit, set by an operator on purpose):
--   tx_max_fee_wei           worst-case fee of one transaction (gas_limit × max fee), default 0.01
--   tx_daily_fee_budget_wei  worst-case fees signed in a rolling 24 h, default 0.1
--   tx_max_gas_limit         an explicit gas_limit may go up to this instead of the estimate + 50 %
ALTER TABLE agents
  ADD COLUMN tx_max_fee_wei numeric(78,0) DEFAULT 10000000000000000,
  ADD COLUMN tx_daily_fee_budget_wei numeric(78,0) DEFAULT 100000000000000000,
  ADD COLUMN tx_max_gas_limit bigint;

-- fee_wei: the largest worst-case fee of any signature made for this row (its first signature, fee
-- bumps, speed-ups, cancels); only one of them can be mined, so the largest is what it can cost.
-- signed_tx_disclosed: the signed bytes were handed to a client. Such a row keeps counting toward the
-- agent's limits even when a node later refuses it: the client still holds a signature that may
-- become valid. A refused row whose bytes never left the service stops counting.
ALTER TABLE transactions
  ADD COLUMN fee_wei numeric(78,0) NOT NULL DEFAULT 0,
  ADD COLUMN signed_tx_disclosed boolean NOT NULL DEFAULT false;
UPDATE transactions SET fee_wei = coalesce(gas_limit, 0) * coalesce(max_fee_per_gas, gas_price, 0);
-- Rows that were answered with their bytes before this migration: anything but a node's refusal.
UPDATE transactions SET signed_tx_disclosed = true WHERE status IN ('signed', 'sign_only', 'broadcast');

-- The rolling sums (db/agents.ts spendToday) now also count refused rows whose bytes were handed out,
-- which this partial index leaves out; they read transactions_agent_created instead. Dropped so the
-- hot path's inserts maintain no more indexes than before.
DROP INDEX transactions_spend;

-- Per-chain fee bounds (NULL: the service-wide defaults, MAX_FEE_PER_GAS_CAP_GWEI and
-- BASE_FEE_MULTIPLE): a signed max fee per gas (or gas price) is at most the cap, and at most this
-- multiple of the chain's current price (base fee + tip, or gas price).
ALTER TABLE chains
  ADD COLUMN max_fee_per_gas_gwei numeric,
  ADD COLUMN base_fee_multiple numeric;

-- Webhook endpoints may subscribe to the tracker's nonce-gap alert (src/tracker/gaps.ts).
ALTER TABLE webhook_endpoints DROP CONSTRAINT webhook_endpoints_events_check;
ALTER TABLE webhook_endpoints ADD CONSTRAINT webhook_endpoints_events_check CHECK (
  cardinality(events) > 0 AND events <@ ARRAY['agent.transaction.signed', 'agent.transaction.broadcast',
                                              'agent.transaction.confirmed', 'agent.transaction.failed',
                                              'signing_key.nonce_gap_alert']::text[]);
