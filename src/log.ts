// The pino logger. Secrets never reach a log line: credentials are redacted by path, and request
// bodies/headers are not logged at all beyond what the serializers below keep.
import pino, { type Logger } from "pino";
import { redactRpcUrl } from "./chains/registry.js";

const URL_IN_TEXT = /\b(?:https?|wss?):\/\/[^\s"'<>)]+/g;
const BEARER_IN_TEXT = /\b(Bearer\s+)[A-Za-z0-9._~+\/=-]+/gi;
const KEY_IN_TEXT = /\b(ocv|1ck)_[A-Za-z0-9_-]{8,}/g;

/** Removes what may be a credential from free text: URL credentials, bearer tokens, API keys. */
export function scrubText(text: string): string {
  return text
    .replace(URL_IN_TEXT, (u) => redactRpcUrl(u))
    .replace(BEARER_IN_TEXT, "$1[redacted]")
    .replace(KEY_IN_TEXT, "$1_[redacted]");
}

function scrubDeep(v: unknown, depth = 0): unknown {
  if (typeof v === "string") return scrubText(v);
  if (depth > 6 || !v || typeof v !== "object") return v;
  if (Array.isArray(v)) return v.map((x) => scrubDeep(x, depth + 1));
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, scrubDeep(x, depth + 1)]));
}

export const REDACT_PATHS = [
  "req.headers.authorization",
  "req.headers.cookie",
  "headers.authorization",
  "authorization",
  "api_key",
  "*.api_key",
  "pin",
  "*.pin",
  "access_token",
  "*.access_token",
  "password",
  "*.password",
  "signed_tx",
  "*.signed_tx",
];

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      redact: { paths: REDACT_PATHS, censor: "[redacted]" },
      serializers: {
        req: (req: { id?: string; method?: string; url?: string }) => ({
          id: req.id,
          method: req.method,
          // Query strings may carry credentials in some clients: log the path only.
          url: typeof req.url === "string" ? req.url.split("?")[0] : undefined,
        }),
        // Errors from RPC clients quote their URL (which may embed an API key) and request bodies.
        err: (e: Error) => scrubDeep(pino.stdSerializers.err(e)),
      },
    },
    destination,
  );
}
