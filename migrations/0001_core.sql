-- Core schema: operators, agents and their credentials, chains, signing keys, nonces, transactions,
-- idempotency records and the audit log. Amounts are wei in numeric(78,0) (fits 2^256).

CREATE TABLE operator_keys (
  id          uuid PRIMARY KEY,
  name        text NOT NULL,
  key_hash    bytea NOT NULL UNIQUE,          -- sha256 of the whole key; the key itself is never stored
  key_prefix  text NOT NULL,                  -- first characters, to tell keys apart in listings
  created_at  timestamptz NOT NULL DEFAULT now(),
  revoked_at  timestamptz
);

CREATE TABLE agents (
  id                     uuid PRIMARY KEY,
  name                   text NOT NULL,
  description            text,
  scopes                 text[] NOT NULL DEFAULT '{}',
  is_active              boolean NOT NULL DEFAULT true,
  intents_api_enabled    boolean NOT NULL DEFAULT false,
  api_key_hash           bytea NOT NULL UNIQUE,
  api_key_expires_at     timestamptz,
  token_ttl_seconds      integer,
  -- Tokens issued before this instant are refused: set on key rotation.
  tokens_valid_after     timestamptz NOT NULL DEFAULT now(),
  tx_to_allowlist        text[] NOT NULL DEFAULT '{}',   -- lower-case addresses; empty = any
  tx_max_value_wei       numeric(78,0),
  tx_daily_limit_wei     numeric(78,0),
  tx_max_per_day         integer,
  tx_allowed_chains      text[] NOT NULL DEFAULT '{}',   -- chain names; empty = any enabled chain
  tx_token_allowlist     text[] NOT NULL DEFAULT '{}',
  simulate_required      boolean NOT NULL DEFAULT false,
  expires_at             timestamptz,
  last_active_at         timestamptz,
  created_at             timestamptz NOT NULL DEFAULT now(),
  updated_at             timestamptz NOT NULL DEFAULT now(),
  deleted_at             timestamptz
);

CREATE TABLE revoked_tokens (
  jti         text PRIMARY KEY,
  agent_id    uuid NOT NULL,
  expires_at  timestamptz NOT NULL
);
CREATE INDEX revoked_tokens_expires ON revoked_tokens (expires_at);

-- The EdDSA key that signs agent JWTs, shared by every replica through the database.
CREATE TABLE jwt_keys (
  kid          text PRIMARY KEY,
  private_jwk  jsonb NOT NULL,
  public_jwk   jsonb NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE chains (
  id               uuid PRIMARY KEY,
  name             text NOT NULL UNIQUE,
  display_name     text NOT NULL,
  chain_id         bigint NOT NULL UNIQUE,
  native_currency  text NOT NULL DEFAULT 'ETH',
  is_testnet       boolean NOT NULL DEFAULT false,
  is_enabled       boolean NOT NULL DEFAULT true,
  rpc_urls         text[] NOT NULL DEFAULT '{}',
  ws_url           text,
  explorer_url     text,
  eip1559          boolean NOT NULL DEFAULT true,
  confirmations    integer NOT NULL DEFAULT 1,
  aliases          text[] NOT NULL DEFAULT '{}',
  -- 'file': kept in step with chains.json at each start; 'admin': changed through /v1/admin/chains,
  -- after which the file no longer overwrites it.
  managed_by       text NOT NULL DEFAULT 'file' CHECK (managed_by IN ('file', 'admin')),
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now()
);

-- Chains an operator deleted: seeding from chains.json skips them; creating one again clears it.
CREATE TABLE deleted_chains (
  name        text PRIMARY KEY,
  deleted_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE signing_keys (
  id          uuid PRIMARY KEY,
  path        text NOT NULL UNIQUE,              -- the HSM object label
  address     text NOT NULL,                     -- lower-case 0x address
  public_key  text NOT NULL,                     -- 0x04… uncompressed point
  chain       text,
  agent_id    uuid,
  is_active   boolean NOT NULL DEFAULT true,
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX signing_keys_agent ON signing_keys (agent_id);

-- One row per (chain, signing address): the next nonce to hand out. Locked FOR UPDATE by every
-- allocation, so concurrent submits on any replica get distinct, consecutive nonces.
CREATE TABLE nonces (
  chain_id    bigint NOT NULL,
  address     text NOT NULL,
  next_nonce  bigint NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (chain_id, address)
);

-- Nonces whose transaction never reached a node: the next allocation takes the lowest one first.
CREATE TABLE released_nonces (
  chain_id     bigint NOT NULL,
  address      text NOT NULL,
  nonce        bigint NOT NULL,
  released_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (chain_id, address, nonce)
);

-- One row per agent: locked FOR UPDATE while its rolling limits are checked and its spend recorded,
-- so concurrent submits of the same agent see each other's spend.
CREATE TABLE agent_spend_locks (
  agent_id  uuid PRIMARY KEY
);

CREATE TABLE transactions (
  id                        uuid PRIMARY KEY,
  agent_id                  uuid NOT NULL,
  chain                     text NOT NULL,
  chain_id                  bigint NOT NULL,
  from_address              text NOT NULL,
  to_address                text NOT NULL,
  value_wei                 numeric(78,0) NOT NULL,
  data                      text,
  nonce                     bigint,
  gas_limit                 bigint,
  gas_price                 numeric(78,0),
  max_fee_per_gas           numeric(78,0),
  max_priority_fee_per_gas  numeric(78,0),
  tx_type                   text,
  signing_key_path          text NOT NULL,
  status                    text NOT NULL CHECK (status IN ('pending','signed','sign_only','broadcast','failed','simulation_failed')),
  tx_hash                   text,
  signed_tx                 text,
  error_message             text,
  simulation_id             text,
  simulation_status         text,
  chain_status              text CHECK (chain_status IN ('unconfirmed','confirmed','reverted','replaced','dropped')),
  block_number              bigint,
  block_hash                text,
  confirmations             integer NOT NULL DEFAULT 0,
  replaced_by               text,
  broadcast_attempts        integer NOT NULL DEFAULT 0,
  last_broadcast_at         timestamptz,
  counts_toward_limits      boolean NOT NULL DEFAULT true,
  created_at                timestamptz NOT NULL DEFAULT now(),
  signed_at                 timestamptz,
  updated_at                timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX transactions_agent_created ON transactions (agent_id, created_at DESC, id DESC);
CREATE INDEX transactions_created ON transactions (created_at DESC, id DESC);
CREATE INDEX transactions_nonce ON transactions (chain_id, from_address, nonce);
CREATE INDEX transactions_spend ON transactions (agent_id, created_at) WHERE status <> 'failed' AND status <> 'simulation_failed';
CREATE INDEX transactions_open ON transactions (chain_id, status) WHERE status IN ('signed', 'broadcast');
CREATE INDEX transactions_hash ON transactions (tx_hash);

-- Idempotency records: the key is stored only as sha256(agent_id || key), with a fingerprint of the
-- request. A row in state 'in_flight' claims the key; 'done' holds the response to replay for 24 h.
CREATE TABLE idempotency_keys (
  agent_id         uuid NOT NULL,
  key_hash         bytea NOT NULL,
  fingerprint      bytea NOT NULL,
  state            text NOT NULL CHECK (state IN ('in_flight', 'done')),
  tx_id            uuid,                   -- set in the same transaction that commits the signed row
  response_status  integer,
  response_body    text,                   -- the exact bytes to replay (jsonb would reorder keys)
  claimed_at       timestamptz NOT NULL DEFAULT now(),
  expires_at       timestamptz NOT NULL,
  PRIMARY KEY (agent_id, key_hash)
);
CREATE INDEX idempotency_expires ON idempotency_keys (expires_at);

CREATE TABLE audit_events (
  seq            bigserial PRIMARY KEY,
  id             uuid NOT NULL UNIQUE,
  action         text NOT NULL,
  actor_type     text NOT NULL,
  actor_id       text,
  resource_type  text,
  resource_id    text,
  details        jsonb NOT NULL DEFAULT '{}',
  request_id     text,
  ip_address     text,
  created_at     timestamptz NOT NULL DEFAULT now(),
  prev_hash      text,
  hash           text
);
CREATE INDEX audit_events_action ON audit_events (action, seq);
CREATE INDEX audit_events_resource ON audit_events (resource_id, seq);
CREATE INDEX audit_events_created ON audit_events (created_at);
