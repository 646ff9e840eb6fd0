// Reads a signed transaction (legacy or EIP-2718 types 1, 2, 4): its fields, its hash, and the
// address its signature recovers to, so the console can check what the service reports.
import { hexToBytes, keccak256 } from "./keccak.js";
import { concat, rlpDecode, rlpEncode, toBig, toHex } from "./rlp.js";
import { recoverPublicKey } from "./secp256k1.js";

const LAYOUT = {
  1: { to: 4, value: 5, data: 6 },
  2: { to: 5, value: 6, data: 7 },
  4: { to: 5, value: 6, data: 7 },
};

export function inspectSignedTx(signedHex) {
  const raw = hexToBytes(signedHex);
  const hash = keccak256(raw);
  let type, fields, payload, yParity, r, s, to, value, data;
  if (raw[0] >= 0xc0) {
    type = 0;
    fields = rlpDecode(raw);
    if (!Array.isArray(fields) || fields.length !== 9) throw new Error("not a legacy transaction");
    const v = toBig(fields[6]);
    r = toBig(fields[7]);
    s = toBig(fields[8]);
    const base = fields.slice(0, 6);
    if (v >= 35n) {
      const chainId = (v - 35n) / 2n;
      yParity = Number((v - 35n) % 2n);
      payload = rlpEncode([...base, bigBytes(chainId), new Uint8Array(), new Uint8Array()]);
    } else {
      yParity = Number(v - 27n);
      payload = rlpEncode(base);
    }
    [to, value, data] = [fields[3], fields[4], fields[5]];
  } else {
    type = raw[0];
    const l = LAYOUT[type];
    if (!l) throw new Error(`unknown transaction type ${type}`);
    fields = rlpDecode(raw.subarray(1));
    const n = fields.length;
    yParity = Number(toBig(fields[n - 3]));
    r = toBig(fields[n - 2]);
    s = toBig(fields[n - 1]);
    payload = concat([Uint8Array.of(type), rlpEncode(fields.slice(0, n - 3))]);
    [to, value, data] = [fields[l.to], fields[l.value], fields[l.data]];
  }
  const digest = BigInt(keccak256(payload));
  const pub = recoverPublicKey(digest, r, s, yParity);
  const signer = pub ? "0x" + keccak256(concat([bigBytes(pub[0], 32), bigBytes(pub[1], 32)])).slice(26) : null;
  return { type, hash, signer, to: to.length ? toHex(to) : null, value: toBig(value), data: toHex(data) };
}

function bigBytes(v, width) {
  let hex = v.toString(16);
  if (hex.length % 2) hex = "0" + hex;
  if (v === 0n && !width) return new Uint8Array();
  if (width) hex = hex.padStart(width * 2, "0");
  return hexToBytes(hex);
}

const SELECTORS = {
  "0xa9059cbb": { name: "transfer", args: ["address to", "uint256 amount"] },
  "0x095ea7b3": { name: "approve", args: ["address spender", "uint256 amount"] },
  "0x23b872dd": { name: "transferFrom", args: ["address from", "address to", "uint256 amount"] },
  "0x39509351": { name: "increaseAllowance", args: ["address spender", "uint256 added"] },
  "0xa457c2d7": { name: "decreaseAllowance", args: ["address spender", "uint256 subtracted"] },
  "0xa22cb465": { name: "setApprovalForAll", args: ["address operator", "bool approved"] },
  "0x42842e0e": { name: "safeTransferFrom", args: ["address from", "address to", "uint256 tokenId"] },
};

/** Calldata as a call: a known token function with its arguments, or the selector and raw words. */
export function decodeCalldata(data) {
  if (!data || data === "0x") return { kind: "none" };
  const sel = data.slice(0, 10).toLowerCase();
  const words = [];
  for (let i = 10; i < data.length; i += 64) words.push(data.slice(i, i + 64));
  const known = SELECTORS[sel];
  if (!known || words.length !== known.args.length || words.some((w) => w.length !== 64))
    return { kind: "raw", selector: sel, words: words.map((w) => "0x" + w) };
  const args = known.args.map((spec, i) => {
    const [type, name] = spec.split(" ");
    const w = words[i];
    const value = type === "address" ? "0x" + w.slice(24) : type === "bool" ? String(BigInt("0x" + w) !== 0n) : BigInt("0x" + w).toString();
    return { name, type, value };
  });
  return { kind: "call", selector: sel, name: known.name, args };
}
