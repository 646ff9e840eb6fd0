/**
 * SoftHSM2 helpers: locate the PKCS#11 module and make sure a token with a given label exists in
 * a folder owned by this service (config file, token store, PIN files).
 *
 * SoftHSM reads its configuration from SOFTHSM2_CONF when the module is initialised (C_Initialize),
 * so ensureSoftHsmToken() must run before the module is loaded in this process.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

export const SOFTHSM_INSTALL_HINT = "apt-get update && apt-get install -y softhsm2";

/** Usual install locations of libsofthsm2.so (Debian/Ubuntu, multiarch, /usr/local builds, Fedora/RHEL, macOS Homebrew). */
export const SOFTHSM_MODULE_CANDIDATES: readonly string[] = [
  "/usr/lib/softhsm/libsofthsm2.so",
  "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
  "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
  "/usr/local/lib/softhsm/libsofthsm2.so",
  "/usr/lib64/pkcs11/libsofthsm2.so",
  "/usr/lib/pkcs11/libsofthsm2.so",
  "/usr/lib64/softhsm/libsofthsm2.so",
  "/opt/homebrew/lib/softhsm/libsofthsm2.so",
  "/usr/local/opt/softhsm/lib/softhsm/libsofthsm2.so",
];

/** Returns the path of the first SoftHSM2 PKCS#11 module found, or null. */
export function findSoftHsmModule(): string | null {
  for (const candidate of SOFTHSM_MODULE_CANDIDATES) {
    if (existsSync(candidate)) return candidate;
  }
  return null;
}

export interface EnsureSoftHsmTokenOptions {
  /** Folder that holds softhsm2.conf, tokens/, pin and so-pin. Created if missing. */
  dir: string;
  /** Token label (1..32 characters). */
  label: string;
  /** User PIN; when absent it is read from dir/pin, or generated and stored there (mode 0600). */
  pin?: string;
  /** Override the module path (default: findSoftHsmModule()). */
  modulePath?: string;
}

export interface SoftHsmToken {
  modulePath: string;
  tokenLabel: string;
  pin: string;
  confPath: string;
}

/**
 * Makes sure `dir` holds a SoftHSM2 configuration and a token labelled `label`, creating both if
 * needed, and points SOFTHSM2_CONF at that configuration. Idempotent.
 */
export async function ensureSoftHsmToken(opts: EnsureSoftHsmTokenOptions): Promise<SoftHsmToken> {
  const { label } = opts;
  if (label.length === 0 || Buffer.byteLength(label, "utf8") > 32 || label.trim() !== label) {
    // PKCS#11 token labels are 32 blank-padded bytes: longer labels or edge blanks would not round-trip.
    throw new Error("SoftHSM token label must be 1..32 bytes without leading/trailing blanks");
  }
  const modulePath = opts.modulePath ?? findSoftHsmModule();
  if (!modulePath || !existsSync(modulePath)) {
    throw new Error(
      `SoftHSM2 PKCS#11 module not found (looked in ${SOFTHSM_MODULE_CANDIDATES.join(", ")}). ` +
        `Install it with: ${SOFTHSM_INSTALL_HINT}`,
    );
  }

  const dir = path.resolve(opts.dir);
  const tokenDir = path.join(dir, "tokens");
  const confPath = path.join(dir, "softhsm2.conf");
  await mkdir(tokenDir, { recursive: true, mode: 0o700 });
  const conf =
    `# Written by intents-signer (src/hsm/softhsm.ts)\n` +
    `directories.tokendir = ${tokenDir}\n` +
    `objectstore.backend = file\n` +
    `log.level = ERROR\n`;
  // Replicas sharing one token folder (SOFTHSM_DIR) read this file while others start: it is written
  // only when missing or different, never rewritten by each process.
  const current = await readFile(confPath, "utf8").catch(() => "");
  if (current !== conf) await writeFile(confPath, conf, { mode: 0o600 });

  // The one process.env write outside config: SoftHSM2 has no other way to be told where its
  // configuration is, and it reads the variable when the module is initialised in this process.
  // Child processes (softhsm2-util below) get it explicitly through `env`.
  process.env.SOFTHSM2_CONF = confPath;
  const env = { ...process.env, SOFTHSM2_CONF: confPath };

  const labels = await listTokenLabels(env);
  let pin: string;
  if (labels.includes(label)) {
    pin = opts.pin ?? (await readSecretFile(path.join(dir, "pin")));
    if (!pin) {
      throw new Error(`SoftHSM token "${label}" exists in ${tokenDir} but no PIN was given and ${path.join(dir, "pin")} is missing`);
    }
  } else {
    pin = opts.pin ?? (await readOrCreateSecret(path.join(dir, "pin")));
    const soPin = await readOrCreateSecret(path.join(dir, "so-pin"));
    try {
      // execFile, never a shell: the PINs are arguments, not shell text. (softhsm2-util only takes
      // them on the command line; they are visible in the process list for the few ms it runs.)
      await execFileAsync("softhsm2-util", ["--init-token", "--free", "--label", label, "--pin", pin, "--so-pin", soPin], {
        env,
        timeout: 30_000,
      });
    } catch (err) {
      // Never echo the command line (it holds the PINs); stderr of softhsm2-util does not.
      const e = err as NodeJS.ErrnoException & { stderr?: string };
      if (e.code === "ENOENT") {
        throw new Error(`softhsm2-util not found on PATH. Install it with: ${SOFTHSM_INSTALL_HINT}`);
      }
      throw new Error(`softhsm2-util --init-token failed: ${(e.stderr ?? "").trim() || "unknown error"}`);
    }
    const after = await listTokenLabels(env);
    if (!after.includes(label)) throw new Error(`SoftHSM token "${label}" was not created`);
  }
  return { modulePath, tokenLabel: label, pin, confPath };
}

/** Labels of initialised tokens, as printed by `softhsm2-util --show-slots`. */
async function listTokenLabels(env: NodeJS.ProcessEnv): Promise<string[]> {
  let stdout: string;
  try {
    ({ stdout } = await execFileAsync("softhsm2-util", ["--show-slots"], { env, timeout: 30_000 }));
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === "ENOENT") {
      throw new Error(`softhsm2-util not found on PATH. Install it with: ${SOFTHSM_INSTALL_HINT}`);
    }
    throw new Error(`softhsm2-util --show-slots failed: ${(e.stderr ?? "").trim() || "unknown error"}`);
  }
  const labels: string[] = [];
  let initialized = false;
  for (const line of stdout.split("\n")) {
    const m = /^\s*(Initialized|Label):\s?(.*)$/.exec(line);
    if (!m) continue;
    if (m[1] === "Initialized") initialized = m[2].trim() === "yes";
    else if (initialized) labels.push(m[2].trim());
  }
  return labels;
}

async function readSecretFile(file: string): Promise<string> {
  try {
    const secret = (await readFile(file, "utf8")).trim();
    await chmod(file, 0o600); // tighten a file someone created with looser permissions
    return secret;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return "";
    throw err;
  }
}

async function readOrCreateSecret(file: string): Promise<string> {
  const existing = await readSecretFile(file);
  if (existing) return existing;
  const secret = randomBytes(16).toString("hex");
  // `wx`: never clobber a PIN another process wrote in the meantime.
  await writeFile(file, secret + "\n", { mode: 0o600, flag: "wx" });
  return secret;
}
