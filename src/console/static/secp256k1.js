// Public-key recovery on secp256k1 (what ecrecover does), in plain BigInt arithmetic: enough to show
// that a transaction's signature was made by the address the service says signed it. Not constant
// time, and it needs not be: it only handles public data.
const P = 0xfffffffffffffffffffffffffffffffffffffffffffffffffffffffefffffc2fn;
const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const G = [
  0x79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798n,
  0x483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8n,
];
const mod = (a, m = P) => ((a % m) + m) % m;
function pow(b, e, m) {
  let r = 1n;
  b = mod(b, m);
  while (e > 0n) {
    if (e & 1n) r = (r * b) % m;
    b = (b * b) % m;
    e >>= 1n;
  }
  return r;
}
const inv = (a, m = P) => pow(a, m - 2n, m);
function add(p, q) {
  if (p === null) return q;
  if (q === null) return p;
  if (p[0] === q[0]) {
    if (mod(p[1] + q[1]) === 0n) return null;
    const l = mod(3n * p[0] * p[0] * inv(2n * p[1]));
    const x = mod(l * l - 2n * p[0]);
    return [x, mod(l * (p[0] - x) - p[1])];
  }
  const l = mod((q[1] - p[1]) * inv(q[0] - p[0]));
  const x = mod(l * l - p[0] - q[0]);
  return [x, mod(l * (p[0] - x) - p[1])];
}
function mul(p, k) {
  let r = null;
  for (let a = p; k > 0n; k >>= 1n, a = add(a, a)) if (k & 1n) r = add(r, a);
  return r;
}

/** The uncompressed public key (x, y) that signed hash `z` with (r, s, yParity), or null. */
export function recoverPublicKey(z, r, s, yParity) {
  if (r <= 0n || r >= N || s <= 0n || s >= N) return null;
  const x = r;
  const y2 = mod(x * x * x + 7n);
  let y = pow(y2, (P + 1n) / 4n, P);
  if (mod(y * y) !== y2) return null;
  if ((y & 1n) !== BigInt(yParity)) y = P - y;
  const R = [x, y];
  const ri = inv(r, N);
  const u1 = mod(-z * ri, N);
  const u2 = mod(s * ri, N);
  return add(mul(G, u1), mul(R, u2));
}
