-- Nonces for a group of submissions on one (chain, address) in one round trip. The submit pipeline
-- commits the submissions that queue up behind a running commit as one group (one lock, one COMMIT),
-- so it needs `p_count` nonces at once, by the same rules as reserve_nonce (0006):
--   1. nonces released by transactions that never reached a node first, lowest first, unless the
--      chain has mined past them;
--   2. then consecutive nonces from max(tracked next nonce, the chain's pending count).
-- Returned in ascending order. Locks the (chain, address) row until the caller's transaction ends.
CREATE FUNCTION reserve_nonces(p_chain_id bigint, p_address text, p_latest bigint, p_pending bigint, p_count integer)
RETURNS bigint[] LANGUAGE plpgsql AS $$
DECLARE
  tracked bigint;
  reused bigint[];
  fresh integer;
  first bigint;
BEGIN
  IF p_count < 1 THEN
    RAISE EXCEPTION 'reserve_nonces: p_count must be positive, got %', p_count;
  END IF;

  INSERT INTO nonces (chain_id, address, next_nonce) VALUES (p_chain_id, p_address, 0)
  ON CONFLICT (chain_id, address) DO UPDATE SET updated_at = now()
  RETURNING next_nonce INTO tracked;

  WITH picked AS (
    SELECT nonce FROM released_nonces
     WHERE chain_id = p_chain_id AND address = p_address AND nonce >= p_latest AND nonce < tracked
     ORDER BY nonce LIMIT p_count
  ), taken AS (
    DELETE FROM released_nonces r USING picked
     WHERE r.chain_id = p_chain_id AND r.address = p_address AND r.nonce = picked.nonce
    RETURNING r.nonce
  )
  SELECT coalesce(array_agg(nonce ORDER BY nonce), '{}') INTO reused FROM taken;

  fresh := p_count - cardinality(reused);
  IF fresh = 0 THEN
    RETURN reused;
  END IF;
  first := greatest(tracked, p_pending);
  UPDATE nonces SET next_nonce = first + fresh WHERE chain_id = p_chain_id AND address = p_address;
  RETURN reused || ARRAY(SELECT generate_series(first, first + fresh - 1));
END $$;
