-- Guardrails that read calldata and simulation results: per-token limits, approval caps, the policy
-- for calldata the service cannot decode, and the record of token amounts each agent has sent.
ALTER TABLE agents
  ADD COLUMN tx_unknown_calldata text NOT NULL DEFAULT 'allow' CHECK (tx_unknown_calldata IN ('allow', 'deny', 'simulate')),
  -- { "<token address>": { "max_per_tx": "100", "daily_limit": "1000", "approval_cap": "500" } } in token units
  ADD COLUMN tx_token_limits jsonb NOT NULL DEFAULT '{}',
  -- Spenders that may receive approvals above the cap (e.g. a known router); lower-case addresses.
  ADD COLUMN tx_unlimited_approval_allowlist text[] NOT NULL DEFAULT '{}';

-- Token amounts (base units) moved out of the signing address by each transaction, from its decoded
-- calldata or, when it was simulated, from the simulated balance changes. Written in the submit
-- transaction under the agent's spend lock, so per-token daily limits hold under concurrency.
CREATE TABLE token_spend (
  id          bigserial PRIMARY KEY,
  agent_id    uuid NOT NULL,
  chain_id    bigint NOT NULL,
  token       text NOT NULL,
  amount      numeric(78,0) NOT NULL,
  tx_id       uuid NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX token_spend_agent ON token_spend (agent_id, token, created_at);

-- Token decimals and symbol, read once from the token per chain.
CREATE TABLE token_metadata (
  chain_id  bigint NOT NULL,
  address   text NOT NULL,
  decimals  integer NOT NULL,
  symbol    text,
  PRIMARY KEY (chain_id, address)
);
