/**
 * viem account adapter: lets viem clients (walletClient.sendTransaction, writeContract, …) sign with
 * an HSM key. Only transaction, message (EIP-191) and typed-data (EIP-712) signing are exposed.
 * Raw-hash `sign` and EIP-7702 `signAuthorization` are deliberately left out: either can be used to
 * sign something that moves funds without the service's guardrails seeing a transaction.
 */
import {
  hashMessage,
  hashTypedData,
  serializeSignature,
  type LocalAccount,
  type SerializeTransactionFn,
  type TransactionSerializable,
} from "viem";
import { toAccount } from "viem/accounts";
import type { Signer, SigningKeyInfo } from "./signer.js";

export type HsmAccount = LocalAccount<"custom"> & { readonly path: string };

export function hsmAccount(signer: Signer, keyInfo: SigningKeyInfo): HsmAccount {
  const account = toAccount({
    address: keyInfo.address,
    // viem calls this with its own serializer for chains with custom formats (e.g. OP-stack deposit
    // fields); the signer hashes and re-serializes with that same serializer.
    async signTransaction(transaction, options) {
      return signer.signTransaction(
        keyInfo.path,
        transaction as TransactionSerializable,
        options?.serializer as SerializeTransactionFn | undefined,
      );
    },
    async signMessage({ message }) {
      const sig = await signer.signDigest(keyInfo.path, hashMessage(message));
      return serializeSignature(sig);
    },
    async signTypedData(typedData) {
      const sig = await signer.signDigest(keyInfo.path, hashTypedData(typedData));
      return serializeSignature(sig);
    },
  });
  return { ...account, publicKey: keyInfo.publicKey, path: keyInfo.path } as HsmAccount;
}
