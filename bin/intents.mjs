#!/usr/bin/env node
// `intents …`: the operator CLI (src/cli.ts), run in this process through tsx's loader.
import { register } from "tsx/esm/api";

register();
await import(new URL("../src/cli.ts", import.meta.url).href);
