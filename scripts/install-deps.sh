#!/usr/bin/env bash
# Installs what sono builds with and the real third-party peers its tests drive,
# on Debian 12 as root. Idempotent: installs only what is missing.
#   scripts/install-deps.sh          build dependencies and test peers
#   scripts/install-deps.sh --build  build dependencies only
set -euo pipefail

build=(build-essential libclang-dev pkg-config   # speex-sys (media) runs bindgen
       libopus-dev libssl-dev                    # Opus (media) and DTLS-SRTP (str0m) for WebRTC
       haxe)                                      # builds flash_phone.swf (web/build.rs)
peers=(
  ffmpeg        # RTMP/RTMPT client; Speex (libspeex) and Nellymoser encoders and decoders
  rtmpdump      # librtmp tools
  librtmp-dev libffi-dev python3-pip  # python-librtmp, a third-party RTMP client
  baresip       # SIP user agent
  sip-tester    # SIPp
  kamailio      # SIP registrar with digest authentication
  kamailio-tls-modules  # its tls module: sono registers over SIP over TLS
  ca-certificates       # the system roots SIP over TLS verifies peers against
  haproxy       # the balancer in front of sono nodes (PROXY protocol, cluster test)
  iproute2      # network namespaces and a bridge for the cluster test
  sox espeak-ng # audio synthesis and conversion for audio-quality tests
  curl procps   # health checks and process control in scripts
  openssl       # a test certificate for RTMPS
  chromium nodejs  # the demo page in headless Chromium (playwright-core drives it)
)
python=(pesq numpy python-librtmp schemathesis)

want=("${build[@]}")
[[ "${1:-}" == "--build" ]] || want+=("${peers[@]}")

if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps.sh: run as root (it uses apt-get)" >&2
  exit 1
fi

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! command -v cargo >/dev/null; then
  echo "install-deps.sh: cargo is missing; install Rust 1.87 or newer (rustup) and run again" >&2
  exit 1
fi

if [[ "${1:-}" != "--build" ]]; then
  if ! python3 -c 'import pesq, numpy, librtmp, schemathesis' 2>/dev/null; then
    python3 -m pip install -q "${python[@]}" 2>/dev/null \
      || python3 -m pip install -q --break-system-packages "${python[@]}"
  fi
fi
if [[ "${1:-}" != "--build" ]]; then
  # Debian's nodejs comes without npm; some builds of it bring their own.
  if ! command -v npm >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm
  fi
  # playwright-core only (no browser download): it drives Debian's chromium.
  browser="$(cd "$(dirname "$0")/.." && pwd)/tests/browser"
  if [[ ! -d "$browser/node_modules/playwright-core" ]]; then
    (cd "$browser" && npm ci --no-audit --no-fund --loglevel=error)
  fi
fi
echo "dependencies ready"
