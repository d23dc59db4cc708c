// Drives the admin UI in headless Debian chromium: log in, create a domain, a user, an alias and
// (with --dns-view) a DNS record, try a <script> in a form, and save a screenshot of each page.
// Users whose local parts hold %, #, / and ? are created, and Disable/Delete are clicked on their
// rows: only that row's user may change (the caller checks the store). An API token is created
// and revoked on the dashboard (the caller checks the token no longer works). The domain page
// must show the zone-file, admin and mail records of each view, the DKIM keys and the records to
// publish elsewhere; the alias list (the caller adds 120 aliases of bulk.test) is paged and
// searched; without JavaScript a delete goes through the server's confirmation page; success
// messages follow each POST and errors sit in their row; finally every main
// page is loaded at 390 px and must not scroll sideways, and no destructive button may share a
// cell with another button.
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
// A fresh tab without a session (the login page).
const evilFree = () => browser.newPage();
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
  seen.domainAdded = await page.textContent("p.notice[role=status]");
  expect(seen.domainAdded.includes("Added example.test"), `success message: ${seen.domainAdded}`);
  await page.reload();
  expect(!(await page.isVisible("p.notice[role=status]")), "the success message is shown once");
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
  // A bad quota is reported in that user's row, which the re-rendered list shows.
  await page.fill(`${row("abc@example.test")} input[name=quota]`, "lots");
  await page.click(`${row("abc@example.test")} td[data-label=Quota] button`);
  seen.rowError = await page.textContent(`${row("abc@example.test")} .error[role=alert]`);
  expect(/quota/i.test(seen.rowError), `quota error in the row: ${seen.rowError}`);
  // Search with a % in the text: exactly that user; then a page action keeps the search.
  await page.goto(`${base}/users`);
  await page.fill("input[name=q]", "a%62");
  await page.click("form.search button");
  seen.searchUsers = await page.$$eval("tr[data-address]", (rows) => rows.map((r) => r.dataset.address));
  expect(seen.searchUsers.length === 1 && seen.searchUsers[0] === "a%62c@example.test",
         `search for a%62: ${seen.searchUsers}`);
  await page.click(`${row("a%62c@example.test")} button:has-text("Enable")`);
  await page.waitForSelector(`${row("a%62c@example.test")}:not(:has(em))`);
  expect(new URL(page.url()).searchParams.get("q") === "a%62", `search kept: ${page.url()}`);
  await page.click(`${row("a%62c@example.test")} button:has-text("Disable")`);
  await page.waitForSelector(`${row("a%62c@example.test")} em:has-text("(disabled)")`);
  seen.disabledNotice = await page.textContent("p.notice[role=status]");
  await page.goto(`${base}/users`);
  expect(!(await page.isVisible(`${row("abc@example.test")} em:has-text("(disabled)")`)),
         "abc@ is not disabled");
  seen.oddUsers = await page.$$eval("tr[data-address]", (rows) =>
    rows.map((r) => [r.dataset.address, r.textContent.includes("(disabled)")]));

  await page.goto(`${base}/aliases`);
  await page.fill("#f-source", "info@example.test");
  await page.fill("#f-destination", "alice@example.test");
  await page.click("form.card button[type=submit]");
  await page.waitForSelector("p.notice:has-text('Added alias info@example.test → alice@example.test')");
  await shot("aliases");
  // 121 aliases: 50 a page, the last page holds 21, a search finds one.
  const aliasRows = () => page.$$eval("tr[data-source]", (rows) => rows.length);
  seen.aliasPager = (await page.textContent("nav.pager")).replace(/\s+/g, " ").trim();
  expect((await aliasRows()) === 50 && seen.aliasPager.includes("1–50 of 121"), `page 1: ${seen.aliasPager}`);
  await page.click("nav.pager a[rel=next]");
  await page.click("nav.pager a[rel=next]");
  await page.waitForURL(/page=3/);
  expect((await aliasRows()) === 21, "page 3 holds the last 21 aliases");
  expect(!(await page.isVisible("nav.pager a[rel=next]")), "no page after the last");
  await page.fill("input[name=q]", "LIST117");
  await page.click("form.search button");
  seen.aliasSearch = await page.$$eval("tr[data-source]", (rows) => rows.map((r) => r.dataset.source));
  expect(seen.aliasSearch.join() === "list117@bulk.test", `alias search: ${seen.aliasSearch}`);
  await page.fill("input[name=q]", "no such alias");
  await page.click("form.search button");
  expect(await page.isVisible("p.empty:has-text('Nothing matches')"), "empty search result is said");

  // Without JavaScript, Delete first shows the server's confirmation page: Cancel keeps the
  // alias, the page's own Delete button removes it.
  await page.goto(`${base}/aliases`);
  await page.fill("#f-source", "nojs@example.test");
  await page.fill("#f-destination", "alice@example.test");
  await page.click("form.card button[type=submit]");
  await page.waitForSelector("p.notice:has-text('Added alias nojs@example.test')");
  const noJs = await browser.newContext({ javaScriptEnabled: false });
  await noJs.addCookies(await page.context().cookies());
  const plain = await noJs.newPage();
  const nojsRow = "tr[data-source='nojs@example.test']";
  await plain.goto(`${base}/aliases?q=nojs`);
  await plain.click(`${nojsRow} button:has-text("Delete")`);
  await plain.waitForURL(`${base}/aliases/delete`);
  seen.noJsConfirm = [await plain.textContent("h1"), await plain.textContent("p.confirm-question")];
  expect(seen.noJsConfirm[1] === "Delete nojs@example.test → alice@example.test?",
         `confirmation page: ${seen.noJsConfirm}`);
  await plain.click("a:has-text('Cancel')");
  await plain.waitForURL(`${base}/aliases?q=nojs`);
  expect(await plain.isVisible(nojsRow), "a cancelled delete keeps the alias");
  await plain.click(`${nojsRow} button:has-text("Delete")`);
  await plain.waitForURL(`${base}/aliases/delete`);
  await plain.click("main button:has-text('Delete')");
  await plain.waitForURL(/\/aliases/);
  await plain.goto(`${base}/aliases?q=nojs`);
  seen.noJsDeleted = !(await plain.isVisible(nojsRow));
  expect(seen.noJsDeleted, "the confirmed delete removed the alias");
  await noJs.close();

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
    // The zone file's and the mail records are listed read-only beside the editable ones.
    const fixed = `table.served[data-view="${dnsView}"]`;
    expect(await page.isVisible(`${fixed} tr[data-source=zone-file]:has-text("www.example.test.")`),
           "zone-file records are listed");
    expect(await page.isVisible(`${fixed} tr[data-source=mail]:has-text("_domainkey.example.test.")`),
           "mail records are listed");
    expect((await page.$$(`${fixed} input`)).length === 0, "read-only");
    // A bad edit is reported in the record's row.
    const rec = `table.editable[data-view="${dnsView}"] tr:has-text("browser.example.test.")`;
    await page.fill(`${rec} input[name=data]`, "not-an-address");
    await page.click(`${rec} button:has-text("Save")`);
    seen.dnsRowError = await page.textContent(`${rec} .error[role=alert]`);
    await shot("dns");

    // The domain page: every record served for the domain per view, with its source.
    await page.goto(`${base}/domains`);
    await page.click("a:has-text('example.test')");
    await page.waitForURL(`${base}/domains/example.test`);
    const served = (view) => page.$$eval(`table.served[data-view="${view}"] tr[data-source]`, (rows) =>
      rows.map((r) => [r.dataset.source, ...[...r.cells].slice(0, 4).map((c) => c.textContent.trim())]));
    seen.domainServed = { internal: await served("internal"), external: await served("external") };
    seen.dkim = await page.$$eval("#dkim tbody tr", (rows) => rows.map((r) => r.cells[0].textContent.trim()));
    seen.publish = await page.textContent("pre.records");
    seen.clientLinks = await page.$$eval("ul.links a", (as) => as.map((a) => a.getAttribute("href")));
    await shot("domain");
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
  // A password change redirects (post/redirect/get): a reload shows the page, posting nothing.
  await user.fill("#f-current", "alice-browser-pw");
  await user.fill("#f-new", "alice-browser-pw");
  await user.fill("#f-repeat", "alice-browser-pw");
  const [changed] = await Promise.all([
    user.waitForNavigation(),
    user.click("form.card button[type=submit]"),
  ]);
  seen.accountAfterPost = [changed.request().method(), new URL(user.url()).pathname,
                           await user.textContent("p.notice[role=status]")];
  expect(seen.accountAfterPost[0] === "GET" && seen.accountAfterPost[1] === "/account",
         `redirected to GET /account: ${seen.accountAfterPost}`);
  // Vacation reply through the form: the page comes back with the generated Sieve script.
  await user.check("#f-reply_enabled");
  await user.fill("#f-reply_subject", "Out of office");
  await user.fill("#f-reply_body", "Back on Monday.\n.\nGrüße \"A\"");
  await user.fill("#f-reply_startdate", "2026-12-20");
  await user.fill("#f-reply_enddate", "2027-01-06");
  await Promise.all([user.waitForNavigation(), user.click("#vacation button[type=submit]")]);
  seen.vacationNotice = await user.textContent("p.notice[role=status]");
  seen.vacationScript = await user.textContent("#generated-sieve");
  // A bad forwarding address stays in the form with its error.
  await user.check("#f-forward_enabled");
  await user.fill("#f-forward_destination", "alice@example.test");
  await Promise.all([user.waitForNavigation(), user.click("#forwarding button[type=submit]")]);
  seen.forwardError = await user.textContent("[data-field=forward_destination]");
  await user.goto(`${base}/account`);
  await user.screenshot({ path: `${outDir}/account.png`, fullPage: true });
  await user.goto(`${base}/users`);
  expect(user.url().endsWith("/login"), "a mail user cannot open admin pages");

  // At 390 px (a phone) no page is wider than the screen.
  seen.narrow = {};
  for (const [p, path] of [[page, "/"], [page, "/domains"], [page, "/domains/example.test"],
                           [page, "/users"], [page, "/aliases"], [page, "/dns"], [page, "/queue"],
                           [user, "/account"], [evilFree(), "/login"]]) {
    const tab = await p;
    await tab.setViewportSize({ width: 390, height: 844 });
    await tab.goto(`${base}${path}`);
    seen.narrow[path] = await tab.evaluate(() => document.documentElement.scrollWidth);
    // A confirmed (destructive) button shares its cell with no other button.
    const crowded = await tab.evaluate(() => [...document.querySelectorAll("td")]
      .filter((td) => td.querySelector("form[data-confirm]") && td.querySelectorAll("button").length > 1).length);
    expect(crowded === 0, `${path}: ${crowded} cells hold a destructive button beside another`);
    if (seen.narrow[path] > 390) {
      // Name the elements sticking out, innermost first, for the failure message.
      seen.narrow[`${path} overflow`] = await tab.evaluate(() => [...document.querySelectorAll("body *")]
        .filter((e) => e.getBoundingClientRect().right > 390 && ![...e.children].some((c) => c.getBoundingClientRect().right > 390))
        .slice(0, 5).map((e) => `${e.tagName}.${e.className}[${e.getAttribute("name") || ""}] ${Math.round(e.getBoundingClientRect().right)}`));
    }
  }
  await page.goto(`${base}/users`);
  await page.screenshot({ path: `${outDir}/users-390.png`, fullPage: true });
  const wide = Object.entries(seen.narrow).filter(([, w]) => typeof w !== "number" || w > 390);
  expect(wide.length === 0, `pages wider than 390 px: ${JSON.stringify(wide)}`);
  seen.ok = true;
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));
