-- DPoP proofs seen (RFC 9449 §11.1): a proof's (key thumbprint, jti) is accepted once across every
-- replica; the row lives until the proof's iat window has passed, then the next sweep deletes it.
CREATE TABLE dpop_proofs (
  jkt         text NOT NULL,
  jti         text NOT NULL,
  expires_at  timestamptz NOT NULL,
  PRIMARY KEY (jkt, jti)
);
CREATE INDEX dpop_proofs_expires ON dpop_proofs (expires_at);

-- Operator access tokens (POST /v1/auth/api-key-token) can be revoked too; their jti is recorded here
-- with no agent.
ALTER TABLE revoked_tokens ALTER COLUMN agent_id DROP NOT NULL;

-- The organization id this installation reports (`org_id` in GET /v1/agents/me): a self-hosted
-- service is one organization; the id is random per installation and never changes.
CREATE TABLE installation (
  singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  org_id     uuid NOT NULL DEFAULT gen_random_uuid()
);
INSERT INTO installation DEFAULT VALUES;
