-- Nonce reservation in one round trip. Called inside the submit transaction; it locks the
-- (chain, address) row until that transaction ends, so concurrent submits on any replica get
-- distinct, consecutive nonces. Fewer statements under the lock is more throughput per address.
--   1. A nonce released by a transaction that never reached a node is reused first (lowest first),
--      unless the chain has mined it since (someone else used it).
--   2. Otherwise max(tracked next nonce, the chain's pending count), and the tracker moves past it.
-- p_explicit: the caller chose the nonce (to replace its own transaction); keep tracking ahead of it.
CREATE FUNCTION reserve_nonce(p_chain_id bigint, p_address text, p_latest bigint, p_pending bigint, p_explicit bigint)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  tracked bigint;
  chosen bigint;
BEGIN
  INSERT INTO nonces (chain_id, address, next_nonce) VALUES (p_chain_id, p_address, 0)
  ON CONFLICT (chain_id, address) DO UPDATE SET updated_at = now()
  RETURNING next_nonce INTO tracked;

  IF p_explicit IS NOT NULL THEN
    DELETE FROM released_nonces WHERE chain_id = p_chain_id AND address = p_address AND nonce = p_explicit;
    IF p_explicit >= tracked THEN
      UPDATE nonces SET next_nonce = p_explicit + 1 WHERE chain_id = p_chain_id AND address = p_address;
    END IF;
    RETURN p_explicit;
  END IF;

  DELETE FROM released_nonces r
   WHERE (r.chain_id, r.address, r.nonce) = (
     SELECT chain_id, address, nonce FROM released_nonces
      WHERE chain_id = p_chain_id AND address = p_address AND nonce >= p_latest AND nonce < tracked
      ORDER BY nonce LIMIT 1)
  RETURNING r.nonce INTO chosen;
  IF chosen IS NOT NULL THEN
    RETURN chosen;
  END IF;

  chosen := greatest(tracked, p_pending);
  UPDATE nonces SET next_nonce = chosen + 1 WHERE chain_id = p_chain_id AND address = p_address;
  RETURN chosen;
END $$;
