// RLP decoding and encoding (Ethereum's serialisation), enough to read a signed transaction's fields
// (to, value, data, signature) in the browser and rebuild the bytes it signed.

/** Decodes one RLP item: Uint8Array for a string, an array for a list. Throws on malformed input. */
export function rlpDecode(bytes) {
  const [item, end] = decodeAt(bytes, 0);
  if (end !== bytes.length) throw new Error("trailing bytes after RLP item");
  return item;
}

function decodeAt(b, p) {
  if (p >= b.length) throw new Error("RLP: truncated");
  const t = b[p];
  if (t < 0x80) return [b.subarray(p, p + 1), p + 1];
  if (t < 0xb8) return str(b, p + 1, t - 0x80);
  if (t < 0xc0) return str(b, p + 1 + (t - 0xb7), len(b, p + 1, t - 0xb7));
  if (t < 0xf8) return list(b, p + 1, t - 0xc0);
  return list(b, p + 1 + (t - 0xf7), len(b, p + 1, t - 0xf7));
}
function len(b, p, n) {
  if (p + n > b.length) throw new Error("RLP: truncated length");
  let v = 0;
  for (let i = 0; i < n; i++) v = v * 256 + b[p + i];
  return v;
}
function str(b, p, n) {
  if (p + n > b.length) throw new Error("RLP: truncated string");
  return [b.subarray(p, p + n), p + n];
}
function list(b, p, n) {
  const end = p + n;
  if (end > b.length) throw new Error("RLP: truncated list");
  const out = [];
  while (p < end) {
    const [item, next] = decodeAt(b, p);
    out.push(item);
    p = next;
  }
  if (p !== end) throw new Error("RLP: list overruns");
  return [out, end];
}

/** Encodes Uint8Array strings and arrays of them. */
export function rlpEncode(item) {
  if (item instanceof Uint8Array) {
    if (item.length === 1 && item[0] < 0x80) return item;
    return concat([header(0x80, item.length), item]);
  }
  const body = concat(item.map(rlpEncode));
  return concat([header(0xc0, body.length), body]);
}
function header(base, n) {
  if (n < 56) return Uint8Array.of(base + n);
  const lb = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) lb.unshift(v % 256);
  return Uint8Array.of(base + 55 + lb.length, ...lb);
}
export function concat(parts) {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export const toHex = (b) => "0x" + Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
export const toBig = (b) => (b.length === 0 ? 0n : BigInt(toHex(b)));
