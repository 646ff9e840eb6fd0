-- Signing keys are granted, not guessed. An agent signs with its own keys (path agents/{id}/… or a key
-- created with its agent_id), with the chain's shared signer keys/{chain}-signer unless its operator
-- turned that off, and with keys an operator granted to it here. Nothing else.
CREATE TABLE signing_key_grants (
  key_id      uuid NOT NULL REFERENCES signing_keys (id) ON DELETE CASCADE,
  agent_id    uuid NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
  granted_by  text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (key_id, agent_id)
);
CREATE INDEX signing_key_grants_agent ON signing_key_grants (agent_id);

ALTER TABLE agents
  -- false: this agent may not sign with the shared keys/{chain}-signer (its own or granted keys only).
  ADD COLUMN shared_signer boolean NOT NULL DEFAULT true;

-- tx_unknown_calldata: NULL now means "the default": deny when the agent has recipient or token rules,
-- allow otherwise. The old column default 'allow' cannot be told from an explicit 'allow', so stored
-- 'allow' values become the default: for an agent with rules that is the safer answer.
ALTER TABLE agents ALTER COLUMN tx_unknown_calldata DROP NOT NULL, ALTER COLUMN tx_unknown_calldata DROP DEFAULT;
UPDATE agents SET tx_unknown_calldata = NULL WHERE tx_unknown_calldata = 'allow';
