-- Day-to-day running: operator keys as managed credentials, chain resets, idempotency claims whose
-- owner is known to be alive or dead.

-- Operator keys: when each was last used (listed, never a secret) and an optional expiry.
ALTER TABLE operator_keys
  ADD COLUMN last_used_at timestamptz,
  ADD COLUMN expires_at   timestamptz;

-- A transaction the chain no longer holds because the chain went back (a reset development chain, a
-- restored fork, a replaced node): its nonce is above what the chain has mined, or its block is gone.
ALTER TABLE transactions DROP CONSTRAINT transactions_chain_status_check;
ALTER TABLE transactions ADD CONSTRAINT transactions_chain_status_check
  CHECK (chain_status IN ('unconfirmed','confirmed','reverted','replaced','dropped','chain_reset'));

-- The process that claimed an Idempotency-Key: the key of the session-level advisory lock it holds for
-- its life (src/pipeline/liveness.ts). A claim whose owner's lock is gone belonged to a dead process.
ALTER TABLE idempotency_keys ADD COLUMN owner_key integer;
