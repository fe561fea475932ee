// The WebRTC side of the media load tool (benches/media_load.rs --webrtc):
// headless Chromium opens CALLS WebRTC phones with sono.js, five to a page
// (the fake microphone plays CAPTURE_WAV, unprocessed), then prints
//   {"idle": true, "connectMs": [...], "offerAnswerMs": [...]}
// and leaves them idle IDLE_SECONDS (the tool measures memory per idle
// session), dials SIP_URI from every phone, prints {"ready": true} once all
// calls have media, holds them HOLD_SECONDS, hangs up and prints
//   {"done": true, "received", "lost", "jitterMs": [...]}
// from the peer connections' inbound-rtp statistics.
//
//   node webrtc_load.mjs BASE_URL CAPTURE_WAV SIP_URI CALLS IDLE_SECONDS HOLD_SECONDS
import { launchWithMicrophone } from "./chromium.mjs";

const [base, capture, uri, callsArg, idleArg, holdArg] = process.argv.slice(2);
const calls = Number(callsArg);
const timeout = 60000;

const browser = await launchWithMicrophone(capture, timeout);
try {
  // A browser holds at most six HTTP/1.1 connections to one host, and each
  // phone keeps one open for its live events: five phones per context
  // (contexts do not share their connections).
  const perPage = 5;
  const pages = [];
  for (let first = 0; first < calls; first += perPage) {
    const context = await browser.newContext();
    const page = await context.newPage();
    page.on("pageerror", (e) => console.error(String(e)));
    page.on("crash", () => console.error("a page crashed"));
    await page.goto(base + "/", { timeout });
    pages.push({ page, count: Math.min(perPage, calls - first) });
  }
  const connectMs = [];
  const offerAnswerMs = [];
  for (const { page, count } of pages) {
    const opened = await page.evaluate(async (n) => {
      const { SonoPhone } = await import("/sono.js");
      window.phones = [];
      const connectMs = [];
      // One microphone for the page's phones, as a call-centre page shares it.
      const stream = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false },
      });
      for (let i = 0; i < n; i++) {
        const phone = new SonoPhone({ transport: "webrtc", stream });
        const t0 = performance.now();
        await phone.connect();
        connectMs.push(performance.now() - t0);
        window.phones.push(phone);
      }
      const offerAnswerMs = performance
        .getEntriesByType("resource")
        .filter((e) => e.name.endsWith("/api/v1/webrtc"))
        .map((e) => e.duration);
      return { connectMs, offerAnswerMs };
    }, count);
    connectMs.push(...opened.connectMs);
    offerAnswerMs.push(...opened.offerAnswerMs);
  }
  console.log(JSON.stringify({ idle: true, connectMs, offerAnswerMs }));
  await new Promise((r) => setTimeout(r, Number(idleArg) * 1000));
  for (const { page } of pages) {
    await page.evaluate(async (target) => {
      for (const phone of window.phones) await phone.dial(target);
    }, uri);
  }
  for (const { page } of pages) {
    await page.waitForFunction(() => window.phones.every((p) => p.callStatus === 4), null, { timeout });
  }
  console.log(JSON.stringify({ ready: true }));
  await new Promise((r) => setTimeout(r, Number(holdArg) * 1000));
  let received = 0;
  let lost = 0;
  const jitterMs = [];
  for (const { page } of pages) {
    const stats = await page.evaluate(async () => {
      let received = 0;
      let lost = 0;
      const jitterMs = [];
      for (const phone of window.phones) {
        const report = await phone.peerConnection.getStats();
        report.forEach((s) => {
          if (s.type === "inbound-rtp" && s.kind === "audio") {
            received += s.packetsReceived ?? 0;
            lost += s.packetsLost ?? 0;
            jitterMs.push((s.jitter ?? 0) * 1000);
          }
        });
      }
      await Promise.all(window.phones.map((p) => p.hangup().catch(() => {})));
      for (const phone of window.phones) phone.close();
      return { received, lost, jitterMs };
    });
    received += stats.received;
    lost += stats.lost;
    jitterMs.push(...stats.jitterMs);
  }
  console.log(JSON.stringify({ done: true, received, lost, jitterMs }));
} catch (e) {
  console.log(JSON.stringify({ error: String(e) }));
  process.exitCode = 1;
} finally {
  await browser.close();
}
