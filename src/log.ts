// The pino logger. Secrets never reach a log line: credentials are redacted by path, and request
// bodies/headers are not logged at all beyond what the serializers below keep.
import pino, { type Logger } from "pino";

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
        err: pino.stdSerializers.err,
      },
    },
    destination,
  );
}
