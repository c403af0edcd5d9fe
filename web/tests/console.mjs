// The console in headless Chromium against a running `ibstream demo` whose store holds
// a read key and an admin key. Run by tests/console.rs:
//
//   node web/tests/console.mjs --web URL --read-key KEY --admin-key KEY --shots DIR
//
// It asks the test for a simulator DropConnections by printing `drop-connections` and
// waits for `dropped` on stdin. Every wait is bounded; the first failure exits 1.
import { createInterface } from "node:readline";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { chromium } from "playwright-core";

const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, arg, i, all) => (arg.startsWith("--") ? [...pairs, [arg.slice(2), all[i + 1]]] : pairs), []),
);
for (const name of ["web", "read-key", "admin-key", "shots"]) {
  if (!args[name]) throw new Error(`--${name} is required`);
}
const WAIT = 30_000;
const web = args.web.replace(/\/$/, "");
await mkdir(args.shots, { recursive: true });

const stdin = createInterface({ input: process.stdin });
const lines = stdin[Symbol.asyncIterator]();
async function askTest(request, answer) {
  console.log(request);
  const deadline = setTimeout(() => fail(`no \`${answer}\` from the test`), WAIT);
  const { value } = await lines.next();
  clearTimeout(deadline);
  if (value?.trim() !== answer) fail(`expected \`${answer}\` from the test, got ${value}`);
}

let browser;
function fail(message) {
  console.error(`FAILED: ${message}`);
  void browser?.close();
  process.exit(1);
}
const step = (name) => console.log(`ok ${name}`);

browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  // Root in a container has no user namespace for Chromium's sandbox.
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
const page = await context.newPage();
page.setDefaultTimeout(WAIT);
const problems = [];
page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
page.on("console", (msg) => {
  if (msg.type() === "error") problems.push(`console error: ${msg.text()}`);
});
const shot = (name) => page.screenshot({ path: join(args.shots, `${name}.png`), fullPage: true });
const text = (selector) => page.locator(selector).first().innerText();

try {
  // Access: the server has keys, so the console asks for one; a read key sees no
  // admin controls.
  await page.goto(`${web}/#/status`);
  await page.getByLabel("API key").fill(args["read-key"]);
  await page.getByRole("button", { name: "Use key" }).click();
  await page.locator("#state", { hasText: "CONNECTED" }).waitFor();
  if (await page.locator("nav a", { hasText: "Settings" }).count()) fail("a read key sees the Settings page");
  if (!(await text("#who")).includes("(read)")) fail(`scope not shown: ${await text("#who")}`);
  await page.goto(`${web}/#/settings`);
  await page.locator("#state").waitFor();
  if (await page.locator("#profile-form").count()) fail("a read key reached the settings form");
  step("read key: no admin controls");

  await page.getByRole("button", { name: "Forget key" }).click();
  await page.getByLabel("API key").fill("ibs_not_a_key");
  await page.getByRole("button", { name: "Use key" }).click();
  await page.locator("#api-key-error", { hasText: "refused" }).waitFor();
  await page.getByLabel("API key").fill(args["admin-key"]);
  await page.getByRole("button", { name: "Use key" }).click();
  await page.locator("nav a", { hasText: "Settings" }).waitFor();
  step("admin key after a refused one");

  // Status reaches CONNECTED, with the gateway's facts and the event history.
  await page.goto(`${web}/#/status`);
  await page.locator("#state", { hasText: "CONNECTED" }).waitFor();
  await page.waitForFunction(() => /\d+\.\d ms/.test(document.querySelector(".facts")?.textContent ?? ""));
  await page.locator("tbody tr", { hasText: "CONNECTED" }).first().waitFor();
  await shot("status");
  step("status CONNECTED");

  // Keyboard: the skip link, then the page links, are reachable with Tab.
  await page.reload();
  await page.locator("#state", { hasText: "CONNECTED" }).waitFor();
  await page.keyboard.press("Tab");
  if ((await page.evaluate(() => document.activeElement?.textContent)) !== "Skip to content") fail("Tab does not reach the skip link first");
  await page.keyboard.press("Tab");
  if ((await page.evaluate(() => document.activeElement?.closest("nav") !== null)) !== true) fail("Tab does not reach the navigation");
  step("keyboard reaches the navigation");

  // Settings: an invalid port shows the server's message beside the field and changes
  // nothing.
  await page.goto(`${web}/#/settings`);
  const port = page.getByLabel("Port", { exact: true });
  await port.waitFor();
  const before = await port.inputValue();
  await port.fill("70000");
  await page.getByRole("button", { name: "Save" }).click();
  await page.locator("#f-port-error", { hasText: "65535" }).waitFor();
  if ((await port.getAttribute("aria-invalid")) !== "true") fail("the port is not marked invalid");
  await page.goto(`${web}/#/status`);
  await page.goto(`${web}/#/settings`);
  await port.waitFor();
  const after = await port.inputValue();
  if (after !== before) fail(`a refused update changed the port: ${before} → ${after}`);
  step("invalid port refused beside the field");

  // A client id the wire cannot carry is refused before it could wrap into another.
  const clientId = page.getByLabel("Client id");
  const idBefore = await clientId.inputValue();
  await clientId.fill("99999999999");
  await page.getByRole("button", { name: "Save" }).click();
  await page.locator("#f-client_id-error", { hasText: "whole number" }).waitFor();
  await page.goto(`${web}/#/status`);
  await page.goto(`${web}/#/settings`);
  await clientId.waitFor();
  if ((await clientId.inputValue()) !== idBefore) fail("an out-of-range client id was saved");
  step("out-of-range client id refused");

  // Test connection: the typed result with its round trip.
  await page.getByRole("button", { name: "Test connection" }).click();
  await page.locator("#test-ok").waitFor();
  if (!/\d+\.\d ms/.test(await text("#test-rtt"))) fail(`no round trip: ${await text("#test-result")}`);
  await shot("settings");

  // Credentials are write-only: the page only says whether they are set.
  await page.locator("#creds-state", { hasText: "not set" }).waitFor();
  await page.getByLabel("Username").fill("demo-user");
  await page.getByLabel("Password").fill("demo-secret-password");
  await page.getByRole("button", { name: "Store" }).click();
  await page.locator("#creds-state strong", { hasText: /^set$/ }).waitFor();
  if ((await page.getByLabel("Password").inputValue()) !== "") fail("the password stays in the form after storing it");
  page.once("dialog", (dialog) => void dialog.accept());
  await page.getByRole("button", { name: "Clear" }).click();
  await page.locator("#creds-state", { hasText: "not set" }).waitFor();
  step("credentials stored write-only and cleared");

  // A new profile takes the defaults and is listed, not active.
  await page.getByLabel("New profile").fill("paper");
  await page.getByRole("button", { name: "Create" }).click();
  await page.locator(".profiles li", { hasText: "paper" }).getByRole("button", { name: "Activate" }).waitFor();
  await page.locator("#edit-heading", { hasText: "Profile paper" }).waitFor();
  step("profile created");
  step("test connection round trip");

  // Reconnect asks first while the session is live: dismissed, nothing happens.
  await page.locator("#session-state", { hasText: "CONNECTED" }).waitFor();
  let asked = "";
  page.once("dialog", (dialog) => {
    asked = dialog.message();
    void dialog.dismiss();
  });
  await page.getByRole("button", { name: "Reconnect" }).click();
  if (!asked.includes("live IB session")) fail(`Reconnect did not ask first: ${asked}`);
  if ((await text("#settings-notice")).includes("Reconnect")) fail("a dismissed Reconnect ran");
  page.once("dialog", (dialog) => void dialog.accept());
  await page.getByRole("button", { name: "Reconnect" }).click();
  await page.locator("#settings-notice", { hasText: "Reconnect: done." }).waitFor();
  await page.locator("#session-state", { hasText: "CONNECTED" }).waitFor();
  step("reconnect confirmed first");

  // Quotes: AAPL ticks, a symbol is added through the search and removed again.
  await page.goto(`${web}/#/quotes`);
  const aapl = page.locator('tr[data-symbol="AAPL"]');
  const lastOf = (row) => row.locator("td").nth(2);
  await page.waitForFunction(() => /^\d+\.\d\d$/.test(document.querySelector('tr[data-symbol="AAPL"] td:nth-of-type(3)')?.textContent ?? ""));
  const first = await lastOf(aapl).innerText();
  await page.waitForFunction(
    (seen) => {
      const cells = [...document.querySelectorAll('tr[data-symbol="AAPL"] td.num')].slice(0, 3).map((c) => c.textContent);
      return cells.join("|") !== seen;
    },
    [...(await aapl.locator("td.num").allInnerTexts())].slice(0, 3).join("|"),
  );
  step(`AAPL ticks (last ${first})`);
  await page.getByLabel("Add symbol").fill("NVDA");
  await page.getByRole("button", { name: /^NVDA/ }).click();
  const nvda = page.locator('tr[data-symbol="NVDA"]');
  await page.waitForFunction(() => /^\d+\.\d\d$/.test(document.querySelector('tr[data-symbol="NVDA"] td:nth-of-type(3)')?.textContent ?? ""));
  await shot("quotes");
  await page.getByRole("button", { name: "Remove NVDA" }).click();
  await nvda.waitFor({ state: "detached" });
  step("symbol added through the search and removed");

  // A dropped gateway connection marks the quotes stale; they recover.
  await page.evaluate(() => {
    window.staleSeen = false;
    const grid = document.getElementById("quotes");
    new MutationObserver(() => {
      if (grid.querySelector('tr[data-symbol="AAPL"].stale .badge.stale')) window.staleSeen = true;
    }).observe(grid, { subtree: true, childList: true, attributes: true });
  });
  await askTest("drop-connections", "dropped");
  await page.waitForFunction(() => window.staleSeen === true);
  step("quotes stale after the drop");
  await page.waitForFunction(() => {
    const row = document.querySelector('tr[data-symbol="AAPL"]');
    return row && !row.classList.contains("stale") && row.querySelector(".badge.live");
  });
  const resumed = [...(await aapl.locator("td.num").allInnerTexts())].slice(0, 3).join("|");
  await page.waitForFunction(
    (seen) => [...document.querySelectorAll('tr[data-symbol="AAPL"] td.num')].slice(0, 3).map((c) => c.textContent).join("|") !== seen,
    resumed,
  );
  step("quotes recovered");

  // Option chain: SPY with Greeks, their source marked, the money line drawn.
  await page.goto(`${web}/#/chain`);
  await page.locator("#expiration option").first().waitFor({ state: "attached" });
  await page.waitForFunction(() => {
    const rows = [...document.querySelectorAll("#chain tbody tr")];
    // Delta of a call (4th cell) and of a put (4th after the strike).
    return rows.length >= 4 && rows.some((r) => /^-?0\.\d{3}$/.test(r.children[3]?.textContent ?? "") && /^-0\.\d{3}$/.test(r.children[12]?.textContent ?? ""));
  });
  await page.locator("#chain tr.money-line").waitFor();
  await page.locator('#chain[data-complete="true"]').waitFor();
  const marked = await page.locator("#chain td[title]").first().getAttribute("title");
  if (!/IB's model|computed/.test(marked ?? "")) fail(`Greeks' source not marked: ${marked}`);
  await shot("chain");
  step("SPY chain shows Greeks");

  // Subscriptions: the instruments held, with lines and rate.
  await page.goto(`${web}/#/subscriptions`);
  await page.locator("#subscriptions tbody tr th", { hasText: "AAPL" }).first().waitFor();
  await page.locator("#limits", { hasText: "Lines used" }).waitFor();
  await shot("subscriptions");
  step("subscriptions listed");

  // A narrow window: no page spills sideways (wide tables scroll inside their region).
  await page.setViewportSize({ width: 420, height: 800 });
  for (const [path, ready] of [
    ["status", "#state"],
    ["quotes", 'tr[data-symbol="AAPL"]'],
    ["chain", "#chain tbody tr"],
    ["subscriptions", "#subscriptions tbody tr"],
    ["settings", "#profile-form"],
  ]) {
    await page.goto(`${web}/#/${path}`);
    await page.locator(ready).first().waitFor();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    if (overflow > 1) fail(`${path} is ${overflow}px wider than a narrow window`);
    await shot(`${path}-narrow`);
  }
  step("narrow window");

  if (problems.length) fail(problems.join("\n"));
  console.log("console: all steps passed");
} catch (err) {
  await shot("failure").catch(() => {});
  fail(err instanceof Error ? err.stack ?? err.message : String(err));
}
await browser.close();
process.exit(0);
