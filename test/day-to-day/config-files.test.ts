// Secrets from files (`<NAME>_FILE`, as Docker/Compose secrets are mounted): read, trimmed, never
// echoed; both forms at once, a missing or empty file, are refused naming the variable.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "intents-cfg-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const file = (name: string, content: string) => {
  const p = path.join(tmp, name);
  fs.writeFileSync(p, content);
  return p;
};
const problems = (env: Record<string, string>): string => {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.message;
    throw err;
  }
  return "";
};

describe("*_FILE secrets", () => {
  const admin = "1ck_" + "a".repeat(40);

  it("reads ADMIN_API_KEY_FILE, PKCS11_PIN_FILE and DATABASE_PASSWORD_FILE", () => {
    const c = loadConfig({
      ADMIN_API_KEY_FILE: file("admin", `${admin}\n`),
      PKCS11_PIN_FILE: file("pin", "s3cret-pin\n"),
      DATABASE_URL: "postgres://intents@db.example:5432/intents",
      DATABASE_PASSWORD_FILE: file("dbpw", "p@ss:word/1\n"),
    });
    expect(c.adminApiKey).toBe(admin);
    expect(c.pkcs11.pin).toBe("s3cret-pin");
    const u = new URL(c.databaseUrl!);
    expect(decodeURIComponent(u.password)).toBe("p@ss:word/1");
    expect(u.username).toBe("intents");
    expect(u.hostname).toBe("db.example");
  });

  it("refuses both forms, missing and empty files, a password without a URL; values never echoed", () => {
    const msg = problems({
      ADMIN_API_KEY: admin,
      ADMIN_API_KEY_FILE: file("admin2", admin),
      PKCS11_PIN_FILE: path.join(tmp, "nope"),
      DATABASE_PASSWORD_FILE: file("empty", "\n"),
    });
    expect(msg).toContain("ADMIN_API_KEY, ADMIN_API_KEY_FILE: set one or the other");
    expect(msg).toContain("PKCS11_PIN_FILE: cannot read the file (ENOENT)");
    expect(msg).toContain("DATABASE_PASSWORD_FILE: the file is empty");
    expect(msg).not.toContain(admin);
    expect(problems({ DATABASE_PASSWORD_FILE: file("pw2", "x") })).toContain("DATABASE_PASSWORD: only with DATABASE_URL");
    // A file holding a bad key is validated like the variable, without echoing it.
    const bad = problems({ ADMIN_API_KEY_FILE: file("bad", "not-a-key-SECRETVALUE") });
    expect(bad).toContain("ADMIN_API_KEY:");
    expect(bad).not.toContain("SECRETVALUE");
  });

  it("SOFTHSM_DIR defaults to DATA_DIR/softhsm", () => {
    expect(loadConfig({ DATA_DIR: "/x/y" }).softHsmDir).toBe("/x/y/softhsm");
    expect(loadConfig({ DATA_DIR: "/x/y", SOFTHSM_DIR: "/shared/token" }).softHsmDir).toBe("/shared/token");
  });
});
