// Amounts: decimal strings in the chain's native major unit on the wire, bigint wei inside.
export const MAX_UINT256 = (1n << 256n) - 1n;
const DECIMAL = /^(0|[1-9]\d*)(\.\d{1,18})?$/;

/** "0.5" → 5e17. Exact; no exponent, sign or more than 18 decimals. Returns undefined if malformed. */
export function parseMajor(value: string, decimals = 18): bigint | undefined {
  if (typeof value !== "string" || value.length > 100) return undefined;
  const m = DECIMAL.exec(value);
  if (!m) return undefined;
  const frac = (m[2] ?? ".").slice(1);
  if (frac.length > decimals) return undefined;
  const wei = BigInt(m[1]) * 10n ** BigInt(decimals) + BigInt(frac.padEnd(decimals, "0") || "0");
  return wei > MAX_UINT256 ? undefined : wei;
}

/** 5e17 → "0.5"; trailing zeros trimmed, never an exponent. Negative values keep their sign. */
export function formatMajor(wei: bigint, decimals = 18): string {
  const neg = wei < 0n;
  const abs = neg ? -wei : wei;
  const base = 10n ** BigInt(decimals);
  const whole = abs / base;
  const frac = (abs % base).toString().padStart(decimals, "0").replace(/0+$/, "");
  return `${neg ? "-" : ""}${whole}${frac ? "." + frac : ""}`;
}
