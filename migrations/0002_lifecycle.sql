-- Transaction lifecycle: every signed attempt of a transaction (the first signature, the tracker's fee
-- bumps, operators' speed-ups and cancels), and the tracker's leases on the rows it follows.

-- One row per signature. A transaction keeps its id across replacements; its attempts are its hash
-- history. Statuses:
--   signed    committed, no node has acknowledged it yet (sent after commit; resent by the tracker)
--   sent      a node accepted it, or already knew it
--   replaced  a later attempt for the same nonce was accepted (replaced_by names it), or mined instead
--   mined     its receipt is on the canonical chain
--   failed    a node rejected it (error_message says why)
--   dropped   it can no longer be mined: another transaction took its nonce
CREATE TABLE transaction_attempts (
  id                        bigserial PRIMARY KEY,
  tx_id                     uuid NOT NULL REFERENCES transactions (id) ON DELETE CASCADE,
  kind                      text NOT NULL CHECK (kind IN ('original', 'bump', 'speed_up', 'cancel')),
  tx_hash                   text NOT NULL UNIQUE,
  signed_tx                 text NOT NULL,
  to_address                text NOT NULL,
  value_wei                 numeric(78,0) NOT NULL,
  gas_limit                 bigint,
  gas_price                 numeric(78,0),
  max_fee_per_gas           numeric(78,0),
  max_priority_fee_per_gas  numeric(78,0),
  status                    text NOT NULL CHECK (status IN ('signed', 'sent', 'replaced', 'mined', 'failed', 'dropped')),
  replaced_by               text,
  error_message             text,
  send_count                integer NOT NULL DEFAULT 0,
  last_sent_at              timestamptz,
  created_at                timestamptz NOT NULL DEFAULT now(),
  updated_at                timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX transaction_attempts_tx ON transaction_attempts (tx_id, id);

-- Leases: a tracker (any replica) or an operator request claims a row by setting these with
-- FOR UPDATE SKIP LOCKED, works on it without holding a database transaction across RPC calls, and
-- fences every write with `lease_owner = me`. A replica that dies loses its leases when they expire.
ALTER TABLE transactions
  ADD COLUMN lease_owner text,
  ADD COLUMN lease_until timestamptz,
  -- When a tracker last claimed the row: claims take the least recently checked first, so a backlog
  -- larger than one batch is worked through round-robin instead of the same batch every pass.
  ADD COLUMN tracker_checked_at timestamptz;

-- The tracker's work list: rows still followed on chain, per chain and address in nonce order.
CREATE INDEX transactions_tracked ON transactions (chain_id, from_address, nonce)
  WHERE status IN ('signed', 'broadcast') AND (chain_status IS NULL OR chain_status = 'unconfirmed');

-- Gap repair looks for nonces released longer ago than its bound.
CREATE INDEX released_nonces_age ON released_nonces (chain_id, released_at);
