/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
// (the functions passed to page.evaluate run in the browser)
// The operator console at /console, in the system's real Chromium against the real stack (PostgreSQL,
// SoftHSM, anvil): sign-in (a wrong key refused), a submitted transaction appearing without a reload,
// a transaction's attempts, audit trail and in-browser verification, a guardrail edited in the form
// (the API's validation message shown, then the next submit denied by that rule), a held transfer
// approved in the approvals view (decoded, simulated) and mined, another rejected (nothing signed),
// the audit and keys views, keyboard and labels, strict CSP with no violation, and no request leaving
// the service. Screenshots of each view at desktop and phone width are taken on the way (written to
// CONSOLE_SCREENSHOTS_DIR when set: `npm run console:screenshots` regenerates docs/console/).
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CONSOLE_CSP } from "../../src/http/console.js";
import { call, createAgent, newOperatorKey, type TestAgent } from "../helpers/api.js";
import { launchChromium } from "../helpers/browser.js";
import { useService } from "../helpers/use-service.js";

const DEAD = "0x000000000000000000000000000000000000dEaD";
const VIEWPORTS = { desktop: { width: 1280, height: 800 }, phone: { width: 390, height: 844 } } as const;

describe("operator console in Chromium", () => {
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  const svc = useService({ listen: true });
  const { op } = svc;
  let agent: TestAgent;
  const requests: string[] = [];
  const problems: string[] = [];
  const shotDir = process.env.CONSOLE_SCREENSHOTS_DIR
    ? path.resolve(process.env.CONSOLE_SCREENSHOTS_DIR)
    : fs.mkdtempSync(path.join(os.tmpdir(), "console-shots-"));
  const shots: string[] = [];

  const submit = (body: Record<string, unknown> = {}) =>
    call(svc.app, "POST", `/v1/agents/${agent.id}/transactions`, {
      token: agent.token,
      body: { to: DEAD, value: "0.001", chain: "local", ...body },
    });

  /** Both widths of the current view, for the README. */
  async function screenshot(name: string) {
    for (const [vp, size] of Object.entries(VIEWPORTS)) {
      await page.setViewportSize(size);
      await page.evaluate(() => window.scrollTo(0, 0));
      await page.waitForTimeout(150); // layout settles after the resize
      const file = path.join(shotDir, `${name}-${vp}.png`);
      await page.screenshot({ path: file });
      shots.push(file);
    }
    await page.setViewportSize(VIEWPORTS.desktop);
  }

  beforeAll(async () => {
    agent = await createAgent(svc.app, op, { name: "treasury-bot" });
    await createAgent(svc.app, op, { name: "payroll-agent", tx_daily_limit: "5", tx_max_per_day: 20 });
    browser = await launchChromium();
    context = await browser.newContext({ viewport: VIEWPORTS.desktop });
    context.on("request", (r) => requests.push(r.url()));
    page = await context.newPage();
    page.on("console", (m) => {
      if (m.type() === "error" && !/status of 40[0134]/.test(m.text())) problems.push(m.text());
    });
    page.on("pageerror", (e) => problems.push(String(e)));
  });
  afterAll(async () => {
    await browser?.close();
  });

  it("serves the page with a strict CSP and no inline script or style", async () => {
    const r = await fetch(`${svc.baseUrl}/console/`);
    expect(r.status).toBe(200);
    expect(r.headers.get("content-security-policy")).toBe(CONSOLE_CSP);
    expect(CONSOLE_CSP).toContain("script-src 'self'");
    expect(CONSOLE_CSP).not.toMatch(/unsafe-(inline|eval)/);
    expect(r.headers.get("set-cookie")).toBeNull();
    const html = await r.text();
    expect(html).not.toMatch(/<script(?![^>]*\ssrc=)[^>]*>/); // every script has a src
    expect(html).not.toMatch(/\sstyle=|\son[a-z]+=/i);
    expect((await fetch(`${svc.baseUrl}/console/../package.json`)).status).toBe(404);
    expect((await fetch(`${svc.baseUrl}/console/nope.js`)).status).toBe(404);
    expect((await fetch(`${svc.baseUrl}/console`, { redirect: "manual" })).headers.get("location")).toBe("/console/");
  });

  it("refuses a wrong operator key and an agent key", async () => {
    await page.goto(`${svc.baseUrl}/console/`);
    await screenshot("signin");
    for (const wrong of [newOperatorKey(), agent.apiKey]) {
      await page.getByLabel("Operator key").fill(wrong);
      await page.getByRole("button", { name: "Sign in" }).click();
      await expect.poll(() => page.locator("#signin-error").textContent()).toMatch(/refused|failed/i);
      expect(await page.locator("#view").isHidden()).toBe(true);
      expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
    }
  });

  it("signs in, keeps only the short-lived token in this tab, and shows a submitted transaction without reloading", async () => {
    await page.getByLabel("Operator key").fill(op);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { name: "Transactions", exact: true }).waitFor();
    const stored = await page.evaluate(() => JSON.stringify(Object.entries(sessionStorage)));
    expect(stored).not.toContain(op);
    expect(stored).toMatch(/eyJ/); // a JWT
    expect((await context.cookies()).length).toBe(0);
    await page.evaluate(() => ((window as unknown as { marker: number }).marker = 42));

    const r = await submit();
    expect(r.status).toBe(201);
    await page.locator(`tr[data-tx-id="${r.body.id}"]`).waitFor({ timeout: 15_000 });
    expect(await page.evaluate(() => (window as unknown as { marker?: number }).marker)).toBe(42); // same document: no reload
    await screenshot("transactions");
  });

  it("filters the history with the API's filters, kept in the URL", async () => {
    const other = (await call(svc.app, "GET", "/v1/agents", { token: op })).body.agents.find(
      (a: { name: string }) => a.name === "payroll-agent",
    );
    await page.getByLabel("Agent", { exact: true }).selectOption(other.id);
    await page.getByRole("button", { name: "Apply filters" }).click();
    await page.locator("#tx-rows tr.empty").waitFor();
    expect(page.url()).toContain(`agent_id=${other.id}`);
    await page.getByLabel("Agent", { exact: true }).selectOption(agent.id);
    await page.getByLabel("Status", { exact: true }).selectOption("broadcast");
    await page.getByRole("button", { name: "Apply filters" }).click();
    await page.locator("#tx-rows tr[data-tx-id]").first().waitFor();
    const shown = await page.locator("#tx-rows tr[data-tx-id]").evaluateAll((rows) => rows.map((r) => r.getAttribute("data-tx-id")));
    const api = await call(svc.app, "GET", `/v1/transactions?agent_id=${agent.id}&status=broadcast`, { token: op });
    expect(shown).toEqual(api.body.transactions.map((t: { id: string }) => t.id));
    await page.goto(`${svc.baseUrl}/console/#/transactions`);
    await page.locator("#tx-rows tr[data-tx-id]").first().waitFor();
  });

  it("opens a transaction: fields, attempts, audit trail, and its hash and signature verified in the browser", async () => {
    const r = await submit({ value: "0.002" });
    expect(r.status).toBe(201);
    await page.locator(`tr[data-tx-id="${r.body.id}"] a`).waitFor({ timeout: 15_000 });
    await page.locator(`tr[data-tx-id="${r.body.id}"] a`).click();
    await page.locator("#attempts tbody tr").first().waitFor();
    expect(await page.locator("#attempts tbody").textContent()).toContain(r.body.tx_hash);
    const fields = await page.locator("dl.fields").first().textContent();
    for (const f of ["tx_hash", r.body.tx_hash, "value", "0.002", "nonce"]) expect(fields).toContain(f);
    const trail = await page.locator("#tx-audit tbody").textContent();
    expect(trail).toContain("transaction.submit");
    const verify = await page.locator("#verify").textContent();
    expect(verify).toContain(`Hash verified: keccak256(signed_tx) = ${r.body.tx_hash}`);
    expect(verify?.toLowerCase()).toContain(`signature verified: recovers to ${r.body.from.toLowerCase()}`);
    expect(await page.locator("#h-calldata + p").textContent()).toMatch(/plain value transfer/);
    await screenshot("transaction");
  });

  it("edits a guardrail in the form: the API's validation message, then the next submit denied by that rule", async () => {
    await page.getByRole("link", { name: "Agents" }).click();
    const card = page.locator(`section.agent[data-agent-id="${agent.id}"]`);
    await card.waitFor();
    // A bad value: the form shows the API's own message for the field.
    const api = await call(svc.app, "PATCH", `/v1/agents/${agent.id}`, { token: op, body: { tx_max_value: "1.2.3" } });
    expect(api.status).toBe(400);
    await card.getByLabel("Max value per transaction (native units)").fill("1.2.3");
    await card.getByRole("button", { name: "Save guardrails" }).click();
    await expect
      .poll(() => card.locator('.field-error[data-field="tx_max_value"]').textContent())
      .toBe(`tx_max_value: ${api.body.fields.tx_max_value}`);
    expect((await call(svc.app, "GET", `/v1/agents/${agent.id}`, { token: op })).body.tx_max_value ?? null).toBeNull();

    await card.getByLabel("Max value per transaction (native units)").fill("0.0005");
    await card.getByRole("button", { name: "Save guardrails" }).click();
    await expect.poll(() => card.getByRole("status").first().textContent()).toBe("Saved.");
    expect((await call(svc.app, "GET", `/v1/agents/${agent.id}`, { token: op })).body.tx_max_value).toBe("0.0005");

    const denied = await submit({ value: "0.001" });
    expect(denied.status).toBe(403);
    expect(denied.body.guardrail.reason_code).toBe("max_value_exceeded");
    await screenshot("agents");

    // The denial is in the audit view, with its rule.
    await page.goto(`${svc.baseUrl}/console/#/audit?action=transaction.denied`);
    await page.locator("#audit-events tbody tr").first().waitFor();
    expect(await page.locator("#audit-events tbody").textContent()).toContain("max_value_exceeded");
    await expect.poll(() => page.locator("#audit-verify").textContent()).toMatch(/Chain valid|events not sealed/);
    await page.goto(`${svc.baseUrl}/console/#/audit`);
    await page.locator("#audit-events tbody tr").first().waitFor();
    await screenshot("audit");
  });

  it("rotates an agent's key (shown once; the old key stops working) and disables the agent", async () => {
    const victim = await createAgent(svc.app, op, { name: "rotate-me" });
    await page.goto(`${svc.baseUrl}/console/#/agents?r=1`);
    const card = page.locator(`section.agent[data-agent-id="${victim.id}"]`);
    await card.waitFor();
    page.once("dialog", (d) => void d.accept());
    await card.getByRole("button", { name: "Rotate key" }).click();
    await card.locator(".secret code").waitFor();
    const shownKey = await card.locator(".secret code").textContent();
    expect(shownKey).toMatch(/^ocv_/);
    const oldKey = await call(svc.app, "POST", "/v1/auth/agent-token", { body: { api_key: victim.apiKey, agent_id: victim.id } });
    expect(oldKey.status).toBe(401);
    const newKey = await call(svc.app, "POST", "/v1/auth/agent-token", { body: { api_key: shownKey, agent_id: victim.id } });
    expect(newKey.status).toBe(200);
    expect(await page.evaluate(() => JSON.stringify(Object.entries(sessionStorage)))).not.toContain(shownKey!);

    await card.getByRole("button", { name: "Disable agent" }).click();
    await page.locator(`section.agent[data-agent-id="${victim.id}"]`).getByRole("button", { name: "Enable agent" }).waitFor();
    expect((await call(svc.app, "GET", `/v1/agents/${victim.id}`, { token: op })).body.is_active).toBe(false);
    const refused = await call(svc.app, "POST", `/v1/agents/${victim.id}/transactions`, {
      token: newKey.body.access_token,
      body: { to: DEAD, value: "0.001", chain: "local" },
    });
    expect([401, 403]).toContain(refused.status);
    await page.locator(`section.agent[data-agent-id="${victim.id}"]`).getByRole("button", { name: "Enable agent" }).click();
    await page.locator(`section.agent[data-agent-id="${victim.id}"]`).getByRole("button", { name: "Disable agent" }).waitFor();
    expect((await call(svc.app, "GET", `/v1/agents/${victim.id}`, { token: op })).body.is_active).toBe(true);
  });

  it("approves a pending approval in the approvals view (decoded intent, simulation, reason) and sees it mined; rejects another", async () => {
    // A fresh agent on probation for anything above 0.0001 ETH of worst-case cost.
    const vendor = await createAgent(svc.app, op, { name: "vendor-payments" });
    const rules = await call(svc.app, "PUT", `/v1/agents/${vendor.id}/approval-rules`, {
      token: op,
      body: { approval_rules: { cost_above_wei: (10n ** 14n).toString() } },
    });
    expect(rules.status).toBe(200);
    const pay = (body: Record<string, unknown>) =>
      call(svc.app, "POST", `/v1/agents/${vendor.id}/transactions`, { token: vendor.token, body: { to: DEAD, chain: "local", ...body } });
    const txCount = async () =>
      Number((await svc.ctx.pool.query("SELECT count(*) FROM transactions WHERE agent_id = $1", [vendor.id])).rows[0].count);

    // Simulated first, so operators see its balance changes.
    const held = await pay({ value: "0.0123", simulate_first: true });
    expect(held.status).toBe(202);
    expect(held.body).toMatchObject({ status: "pending_approval", required_approvals: 1, current_approvals: 0 });
    const id = held.body.pending_approval_id as string;
    const shown = (await call(svc.app, "GET", `/v1/pending-approvals/${id}`, { token: op })).body;
    expect(shown.summary.balance_changes?.length).toBeGreaterThan(0);
    expect(await txCount()).toBe(0);

    await page.goto(`${svc.baseUrl}/console/#/transactions`);
    await page.getByRole("link", { name: "Approvals" }).click();
    const card = page.locator(`#approvals-waiting section.approval[data-approval-id="${id}"]`);
    await card.waitFor({ timeout: 15_000 });
    const text = (await card.textContent())!;
    // What, to whom, how much, why, and the quorum, expiry and payload hash it is bound to.
    for (const part of [
      "Send a transaction",
      DEAD.toLowerCase(),
      "0.0123 (12300000000000000 wei)",
      "worst-case fee",
      "cost_above_wei",
      "vendor-payments",
      "0 of 1",
      shown.payload_hash,
    ])
      expect(text).toContain(part);
    expect(text).toMatch(/expires.*in (59|60) min/);
    // The simulation's balance changes, as the API gives them.
    const simRows = await card
      .locator("table.sim tbody tr")
      .evaluateAll((rows) => rows.map((r) => [...r.children].map((c) => c.textContent)));
    expect(simRows).toEqual(
      shown.summary.balance_changes.map((c: { address: string; token_symbol: string; change: string }) => [
        c.address,
        c.token_symbol,
        c.change,
      ]),
    );
    expect(simRows.some(([addr, , change]) => addr!.toLowerCase() === DEAD.toLowerCase() && /0\.0123/.test(change!))).toBe(true);

    // Approve with a reason through the form: executed at once, its transaction shown and mined.
    await card.getByLabel("Reason (recorded with the decision)").fill("known supplier, invoice 42");
    await card.getByRole("button", { name: "Approve" }).click();
    const done = page.locator(`#approvals-decided section.approval[data-approval-id="${id}"]`);
    await done.locator(".outcome a").waitFor({ timeout: 30_000 });
    expect(await done.getAttribute("data-status")).toBe("executed");
    const after = (await call(svc.app, "GET", `/v1/pending-approvals/${id}`, { token: op })).body;
    expect(after).toMatchObject({
      status: "executed",
      current_approvals: 1,
      signatures: [{ decision: "approve", reason: "known supplier, invoice 42" }],
    });
    const txId = after.result.id as string;
    expect((await done.textContent())!).toContain("known supplier, invoice 42");
    expect((await done.textContent())!).toContain(after.result.tx_hash);
    expect(await txCount()).toBe(1);
    const receipt = await svc.ctx.clients.get(svc.ctx.chains.resolve("local")!).waitForTransactionReceipt({ hash: after.result.tx_hash });
    expect(receipt.status).toBe("success");

    // The transaction it made: open it from the card; the tracker confirms it, and the list shows it.
    await done.locator(".outcome a").click();
    await page.locator("#verify").waitFor();
    expect(await page.locator("dl.fields").first().textContent()).toContain(after.result.tx_hash);
    await expect
      .poll(async () => (await call(svc.app, "GET", `/v1/transactions/${txId}`, { token: op })).body.chain_status, { timeout: 30_000 })
      .toBe("confirmed");
    await page.goto(`${svc.baseUrl}/console/#/transactions?agent_id=${vendor.id}`);
    await expect.poll(() => page.locator(`tr[data-tx-id="${txId}"]`).textContent(), { timeout: 15_000 }).toContain("confirmed");

    // Reject another with a reason: rejected, nothing signed.
    const held2 = await pay({ value: "0.02" });
    expect(held2.status).toBe(202);
    const id2 = held2.body.pending_approval_id as string;
    await page.getByRole("link", { name: "Approvals" }).click();
    const card2 = page.locator(`#approvals-waiting section.approval[data-approval-id="${id2}"]`);
    await card2.waitFor({ timeout: 15_000 });
    expect(await card2.textContent()).toContain("Not simulated");
    await card2.getByLabel("Reason (recorded with the decision)").fill("unknown invoice");
    await card2.getByRole("button", { name: "Reject" }).click();
    const rejected = page.locator(`#approvals-decided section.approval[data-approval-id="${id2}"]`);
    await rejected.waitFor({ timeout: 15_000 });
    expect(await rejected.getAttribute("data-status")).toBe("rejected");
    expect(await rejected.textContent()).toContain("Rejected: nothing was signed.");
    expect(await rejected.textContent()).toContain("unknown invoice");
    const r2 = (await call(svc.app, "GET", `/v1/pending-approvals/${id2}`, { token: op })).body;
    expect(r2).toMatchObject({ status: "rejected", result: null, signatures: [{ decision: "reject", reason: "unknown invoice" }] });
    expect(await txCount()).toBe(1);
    expect(await card2.count()).toBe(0); // no longer offered for a decision

    // One left waiting, simulated (for the keyboard, label and contrast checks below, and the screenshot).
    expect((await pay({ value: "0.03", simulate_first: true })).status).toBe(202);
    await expect.poll(() => page.locator("#approvals-waiting section.approval").count(), { timeout: 15_000 }).toBe(1);
    await screenshot("approvals");
  });

  it("shows keys with their balances and the chains' RPC health", async () => {
    // The same answers through the API: the local chain answers, the public ones (no internet here) do not.
    const health = await call(svc.app, "GET", "/v1/admin/chains/health", { token: op });
    expect(health.status).toBe(200);
    const local = health.body.chains.find((c: { name: string }) => c.name === "local");
    expect(local).toMatchObject({ ok: true, chain_id: 31337 });
    expect(JSON.stringify(health.body)).not.toMatch(/https?:\/\//); // no RPC URL (they may carry API keys)
    expect((await call(svc.app, "GET", "/v1/admin/chains/health", { token: agent.token })).status).toBe(403);
    const balances = await call(svc.app, "GET", "/v1/admin/signing-keys/balances", { token: op });
    const bal = await call(svc.app, "GET", `/v1/agents/${agent.id}/signing-keys/local/balance`, { token: op });
    expect(balances.body.balances).toContainEqual({
      path: "keys/local-signer",
      address: bal.body.address,
      chain: "local",
      balance_wei: bal.body.balance_wei,
      balance_display: bal.body.balance_display,
    });
    expect((await call(svc.app, "GET", "/v1/admin/signing-keys/balances", { token: agent.token })).status).toBe(403);

    await page.getByRole("link", { name: "Keys & chains" }).click();
    await page.locator("#chains tbody tr").first().waitFor();
    await expect
      .poll(() => page.locator('#chains tr[data-chain="local"] .rpc').textContent(), { timeout: 15_000 })
      .toMatch(/^answering \(block \d+\)/);
    const keys = (await call(svc.app, "GET", "/v1/signing-keys", { token: op })).body.keys;
    expect(await page.locator("#keys tbody tr").count()).toBe(keys.length);
    expect(await page.locator("#keys tbody").textContent()).toContain(bal.body.address);
    await expect.poll(() => page.locator("#keys tbody").textContent()).toContain(bal.body.balance_display);
    await screenshot("keys");
  });

  it("is usable with labels and the keyboard, with readable contrast", async () => {
    for (const view of ["transactions", "agents", "approvals", "audit", "keys"]) {
      await page.goto(`${svc.baseUrl}/console/#/${view}`);
      await page.locator("#view h1").waitFor();
      await page.waitForTimeout(300);
      // Every form control has a label (or an accessible name given by aria-label).
      const unlabelled = await page.evaluate(() =>
        [...document.querySelectorAll("input, select, textarea")]
          .filter((e) => !(e as HTMLElement).closest("[hidden]"))
          .filter((e) => (e as HTMLInputElement).labels?.length === 0 && !e.getAttribute("aria-label"))
          .map((e) => e.outerHTML),
      );
      expect(unlabelled, view).toEqual([]);
      // Tab reaches every visible control, in order, and nothing traps the focus.
      const expected = await page.evaluate(
        () =>
          [...document.querySelectorAll("a[href], button, input, select, textarea")].filter(
            (e) => (e as HTMLElement).offsetParent !== null && !(e as HTMLButtonElement).disabled,
          ).length,
      );
      await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
      const reached = new Set<string>();
      for (let i = 0; i < expected + 3; i++) {
        await page.keyboard.press("Tab");
        const id = await page.evaluate(() => {
          const a = document.activeElement as HTMLElement & { __k?: string };
          if (!a || a === document.body) return null;
          a.dataset.k ??= String(Math.random());
          return a.dataset.k;
        });
        if (id) reached.add(id);
      }
      expect(reached.size, view).toBeGreaterThanOrEqual(expected);
      // Text contrast (WCAG AA, 4.5:1) of every element with its own text against its background.
      const low = await page.evaluate(() => {
        const rgb = (c: string) => (c.match(/[\d.]+/g) ?? []).map(Number);
        const lum = ([r, g, b]: number[]) => {
          const f = (v: number) => ((v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
          return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
        };
        const bg = (e: Element | null): number[] => {
          for (; e; e = e.parentElement) {
            const c = rgb(getComputedStyle(e).backgroundColor);
            if (c.length === 3 || (c.length === 4 && c[3] > 0.5)) return c.slice(0, 3);
          }
          return [255, 255, 255];
        };
        const out: string[] = [];
        for (const e of document.querySelectorAll("body *")) {
          const he = e as HTMLElement;
          if (!he.offsetParent || ![...he.childNodes].some((n) => n.nodeType === 3 && n.textContent!.trim())) continue;
          if (e.closest("svg, .sr-only, .skip")) continue;
          const a = lum(rgb(getComputedStyle(e).color).slice(0, 3));
          const b = lum(bg(e));
          const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
          if (ratio < 4.5) out.push(`${e.tagName}.${he.className}: ${ratio.toFixed(2)}`);
        }
        return out;
      });
      expect(low, view).toEqual([]);
    }
  });

  it("signs out, and the page made no request outside the service and broke no CSP rule", async () => {
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByLabel("Operator key").waitFor();
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
    expect(requests.length).toBeGreaterThan(20);
    const outside = requests.filter((u) => !u.startsWith(svc.baseUrl + "/") && !u.startsWith("data:"));
    expect(outside).toEqual([]);
    expect(problems.filter((p) => /Content Security Policy|Refused to/i.test(p))).toEqual([]);
    expect(problems).toEqual([]);
  });

  it("took a screenshot of each view at desktop and phone width (PNG of the right size)", () => {
    expect(shots.length).toBe(7 * 2);
    for (const f of shots) {
      const b = fs.readFileSync(f);
      expect(b.subarray(0, 8).toString("hex")).toBe("89504e470d0a1a0a");
      const [w, hgt] = [b.readUInt32BE(16), b.readUInt32BE(20)];
      const vp = f.endsWith("-phone.png") ? VIEWPORTS.phone : VIEWPORTS.desktop;
      expect([w, hgt]).toEqual([vp.width, vp.height]);
    }
  });
});
