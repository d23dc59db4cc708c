// Drives the admin UI in headless Debian chromium: log in, create a domain, a user, an alias and
// (with --dns-view) a DNS record, try a <script> in a form, and save a screenshot of each page.
// Users whose local parts hold %, #, / and ? are created, and Disable/Delete are clicked on their
// rows: only that row's user may change (the caller checks the store). An API token is created
// and revoked on the dashboard (the caller checks the token no longer works).
// Usage: node admin.mjs BASE_URL ADMIN_PASSWORD SCREENSHOT_DIR [--dns-view VIEW]
// Prints one JSON object with what it saw; exits non-zero on any failed expectation.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";

const [base, password, outDir, ...rest] = process.argv.slice(2);
const dnsView = rest[0] === "--dns-view" ? rest[1] : null;
mkdirSync(outDir, { recursive: true });

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});
const seen = {};
function expect(cond, what) {
  if (!cond) throw new Error(`expectation failed: ${what}`);
}
try {
  const page = await browser.newPage();
  // Confirmations are accepted, except when a test sets dismissNext to click "Cancel" once.
  let dismissNext = false;
  page.on("dialog", (d) => {
    seen.lastDialog = d.message();
    if (dismissNext) {
      dismissNext = false;
      return d.dismiss();
    }
    return d.accept();
  });
  const shot = (name) => page.screenshot({ path: `${outDir}/${name}.png`, fullPage: true });

  await page.goto(`${base}/`);
  expect(page.url().endsWith("/login"), "unauthenticated dashboard redirects to /login");
  await shot("login");

  // Another site posting to the login form (login CSRF) is refused, even though this browser
  // holds the login form's cookie.
  const evil = await browser.newPage();
  await evil.route("http://evil.test/**", (route) => route.fulfill({
    contentType: "text/html",
    body: `<form method="post" action="${base}/login"><input name="csrf" value="${"0".repeat(64)}">
           <input name="username" value="admin"><input name="password" value="${password}"></form>
           <script>document.forms[0].submit()</script>`,
  }));
  const [crossSite] = await Promise.all([
    evil.waitForResponse((r) => r.url() === `${base}/login` && r.request().method() === "POST"),
    evil.goto("http://evil.test/"),
  ]);
  seen.crossSiteLogin = crossSite.status();
  await evil.close();
  await page.fill("#f-username", "admin");
  await page.fill("#f-password", "not the password");
  await page.click("button[type=submit]");
  expect(await page.isVisible("text=Wrong name or password"), "wrong password is reported");
  await page.fill("#f-password", password);
  await page.click("button[type=submit]");
  await page.waitForURL(`${base}/`);
  expect(await page.isVisible("h1:has-text('Dashboard')"), "dashboard after login");
  await shot("dashboard");

  await page.goto(`${base}/domains`);
  await page.fill("#f-name", "example.test");
  await page.click("form.card button[type=submit]");
  await page.waitForSelector("td:has-text('example.test')");
  await page.fill("#f-name", "not a domain!");
  await page.click("form.card button[type=submit]");
  seen.domainError = await page.textContent(".error[data-field=name]");
  await shot("domains");

  await page.goto(`${base}/users`);
  await page.fill("#f-address", "alice@example.test");
  await page.fill("#f-password", "alice-browser-pw");
  await page.fill("#f-quota", "100M");
  await page.click("form.card button[type=submit]");
  await page.waitForSelector("td:has-text('alice@example.test')");
  await shot("users");

  // Row actions on addresses that must be percent-encoded in the form actions.
  const row = (address) => `tr[data-address="${address}"]`;
  for (const local of ["a%62c", "abc", "h#x", "s/t", "q?x"]) {
    await page.fill("#f-address", `${local}@example.test`);
    await page.fill("#f-password", "odd-pw");
    await page.fill("#f-quota", "");
    await page.click("form.card button[type=submit]");
    await page.waitForSelector(row(`${local}@example.test`));
  }
  for (const local of ["a%62c", "s/t"]) {
    const r = row(`${local}@example.test`);
    await page.click(`${r} button:has-text("Disable")`);
    await page.waitForSelector(`${r} em:has-text("(disabled)")`);
  }
  for (const local of ["h#x", "q?x"]) {
    const r = row(`${local}@example.test`);
    await page.click(`${r} button:has-text("Delete")`);
    await page.waitForSelector(r, { state: "detached" });
  }
  expect(await page.isVisible(row("abc@example.test")), "abc@ is still listed");
  expect(!(await page.isVisible(`${row("abc@example.test")} em:has-text("(disabled)")`)),
         "abc@ is not disabled");
  seen.oddUsers = await page.$$eval("tr[data-address]", (rows) =>
    rows.map((r) => [r.dataset.address, r.textContent.includes("(disabled)")]));

  await page.goto(`${base}/aliases`);
  await page.fill("#f-source", "info@example.test");
  await page.fill("#f-destination", "alice@example.test");
  await page.click("form.card button[type=submit]");
  await page.waitForSelector("td:has-text('info@example.test')");
  await shot("aliases");

  if (dnsView) {
    await page.goto(`${base}/dns`);
    await page.selectOption("#f-view", dnsView);
    await page.fill("#f-name", "browser.example.test");
    await page.selectOption("#f-rtype", "A");
    await page.fill("#f-ttl", "60");
    await page.fill("#f-data", "10.9.9.9");
    await page.click("form.card button[type=submit]");
    await page.waitForSelector("td:has-text('browser.example.test.')");
    // A TXT record holding markup is shown as text, never run.
    await page.selectOption("#f-view", dnsView);
    await page.fill("#f-name", "xss.example.test");
    await page.selectOption("#f-rtype", "TXT");
    await page.fill("#f-data", '"<script>window.pwned=1</script>"');
    await page.click("form.card button[type=submit]");
    await page.waitForSelector("td:has-text('xss.example.test.')");
    seen.pwned = await page.evaluate(() => window.pwned === 1);
    expect(!seen.pwned, "markup in a record is escaped");
    await shot("dns");
  }

  await page.goto(`${base}/queue`);
  await shot("queue");
  await page.goto(`${base}/`);
  await shot("dashboard-after");

  // API tokens: create a metrics-only token with an expiry, then revoke it, once cancelling the
  // confirmation (nothing happens) and once confirming it.
  await page.fill("#f-label", "browser-metrics");
  await page.selectOption("#f-scope", "metrics");
  await page.fill("#f-expires", "30d");
  await page.click("form.card button:has-text('Create API token')");
  seen.browserToken = (await page.textContent("#new-token")).trim();
  const tokenRow = "#tokens tr:has-text('browser-metrics')";
  await page.waitForSelector(tokenRow);
  seen.tokenRow = await page.$$eval(`${tokenRow} td`, (tds) => tds.map((td) => td.textContent.trim()));
  expect(seen.tokenRow[1] === "metrics" && /^in (29|30) d$/.test(seen.tokenRow[5]),
         `token row shows scope and expiry: ${seen.tokenRow}`);
  expect(!(await page.textContent("#tokens")).includes(seen.browserToken), "secrets are not listed");
  dismissNext = true;
  await page.click(`${tokenRow} button:has-text("Revoke")`);
  expect(await page.isVisible(tokenRow), "a cancelled revoke keeps the token");
  seen.revokeDialog = seen.lastDialog;
  await page.click(`${tokenRow} button:has-text("Revoke")`);
  await page.waitForSelector(tokenRow, { state: "detached" });

  // The mail user's self-service page.
  const user = await browser.newPage();
  await user.goto(`${base}/account`);
  await user.fill("#f-address", "alice@example.test");
  await user.fill("#f-password", "alice-browser-pw");
  await user.click("button[type=submit]");
  await user.waitForSelector("#account-address");
  await user.screenshot({ path: `${outDir}/account.png`, fullPage: true });
  await user.goto(`${base}/users`);
  expect(user.url().endsWith("/login"), "a mail user cannot open admin pages");
  seen.ok = true;
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));
