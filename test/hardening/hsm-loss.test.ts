// HSM session loss under load. While 8 clients submit, the token's sessions are closed from outside
// (C_CloseAllSessions, which also logs the application out), the user is logged out (C_Logout), the
// PIN stops working for a while, and the module itself is finalized (C_Finalize: every handle the
// signer holds becomes invalid). Faults land between two bursts of requests (see the first test). The
// signer must recover on its own: a request either succeeds or is an RFC 7807 503 with Retry-After,
// never a 500; submits succeed again afterwards; the chain agrees with the database.
import { Module, SessionFlag, UserType, type Slot } from "graphene-pk11";
import fs from "node:fs";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { findSoftHsmModule } from "../../src/hsm/softhsm.js";
import { call } from "../helpers/api.js";
import { assertMatchesReference } from "../helpers/reference.js";
import { useService } from "../helpers/use-service.js";
import { DEAD, expectChainMatchesDb, startSubmitLoad, waitUntil } from "./load.js";

const TOKEN_LABEL = "intents-test";

describe("HSM session loss", () => {
  const svc = useService({ env: { BROADCAST_TIMEOUT_MS: "1000", TRACKER_INTERVAL_MS: "200" }, agent: true });
  let pin: string;
  let module: Module;

  beforeAll(async () => {
    pin = fs.readFileSync(path.join(svc.dataDir, "softhsm", "pin"), "utf8").trim();
    // A second handle on the same PKCS#11 library (same process, same token): what another
    // application thread, an admin tool or a flaky HSM would do to the signer's sessions.
    module = Module.load(findSoftHsmModule()!, "fault-injector");
  });

  const tokenSlot = (): Slot => {
    // Already initialised by the signer (graphene ignores CKR_CRYPTOKI_ALREADY_INITIALIZED); OS locking on.
    module.initialize({ flags: 2 });
    const slots = module.getSlots(true);
    for (let i = 0; i < slots.length; i++) if (slots.items(i).getToken().label === TOKEN_LABEL) return slots.items(i);
    throw new Error("token not found");
  };
  const closeAllSessions = () => tokenSlot().closeAll();
  const logout = () => {
    const session = tokenSlot().open(SessionFlag.RW_SESSION | SessionFlag.SERIAL_SESSION);
    try {
      session.login(pin, UserType.USER);
    } catch (e) {
      if (!/CKR_USER_ALREADY_LOGGED_IN/.test((e as Error).message)) throw e;
    }
    session.logout(); // login state is per application: this logs every session of the signer out
    const { state } = session.lib.C_GetSessionInfo(session.handle);
    session.close();
    expect(state).toBe(2); // CKS_RW_PUBLIC_SESSION: nobody is logged in any more
  };
  /** Changes the user PIN and logs out: the signer cannot log in again until the PIN is restored. */
  const changePin = (from: string, to: string) => {
    const session = tokenSlot().open(SessionFlag.RW_SESSION | SessionFlag.SERIAL_SESSION);
    try {
      session.login(from, UserType.USER);
    } catch (e) {
      if (!/CKR_USER_ALREADY_LOGGED_IN/.test((e as Error).message)) throw e;
    }
    session.setPin(from, to);
    session.logout();
    session.close();
  };

  const checkRefusals = (answers: Array<{ status: number; retryAfter?: string; contentType?: string; body: any }>) => {
    const bad = answers.filter((a) => a.status !== 201 && a.status !== 503);
    expect(bad.map((a) => `${a.status} ${JSON.stringify(a.body)}`)).toEqual([]);
    for (const a of answers.filter((x) => x.status === 503)) {
      expect(Number(a.retryAfter)).toBeGreaterThanOrEqual(1);
      expect(a.contentType).toMatch(/^application\/problem\+json/);
      assertMatchesReference("ProblemDetails", a.body);
      expect(a.body.code).toMatch(/^hsm_/);
      expect(a.body.detail).not.toContain(pin);
    }
  };

  it("recovers from closed sessions and a logout under load: nothing but 201 or 503, and no nonce hole", async () => {
    const load = startSubmitLoad(svc, svc.agent, 8);
    try {
      await waitUntil(() => load.count(201) >= 10, 30_000, "submits before the fault");
      for (let i = 0; i < 10; i++) {
        // SoftHSM runs in this process: closing a session while another thread signs with it would
        // crash the process, which no real HSM does to its client. So the fault lands between two
        // bursts, and the 8 clients then hit the dead sessions together.
        await load.pause();
        const before = load.count(201);
        if (i % 2 === 0) closeAllSessions();
        else logout();
        load.resume();
        await waitUntil(() => load.count(201) > before, 15_000, "a submit after the fault");
      }
      const healed = Date.now();
      await waitUntil(() => load.count(201, healed) >= 20, 30_000, "submits after the faults");
    } finally {
      await load.stop();
    }
    checkRefusals(load.answers);
    expect((await call(svc.app, "GET", "/v1/health/hsm")).body.status).toBe("healthy");
    const from = (await svc.ctx.signer.getKey("keys/local-signer"))!.address;
    await expectChainMatchesDb(svc, from);
  });

  it("an HSM that refuses to log in is an outage: 503 + Retry-After, no nonce used; it recovers when the HSM does", async () => {
    const load = startSubmitLoad(svc, svc.agent, 8);
    const other = "outage-pin-" + Math.random().toString(36).slice(2);
    let pinChanged = false;
    try {
      await waitUntil(() => load.count(201) >= 10, 30_000, "submits before the outage");
      await load.pause(); // see above: never pull sessions from under a signature in progress
      const outage = Date.now();
      changePin(pin, other);
      pinChanged = true;
      load.resume();
      await waitUntil(() => load.count(503, outage) >= 10, 15_000, "503s during the outage");
      // Nothing is signed while the HSM refuses, and no row or nonce is taken by the refused requests.
      const rowsAt = async () => Number((await svc.ctx.pool.query("SELECT count(*) AS n FROM transactions")).rows[0].n);
      const t1 = Date.now();
      const rowsBefore = await rowsAt();
      await new Promise((r) => setTimeout(r, 300));
      expect(load.count(201, t1)).toBe(0);
      expect(await rowsAt()).toBe(rowsBefore);
      expect((await call(svc.app, "GET", "/v1/health/hsm")).body.status).toBe("degraded");
      await load.pause();
      changePin(other, pin);
      pinChanged = false;
      load.resume();
      const back = Date.now();
      await waitUntil(() => load.count(201, back) >= 20, 30_000, "submits after the outage");
    } finally {
      await load.stop();
      if (pinChanged) changePin(other, pin);
    }
    checkRefusals(load.answers);
    expect(load.count(503)).toBeGreaterThanOrEqual(10);
    expect((await call(svc.app, "GET", "/v1/health/hsm")).body.status).toBe("healthy");
    const from = (await svc.ctx.signer.getKey("keys/local-signer"))!.address;
    await expectChainMatchesDb(svc, from);
  });

  it("recovers after the module is finalized (C_Finalize) between requests", async () => {
    const submit = () =>
      call(svc.app, "POST", `/v1/agents/${svc.agent.id}/transactions`, {
        token: svc.agent.token,
        body: { to: DEAD, value: "0", chain: "local" },
      });
    expect((await submit()).status).toBe(201);
    for (let round = 0; round < 3; round++) {
      tokenSlot(); // make sure our handle is initialised, then pull the library out from under the signer
      module.finalize();
      expect(() => module.getSlots(true)).toThrow(/CKR_CRYPTOKI_NOT_INITIALIZED/);
      const answers = [];
      let r = await submit();
      answers.push({
        status: r.status,
        retryAfter: r.headers["retry-after"] as string | undefined,
        contentType: r.headers["content-type"] as string | undefined,
        body: r.body,
      });
      for (let i = 0; i < 5 && r.status !== 201; i++) {
        await new Promise((res) => setTimeout(res, 200));
        r = await submit();
        answers.push({
          status: r.status,
          retryAfter: r.headers["retry-after"] as string | undefined,
          contentType: r.headers["content-type"] as string | undefined,
          body: r.body,
        });
      }
      checkRefusals(answers);
      expect(r.status).toBe(201);
    }
    expect((await call(svc.app, "GET", "/v1/health/hsm")).body.status).toBe("healthy");
    const from = (await svc.ctx.signer.getKey("keys/local-signer"))!.address;
    await expectChainMatchesDb(svc, from);
  });
});
