// Checks of the official SDK's answers (the SDK speaks real HTTP: the tests use useService({ listen: true })).
// The SDK's .d.ts files import each other without extensions, which NodeNext resolution cannot follow;
// its types are therefore imported from dist/types.js directly and named explicitly at each call.
import type { OneclawResponse } from "../../../shared/vendor/1claw-sdk/dist/types.js";
import { assertMatchesReference } from "../helpers/reference.js";
import { assertMatchesSdkType } from "./sdk-types.js";

/**
 * An SDK envelope that must have succeeded: its data is checked against the SDK's declared type and,
 * when the reference API description has a schema of that name, against the reference too.
 */
export function ok<T>(response: unknown, sdkType: string, referenceType: string | null = sdkType): T {
  const res = response as OneclawResponse<T>;
  if (res.error || res.data === null) throw new Error(`SDK call failed: ${res.meta?.status} ${JSON.stringify(res.error)}`);
  assertMatchesSdkType(sdkType, res.data);
  if (referenceType) assertMatchesReference(referenceType, res.data);
  return res.data;
}

/** The status of a failed SDK envelope (the SDK's `request` returns errors instead of throwing). */
export function failed(response: unknown): number {
  const res = response as OneclawResponse<unknown>;
  if (!res.error) throw new Error(`expected an error, got ${res.meta?.status} ${JSON.stringify(res.data).slice(0, 300)}`);
  return res.meta!.status;
}
