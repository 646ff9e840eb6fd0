// Compiles the signing-intent test contracts into intents-compiled.json (runtime bytecode included, for
// anvil_setCode): `npm i --no-save solc@0.8.28 && node test/contracts/compile-intents.cjs test/contracts`.
const solc = require("solc");
const fs = require("fs");
const path = require("path");
const dir = process.argv[2];
const files = ["IntentToken.sol", "MiniPermit2.sol", "Delegate7702.sol"];
const input = {
  language: "Solidity",
  sources: Object.fromEntries(files.map((f) => [f, { content: fs.readFileSync(path.join(dir, f), "utf8") }])),
  settings: { optimizer: { enabled: true, runs: 200 }, evmVersion: "cancun", outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } } },
};
const out = JSON.parse(solc.compile(JSON.stringify(input)));
for (const e of out.errors ?? []) { console.error(e.formattedMessage); if (e.severity === "error") process.exit(1); }
const result = { compiler: "solc " + solc.version(), settings: input.settings, contracts: {} };
for (const f of files) for (const [name, c] of Object.entries(out.contracts[f])) {
  if (name === "IERC20Min") continue;
  result.contracts[name] = { source: f, abi: c.abi, bytecode: "0x" + c.evm.bytecode.object, deployedBytecode: "0x" + c.evm.deployedBytecode.object };
}
fs.writeFileSync(path.join(dir, "intents-compiled.json"), JSON.stringify(result, null, 1) + "\n");
console.log("ok", Object.keys(result.contracts), solc.version());
