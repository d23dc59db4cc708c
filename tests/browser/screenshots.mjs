// Photographs the main admin pages for the README (run through screenshots.sh, by hand): logs in
// to a fresh server, adds demo data through the UI, and saves PNGs at 1280 px (users also at
// 390 px) into OUT_DIR. Each picture is cut at 1100 px height to keep the files small.
// Usage: node screenshots.mjs BASE_URL ADMIN_PASSWORD OUT_DIR
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";

const [base, password, outDir] = process.argv.slice(2);
mkdirSync(outDir, { recursive: true });
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.on("dialog", (d) => d.accept());
  const shot = async (name) => {
    const height = Math.min(1100, await page.evaluate(() => document.documentElement.scrollHeight));
    await page.screenshot({ path: `${outDir}/${name}.png`, fullPage: true, clip: { x: 0, y: 0, width: page.viewportSize().width, height } });
  };
  const submit = (form = "form.card") => Promise.all([page.waitForNavigation(), page.click(`${form} button[type=submit]`)]);

  await page.goto(`${base}/login`);
  await page.fill("#f-username", "admin");
  await page.fill("#f-password", password);
  await submit();

  await page.goto(`${base}/domains`);
  for (const d of ["example.test", "example.org"]) {
    await page.fill("#f-name", d);
    await submit();
  }
  await shot("domains");

  await page.goto(`${base}/users`);
  for (const [a, q] of [["alice@example.test", "2G"], ["bob@example.test", "500M"], ["carol@example.test", ""],
                        ["dave@example.org", "1G"], ["erin@example.org", ""]]) {
    await page.fill("#f-address", a);
    await page.fill("#f-password", `${a}-demo-password`);
    await page.fill("#f-quota", q);
    await submit();
  }
  await page.click('tr[data-address="carol@example.test"] button:has-text("Disable")');
  await page.waitForSelector('tr[data-address="carol@example.test"] em');
  await shot("users");

  await page.goto(`${base}/aliases`);
  for (const [s, d] of [["info@example.test", "alice@example.test"], ["postmaster@example.test", "alice@example.test"],
                        ["sales@example.test", "bob@example.test"], ["@example.org", "dave@example.org"]]) {
    await page.fill("#f-source", s);
    await page.fill("#f-destination", d);
    await submit();
  }
  await shot("aliases");

  await page.goto(`${base}/dns`);
  await page.selectOption("#f-view", "internal");
  await page.fill("#f-name", "intranet.example.test");
  await page.selectOption("#f-rtype", "A");
  await page.fill("#f-ttl", "300");
  await page.fill("#f-data", "192.168.10.40");
  await submit();
  await shot("dns");

  await page.goto(`${base}/domains/example.test`);
  await shot("domain");
  await page.goto(`${base}/queue`);
  await shot("queue");
  await page.goto(`${base}/`);
  await shot("dashboard");

  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(`${base}/users`);
  await shot("users-390");
} finally {
  await browser.close();
}
