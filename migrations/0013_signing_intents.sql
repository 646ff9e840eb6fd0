-- Signing intents (POST /v1/agents/{agent_id}/sign): messages, EIP-712 typed data, bare digests and
-- transactions of types 0, 1, 2 and 4, under the agent's guardrails.
ALTER TABLE agents
  -- Typed data the service cannot decode into a known meaning: 'allow' or 'deny'. NULL: deny when the
  -- agent has recipient or token rules (tx_to_allowlist, tx_token_allowlist, tx_token_limits), else allow.
  ADD COLUMN typed_data_unknown text CHECK (typed_data_unknown IN ('allow', 'deny')),
  -- SIWE (EIP-4361) domains the agent may sign in to; empty = any.
  ADD COLUMN siwe_domain_allowlist text[] NOT NULL DEFAULT '{}',
  -- EIP-712 domain verifyingContract values the agent may sign for (lower-case); empty = any.
  ADD COLUMN verifying_contract_allowlist text[] NOT NULL DEFAULT '{}',
  -- eip712_digest and opaque personal_sign payloads (blind signing): off unless the operator turns it on.
  ADD COLUMN raw_signing_enabled boolean NOT NULL DEFAULT false,
  -- EIP-7702 delegates an authorization may name (lower-case); empty = none.
  ADD COLUMN eip7702_delegate_allowlist text[] NOT NULL DEFAULT '{}',
  -- An EIP-7702 authorization for chain id 0 is valid on every chain: refused unless this is true.
  ADD COLUMN eip7702_allow_chain_id_zero boolean NOT NULL DEFAULT false,
  -- The longest validity a signature may carry (permit deadline, validBefore, Permit2 expiration, SIWE
  -- expirationTime), in seconds from the moment of signing.
  ADD COLUMN sign_max_validity_seconds integer NOT NULL DEFAULT 3600
    CHECK (sign_max_validity_seconds BETWEEN 60 AND 31536000);

-- Every message, typed-data and digest signature the service produced: what was signed and what it
-- means (decoded), for the operators' history and export. Transactions stay in `transactions`.
CREATE TABLE signatures (
  id                uuid PRIMARY KEY,
  agent_id          uuid NOT NULL,
  intent_type       text NOT NULL CHECK (intent_type IN ('personal_sign', 'typed_data', 'eip712_digest')),
  -- What it is: siwe, message, blind_message, permit, dai_permit, permit2_single, permit2_batch,
  -- permit2_transfer, permit2_batch_transfer, permit2_witness_transfer, transfer_with_authorization,
  -- receive_with_authorization, typed_data_unknown, blind_digest.
  kind              text NOT NULL,
  chain             text NOT NULL,
  chain_id          bigint NOT NULL,
  signer_address    text NOT NULL,
  signing_key_path  text NOT NULL,
  digest            text NOT NULL,          -- the 32-byte hash that was signed
  signature         text NOT NULL,          -- 65-byte r||s||v (v = 27 + yParity)
  meaning           jsonb NOT NULL,         -- decoded: what it authorises, to whom, how much, until when
  valid_until       timestamptz,
  created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX signatures_agent_created ON signatures (agent_id, created_at DESC, id DESC);
CREATE INDEX signatures_created ON signatures (created_at DESC, id DESC);

-- token_spend.tx_id also holds a signatures.id: a signed permit or payment authorisation counts in the
-- agent's rolling per-token limits as a transfer does.
COMMENT ON COLUMN token_spend.tx_id IS 'transactions.id, or signatures.id for a typed-data signature';

-- Webhook endpoints may subscribe to signatures.
ALTER TABLE webhook_endpoints DROP CONSTRAINT webhook_endpoints_events_check;
ALTER TABLE webhook_endpoints ADD CONSTRAINT webhook_endpoints_events_check CHECK (
  cardinality(events) > 0 AND events <@ ARRAY['agent.transaction.signed', 'agent.transaction.broadcast',
                                              'agent.transaction.confirmed', 'agent.transaction.failed',
                                              'signing_key.nonce_gap_alert', 'agent.signature.created']::text[]);
