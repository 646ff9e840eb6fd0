// What `npm start` prints once it listens: the operator key when one was just generated (the only time
// it is ever shown), then commands that work verbatim in a POSIX shell with curl and node.
export function startBanner(opts: { baseUrl: string; generatedOperatorKey?: string; localChain: boolean }): string {
  const lines: string[] = [""];
  if (opts.generatedOperatorKey) {
    lines.push(
      "An operator API key was generated. It is shown only this once; store it now:",
      "",
      `  ${opts.generatedOperatorKey}`,
      "",
    );
  }
  lines.push(`Intents service listening on ${opts.baseUrl}`);
  if (!opts.localChain) return lines.join("\n") + "\n";
  const json = (expr: string) => `node -pe 'JSON.parse(fs.readFileSync(0)).${expr}'`;
  lines.push(
    "",
    "Try it (create an agent, enable the Intents API, get a token, send 0.01 ETH on the local chain, read it back):",
    "",
    `BASE=${opts.baseUrl}`,
    opts.generatedOperatorKey ? `OP=${opts.generatedOperatorKey}` : `OP="$ADMIN_API_KEY"   # your operator key`,
    `AGENT=$(curl -sf -X POST "$BASE/v1/agents" -H "Authorization: Bearer $OP" -H 'Content-Type: application/json' -d '{"name":"demo-agent"}')`,
    `AGENT_ID=$(echo "$AGENT" | ${json("agent.id")}); AGENT_KEY=$(echo "$AGENT" | ${json("api_key")})`,
    `curl -sf -X PATCH "$BASE/v1/agents/$AGENT_ID" -H "Authorization: Bearer $OP" -H 'Content-Type: application/json' -d '{"intents_api_enabled":true}' > /dev/null`,
    `TOKEN=$(curl -sf -X POST "$BASE/v1/auth/agent-token" -H 'Content-Type: application/json' -d "{\\"api_key\\":\\"$AGENT_KEY\\"}" | ${json("access_token")})`,
    `TX_ID=$(curl -sf -X POST "$BASE/v1/agents/$AGENT_ID/transactions" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d '{"to":"0x000000000000000000000000000000000000dEaD","value":"0.01","chain":"local"}' | ${json("id")})`,
    `curl -sf "$BASE/v1/agents/$AGENT_ID/transactions/$TX_ID" -H "Authorization: Bearer $TOKEN"; echo`,
    "",
  );
  return lines.join("\n") + "\n";
}
