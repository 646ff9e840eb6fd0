// What `npm start` prints once it listens: the operator key when one was just generated (the only time
// it is ever shown), then commands that work verbatim in a POSIX shell with curl and node, on this
// start: at the first start they use the key just shown; on a later start (the key is never shown
// again) the OP= line makes a new operator key straight in the embedded database with the CLI. With an
// external database the CLI would need DATABASE_URL in the reader's shell, so no demo is printed then.
// curl shows HTTP errors (-sS --fail-with-body: the problem body and a non-zero status).

export interface BannerOptions {
  baseUrl: string;
  generatedOperatorKey?: string;
  localChain: boolean;
  /** Where the CLI can reach this start's database: the project folder and DATA_DIR (embedded database only). */
  cli?: { root: string; dataDir: string };
}

/** Single-quoted for a POSIX shell. */
const sh = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

export function startBanner(opts: BannerOptions): string {
  const lines: string[] = [""];
  if (opts.generatedOperatorKey) {
    lines.push("An operator API key was generated. It is shown only this once; store it now:", "", `  ${opts.generatedOperatorKey}`, "");
  }
  lines.push(`Intents service listening on ${opts.baseUrl}`);
  const cli = opts.cli
    ? `cd ${sh(opts.cli.root)} && npm run -s cli -- api-keys create --db --data-dir ${sh(opts.cli.dataDir)} --name "demo-$(date +%s)"`
    : undefined;
  if (!opts.generatedOperatorKey) {
    lines.push(
      "",
      "Operator keys: the first one was printed once at the first start on this DATA_DIR (or is ADMIN_API_KEY).",
      "Make another with `intents api-keys create --name NAME` (an operator key) or, without one, " +
        (opts.cli
          ? "`npm run -s cli -- api-keys create --db --name NAME` (straight in the database);"
          : "the same with `--db` and DATABASE_URL set;") +
        " list and revoke them with `intents api-keys list|revoke`.",
    );
  }
  if (!opts.localChain || (!opts.generatedOperatorKey && !cli)) return lines.join("\n") + "\n";
  const json = (expr: string) => `node -pe 'JSON.parse(fs.readFileSync(0)).${expr}'`;
  const curl = "curl -sS --fail-with-body";
  lines.push(
    "",
    opts.generatedOperatorKey
      ? "Try it (create an agent, enable the Intents API, get a token, send 0.01 ETH on the local chain, read it back):"
      : "Try it (a new operator key named demo-<time>, then: create an agent, enable it, get a token, send 0.01 ETH on the local chain, read it back):",
    "",
    `BASE=${opts.baseUrl}`,
    opts.generatedOperatorKey ? `OP=${opts.generatedOperatorKey}` : `OP=$(${cli} | ${json("api_key")})`,
    `AGENT=$(${curl} -X POST "$BASE/v1/agents" -H "Authorization: Bearer $OP" -H 'Content-Type: application/json' -d '{"name":"demo-agent"}')`,
    `AGENT_ID=$(echo "$AGENT" | ${json("agent.id")}); AGENT_KEY=$(echo "$AGENT" | ${json("api_key")})`,
    `${curl} -X PATCH "$BASE/v1/agents/$AGENT_ID" -H "Authorization: Bearer $OP" -H 'Content-Type: application/json' -d '{"intents_api_enabled":true}' > /dev/null`,
    `TOKEN=$(${curl} -X POST "$BASE/v1/auth/agent-token" -H 'Content-Type: application/json' -d "{\\"api_key\\":\\"$AGENT_KEY\\"}" | ${json("access_token")})`,
    `TX_ID=$(${curl} -X POST "$BASE/v1/agents/$AGENT_ID/transactions" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d '{"to":"0x000000000000000000000000000000000000dEaD","value":"0.01","chain":"local"}' | ${json("id")})`,
    `${curl} "$BASE/v1/agents/$AGENT_ID/transactions/$TX_ID" -H "Authorization: Bearer $TOKEN"; echo`,
    "",
  );
  return lines.join("\n") + "\n";
}
