// Drives Debian's headless Chromium (playwright-core, no browser download)
// through sono's demo page: connect with the REST transport to a connection
// given by id and token, dial, wait for the call's media status, hang up,
// wait for the end. Prints one JSON line with what it saw; the Rust test
// (tests/browser_demo.rs) asserts on it. Exits non-zero on any failure.
//
//   node demo_call.mjs BASE_URL CONNECTION_ID TOKEN SIP_URI SCREENSHOT.png
import { chromium } from "playwright-core";

const [base, connectionId, token, uri, screenshot] = process.argv.slice(2);
const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const timeout = 20000;

const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
  timeout,
});
const result = { consoleErrors: [], events: [] };
try {
  const page = await browser.newPage({ viewport: { width: 960, height: 760 } });
  page.on("console", (m) => m.type() === "error" && result.consoleErrors.push(m.text()));
  page.on("pageerror", (e) => result.consoleErrors.push(String(e)));
  await page.goto(base + "/", { timeout });
  result.title = await page.title();
  await page.selectOption("#transport", "rest");
  await page.fill("#connection-id", connectionId);
  await page.fill("#token", token);
  await page.click("#connect");
  await page.waitForFunction(
    () => document.querySelector("#connection-info").textContent.startsWith("Connected"),
    null,
    { timeout },
  );
  await page.fill("#uri", uri);
  await page.click("#dial");
  await page.waitForSelector('#call-state[data-status="4"]', { timeout });
  result.inCall = await page.textContent("#call-state");
  // DTMF from the keypad.
  await page.click('#keys button:text("5")');
  await page.waitForTimeout(500);
  if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });
  await page.click("#hangup");
  await page.waitForSelector('#call-state[data-status="0"]', { timeout });
  result.afterHangup = await page.textContent("#call-state");
  result.events = await page.$$eval("#events li", (lis) => lis.map((li) => li.textContent));
  console.log(JSON.stringify(result));
} catch (e) {
  result.error = String(e);
  console.log(JSON.stringify(result));
  process.exitCode = 1;
} finally {
  await browser.close();
}
