// Chains and deleted_chains: every statement on them. chains.json seeds rows (managed_by 'file');
// /v1/admin/chains writes them (managed_by 'admin'); the registry (src/chains/registry.ts) reads them.
// One column list serves all three, so a new column is added here once.
import type { PoolClient, Queryable } from "./pool.js";
import { UUID } from "../uuid.js";

/** The columns a seed or an operator writes; the rest (id, managed_by, timestamps) the statements set. */
export interface ChainFields {
  name: string;
  display_name: string;
  chain_id: number;
  native_currency: string;
  is_testnet: boolean;
  is_enabled: boolean;
  rpc_urls: string[];
  ws_url: string | null;
  explorer_url: string | null;
  eip1559: boolean;
  confirmations: number;
  aliases: string[];
  max_fee_per_gas_gwei: number | null;
  base_fee_multiple: number | null;
}

/** A stored row as PostgreSQL returns it: bigint chain_id and numeric fee bounds arrive as strings. */
export interface ChainRow extends Omit<ChainFields, "chain_id" | "max_fee_per_gas_gwei" | "base_fee_multiple"> {
  id: string;
  chain_id: string;
  max_fee_per_gas_gwei: string | null;
  base_fee_multiple: string | null;
  managed_by: "file" | "admin";
  created_at: Date;
  updated_at: Date;
}

const FIELDS = [
  "name",
  "display_name",
  "chain_id",
  "native_currency",
  "is_testnet",
  "is_enabled",
  "rpc_urls",
  "ws_url",
  "explorer_url",
  "eip1559",
  "confirmations",
  "aliases",
  "max_fee_per_gas_gwei",
  "base_fee_multiple",
] as const satisfies ReadonlyArray<keyof ChainFields>;
const COLUMNS = ["id", ...FIELDS, "managed_by", "created_at", "updated_at"].join(", ");

/** The columns an admin update may set, as (column, value) pairs: only these ever reach the SQL. */
export type ChainUpdate = Array<[Exclude<keyof ChainFields, "name" | "chain_id">, unknown]>;

export async function listChainRows(db: Queryable): Promise<ChainRow[]> {
  return (await db.query<ChainRow>(`SELECT ${COLUMNS} FROM chains ORDER BY chain_id`)).rows;
}

export async function deletedChainNames(db: Queryable): Promise<Set<string>> {
  return new Set((await db.query<{ name: string }>("SELECT name FROM deleted_chains")).rows.map((r) => r.name));
}

const values = (f: ChainFields) => FIELDS.map((k) => f[k]);
const placeholders = (from: number) => FIELDS.map((_, i) => `$${i + from}`).join(", ");

/** A chains.json entry: inserted, or refreshed while the file still manages the row (an operator's edit wins). */
export async function upsertFileChain(db: Queryable, id: string, f: ChainFields): Promise<void> {
  await db.query(
    `INSERT INTO chains (id, ${FIELDS.join(", ")}, managed_by)
     VALUES ($1, ${placeholders(2)}, 'file')
     ON CONFLICT (name) DO UPDATE SET ${FIELDS.filter((c) => c !== "name")
       .map((c) => `${c} = EXCLUDED.${c}`)
       .join(", ")}, updated_at = now()
     WHERE chains.managed_by = 'file'`,
    [id, ...values(f)],
  );
}

/**
 * An operator's new chain. A deleted chain of the same name is forgotten, so chains.json does not
 * skip it again. The caller holds lockChainWrites.
 */
export async function insertAdminChain(tx: PoolClient, id: string, f: ChainFields): Promise<void> {
  await tx.query(`INSERT INTO chains (id, ${FIELDS.join(", ")}, managed_by) VALUES ($1, ${placeholders(2)}, 'admin')`, [id, ...values(f)]);
  await tx.query("DELETE FROM deleted_chains WHERE name = $1", [f.name]);
}

/** Sets the given columns; the row becomes the operator's (chains.json stops overwriting it). */
export async function updateAdminChain(tx: PoolClient, id: string, cols: ChainUpdate): Promise<void> {
  const sets = cols.map(([c], i) => `${c} = $${i + 2}`);
  await tx.query(`UPDATE chains SET ${[...sets, "managed_by = 'admin'", "updated_at = now()"].join(", ")} WHERE id = $1`, [
    id,
    ...cols.map(([, v]) => v),
  ]);
}

/** Deletes the row and remembers its name, so that chains.json does not bring it back at the next start. */
export async function deleteChain(tx: PoolClient, row: { id: string; name: string }): Promise<void> {
  await tx.query("DELETE FROM chains WHERE id = $1", [row.id]);
  await tx.query("INSERT INTO deleted_chains (name) VALUES ($1) ON CONFLICT DO NOTHING", [row.name]);
}

/** Serialises admin chain writes across replicas (alias uniqueness has no table constraint). */
export async function lockChainWrites(tx: PoolClient): Promise<void> {
  await tx.query("SELECT pg_advisory_xact_lock(hashtext('intents.admin.chains'))");
}

export interface LockedChain {
  id: string;
  name: string;
  chain_id: string;
  aliases: string[];
}

/**
 * The row an admin path parameter names: the row's uuid (the reference's form), the numeric chain id,
 * or a name or alias. Locks the row (FOR UPDATE) for the rest of the caller's transaction.
 */
export async function lockChainRow(tx: PoolClient, ref: string): Promise<LockedChain | undefined> {
  const key = ref.trim().toLowerCase();
  const cols = "id, name, chain_id, aliases";
  if (UUID.test(key)) {
    return (await tx.query<LockedChain>(`SELECT ${cols} FROM chains WHERE id = $1 FOR UPDATE`, [key])).rows[0];
  }
  if (/^\d{1,16}$/.test(key)) {
    return (await tx.query<LockedChain>(`SELECT ${cols} FROM chains WHERE chain_id = $1 FOR UPDATE`, [key])).rows[0];
  }
  const { rows } = await tx.query<LockedChain>(
    `SELECT ${cols} FROM chains WHERE name = $1 OR $1 = ANY(aliases) ORDER BY (name = $1) DESC LIMIT 1 FOR UPDATE`,
    [key],
  );
  return rows[0];
}

/**
 * The chain (other than `selfId`) that already uses one of these names or aliases, if any. Read under
 * lockChainWrites, so no other admin write can take one of them before the caller's commit.
 */
export async function chainUsingIdentifier(tx: PoolClient, ids: string[], selfId: string | null): Promise<string | undefined> {
  if (ids.length === 0) return undefined;
  const { rows } = await tx.query<{ name: string }>(
    `SELECT name FROM chains WHERE ($2::uuid IS NULL OR id <> $2::uuid) AND (name = ANY($1::text[]) OR aliases && $1::text[]) LIMIT 1`,
    [ids, selfId],
  );
  return rows[0]?.name;
}
