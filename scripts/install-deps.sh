#!/usr/bin/env bash
# Installs what sono builds with and the real third-party peers its tests drive,
# on Debian 12 as root. Idempotent: installs only what is missing.
#   scripts/install-deps.sh          build dependencies and test peers
#   scripts/install-deps.sh --build  build dependencies only
set -euo pipefail

build=(build-essential libclang-dev pkg-config)   # speex-sys (media) runs bindgen
peers=(
  ffmpeg        # RTMP/RTMPT client; Speex (libspeex) and Nellymoser encoders and decoders
  rtmpdump      # librtmp tools
  librtmp-dev libffi-dev python3-pip  # python-librtmp, a third-party RTMP client
  baresip       # SIP user agent
  sip-tester    # SIPp
  kamailio      # SIP registrar with digest authentication
  sox espeak-ng # audio synthesis and conversion for audio-quality tests
  curl procps   # health checks and process control in scripts
)
python=(pesq numpy python-librtmp)

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
  if ! python3 -c 'import pesq, numpy, librtmp' 2>/dev/null; then
    python3 -m pip install -q "${python[@]}" 2>/dev/null \
      || python3 -m pip install -q --break-system-packages "${python[@]}"
  fi
fi
echo "dependencies ready"
