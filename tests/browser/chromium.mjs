// Debian's headless Chromium for sono's browser tests, through playwright-core
// (no browser download): a fake microphone playing `capture` (a WAV) with the
// permission prompt answered, WebRTC allowed on loopback (where the tests'
// traffic stays), and audio that plays without a user's gesture.
import { chromium } from "playwright-core";

export function launchWithMicrophone(capture, timeout) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-dev-shm-usage",
      "--use-fake-ui-for-media-stream",
      "--use-fake-device-for-media-stream",
      `--use-file-for-fake-audio-capture=${capture}`,
      "--allow-loopback-in-peer-connection",
      "--autoplay-policy=no-user-gesture-required",
    ],
    timeout,
  });
}
