// Drives Debian's headless Chromium (playwright-core) through sono's demo
// page with the WebRTC transport: Chromium's fake microphone plays
// CAPTURE_WAV, the page connects (POST /api/v1/webrtc), then either dials
// SIP_URI ("dial") or waits for an incoming call and accepts it ("answer").
// Once the call has media it records what the page hears for SECONDS (Web
// Audio, 48 kHz), then sends DTMF 5 (keypad, REST) and 7 (RTCDTMFSender), hangs up (or, with "peer-hangs-up",
// waits for the far end to), and prints one JSON line: what it saw, and the
// recording as base64 16-bit PCM. Exits non-zero on any failure.
//
//   node webrtc_call.mjs BASE_URL CAPTURE_WAV MODE SIP_URI SECONDS [ENDING]
//   MODE: dial (SIP_URI) | answer (registers, prints {"uri"}, accepts the
//   call to it);  ENDING: page-hangs-up (default) | peer-hangs-up |
//   tab-closes (sono.js says goodbye) | tab-vanishes (it does not) |
//   tab-freezes (prints {"freeze"}: the test stops Chromium) | then-reject (hangs up, prints {"firstCallEnded"}, rejects
//   the next call with 486) | peer-hangs-up-twice (dials again once the peer
//   has hung up: a new peer connection; the peer hangs up that one too)
import { writeFileSync } from "node:fs";
import { launchWithMicrophone } from "./chromium.mjs";

const [base, capture, mode, uri, secondsArg, ending = "page-hangs-up"] = process.argv.slice(2);
const seconds = Number(secondsArg);
const timeout = 20000;

const browser = await launchWithMicrophone(capture, timeout);
const result = { consoleErrors: [], events: [] };
try {
  const page = await browser.newPage();
  page.on("console", (m) => m.type() === "error" && result.consoleErrors.push(m.text()));
  page.on("pageerror", (e) => result.consoleErrors.push(String(e)));
  // The microphone unprocessed, so what sono sends on can be compared with
  // the file Chromium plays.
  // ATTACH_TOKEN: the page's audio is attached to that connection.
  const attach = process.env.ATTACH_TOKEN ? `&token=${encodeURIComponent(process.env.ATTACH_TOKEN)}` : "";
  // PAGE_CODEC (g722, pcmu, pcma): the page prefers G.722 or G.711 to Opus.
  const codec = process.env.PAGE_CODEC ? `&codec=${process.env.PAGE_CODEC}` : "";
  await page.goto(base + "/?processing=off" + attach + codec, { timeout });
  await page.selectOption("#transport", "webrtc");
  const t0 = Date.now();
  await page.click("#connect");
  await page.waitForFunction(
    () => document.querySelector("#connection-info").textContent.startsWith("Connected"),
    null,
    { timeout },
  );
  result.connectMs = Date.now() - t0;
  result.connectionId = await page.evaluate(() => window.sonoDemoPhone.connectionId);
  result.token = await page.evaluate(() => window.sonoDemoPhone.token);
  const dialed = Date.now();
  if (mode === "dial") {
    await page.fill("#uri", uri);
    await page.click("#dial");
  } else {
    // The page's implicit URI: the test has its peer call it.
    await page.click("#register");
    await page.waitForFunction(() => document.querySelector("#my-uri").textContent.startsWith("sip:"), null, {
      timeout,
    });
    result.uri = await page.textContent("#my-uri");
    console.log(JSON.stringify({ uri: result.uri }));
    await page.waitForSelector("#incoming.ringing", { timeout });
    result.caller = await page.textContent("#caller");
    await page.click("#accept");
  }
  await page.waitForSelector('#call-state[data-status="4"]', { timeout });
  result.dialToMediaMs = Date.now() - dialed;
  // The call's peer connection: it closes when the call ends.
  await page.evaluate(() => (window.sonoCallPc = window.sonoFirstPc = window.sonoDemoPhone.peerConnection));
  // Record what the page hears: the remote stream, through Web Audio.
  await page.evaluate(() => {
    const phone = window.sonoDemoPhone;
    const context = new AudioContext({ sampleRate: 48000 });
    const source = context.createMediaStreamSource(phone.remoteStream);
    const tap = context.createScriptProcessor(4096, 1, 1);
    window.sonoRecording = { context, chunks: [] };
    tap.onaudioprocess = (e) => window.sonoRecording.chunks.push(new Float32Array(e.inputBuffer.getChannelData(0)));
    source.connect(tap);
    tap.connect(context.destination);
  });
  await page.waitForTimeout(seconds * 1000);
  if (!ending.startsWith("peer-hangs-up")) {
    // DTMF last: while a digit plays, the page's audio to the peer pauses.
    // "5" from the keypad (REST), then "7" from the browser's own
    // RTCDTMFSender (RFC 4733 in the WebRTC audio).
    await page.click('#keys button:text("5")');
    await page.waitForTimeout(400);
    result.rtcDtmf = await page.evaluate(() => {
      const sender = window.sonoDemoPhone.peerConnection.getSenders().find((s) => s.dtmf);
      if (!sender?.dtmf?.canInsertDTMF) return false;
      sender.dtmf.insertDTMF("7", 120, 70);
      return true;
    });
    await page.waitForTimeout(600);
  }
  const pcm = await page.evaluate(() => {
    const { context, chunks } = window.sonoRecording;
    context.close();
    const total = chunks.reduce((n, c) => n + c.length, 0);
    const out = new Int16Array(total);
    let i = 0;
    for (const c of chunks) for (const x of c) out[i++] = Math.max(-32768, Math.min(32767, Math.round(x * 32767)));
    let s = "";
    const bytes = new Uint8Array(out.buffer);
    for (let j = 0; j < bytes.length; j += 0x8000) s += String.fromCharCode(...bytes.subarray(j, j + 0x8000));
    return btoa(s);
  });
  if (process.env.RECORDING) writeFileSync(process.env.RECORDING, Buffer.from(pcm, "base64"));
  result.recordedBytes = Math.floor((pcm.length * 3) / 4);
  result.stats = await page.evaluate(async () => {
    const stats = await window.sonoDemoPhone.peerConnection.getStats();
    const out = {};
    stats.forEach((s) => {
      if (s.type === "inbound-rtp" || s.type === "outbound-rtp") {
        out[s.type] = { packets: s.packetsReceived ?? s.packetsSent, lost: s.packetsLost ?? 0, codec: s.codecId };
      }
    });
    return out;
  });
  if (ending === "tab-closes" || ending === "tab-vanishes") {
    if (ending === "tab-vanishes") {
      // No goodbye: the DELETE sono.js sends on pagehide is suppressed, as
      // when a browser crashes or loses its network.
      await page.evaluate(() => (window.sonoDemoPhone.transport.location = null));
    }
    console.log(JSON.stringify({ closing: true }));
    await page.close({ runBeforeUnload: false });
    console.log(JSON.stringify({ tabClosed: true }));
  } else if (ending === "tab-freezes") {
    // The test stops Chromium's processes now (SIGSTOP) and lets them go on
    // once sono has ended the call; the page then learns the call ended.
    console.log(JSON.stringify({ freeze: true }));
    await page.waitForSelector('#call-state[data-status="0"]', { timeout: 30000 });
    result.afterHangup = await page.textContent("#call-state");
  } else {
    if (!ending.startsWith("peer-hangs-up")) await page.click("#hangup");
    await page.waitForSelector('#call-state[data-status="0"]', { timeout });
    result.afterHangup = await page.textContent("#call-state");
    // The call's peer connection, and whether the page still has one.
    const pcState = () =>
      page.evaluate(() => ({
        call: window.sonoCallPc?.connectionState ?? "none",
        now: window.sonoDemoPhone.peerConnection ? "open" : "none",
        microphone: window.sonoDemoPhone.localStream ? "open" : "none",
      }));
    result.peerConnection = await pcState();
    if (ending === "peer-hangs-up-twice") {
      // The next call: sono.js opens a new peer connection (with the
      // session's token) before it dials.
      const redialed = Date.now();
      await page.click("#dial");
      await page.waitForSelector('#call-state[data-status="4"]', { timeout });
      result.secondDialToMediaMs = Date.now() - redialed;
      result.second = await page.evaluate(async () => {
        const pc = window.sonoDemoPhone.peerConnection;
        window.sonoCallPc = pc;
        let sent = 0;
        (await pc.getStats()).forEach((s) => {
          if (s.type === "outbound-rtp") sent += s.packetsSent ?? 0;
        });
        return { state: pc.connectionState, fresh: pc !== window.sonoFirstPc, sent };
      });
      await page.waitForSelector('#call-state[data-status="0"]', { timeout });
      result.secondPeerConnection = await pcState();
    }
    if (ending === "then-reject") {
      // The line stays up for the next call; this one the page refuses.
      console.log(JSON.stringify({ firstCallEnded: true }));
      await page.waitForSelector("#incoming.ringing", { timeout });
      result.secondCaller = await page.textContent("#caller");
      await page.click("#reject");
      await page.waitForFunction(
        () => [...document.querySelectorAll("#events li")].some((li) => li.textContent.includes('"status_code":0') && li.textContent.includes("486")),
        null,
        { timeout },
      ).catch(() => {});
    }
    result.events = await page.$$eval("#events li", (lis) => lis.map((li) => li.textContent));
  }
  console.log(JSON.stringify(result));
} catch (e) {
  result.error = String(e);
  console.log(JSON.stringify(result));
  process.exitCode = 1;
} finally {
  await browser.close();
}
