//! Reading the audio and video tags of an FLV file (Adobe FLV specification
//! v10, annex E), so tests can publish what ffmpeg encoded, and writing a
//! video-only FLV of what a test client received, for ffprobe.

use std::path::Path;

/// One audio tag: its timestamp and its body (the FLV audio header byte first).
#[derive(Debug, Clone)]
pub struct FlvAudioTag {
    pub timestamp: u32,
    pub data: Vec<u8>,
}

pub fn read_flv_audio(path: &Path) -> std::io::Result<Vec<FlvAudioTag>> {
    read_flv_tags(path, 8)
}

/// The video tags (VIDEODATA bodies) of an FLV file.
pub fn read_flv_video(path: &Path) -> std::io::Result<Vec<FlvAudioTag>> {
    read_flv_tags(path, 9)
}

/// Writes `tags` (timestamp, VIDEODATA) as a video-only FLV file.
pub fn write_flv_video(path: &Path, tags: &[(u32, Vec<u8>)]) -> std::io::Result<()> {
    let mut out = b"FLV\x01\x01\x00\x00\x00\x09".to_vec();
    out.extend_from_slice(&0u32.to_be_bytes());
    for (ts, data) in tags {
        let size = data.len() as u32;
        out.push(9);
        out.extend_from_slice(&size.to_be_bytes()[1..]);
        out.extend_from_slice(&ts.to_be_bytes()[1..]);
        out.push((ts >> 24) as u8);
        out.extend_from_slice(&[0, 0, 0]);
        out.extend_from_slice(data);
        out.extend_from_slice(&(size + 11).to_be_bytes());
    }
    std::fs::write(path, out)
}

/// The tags of one kind (8 audio, 9 video) of an FLV file.
pub fn read_flv_tags(path: &Path, wanted: u8) -> std::io::Result<Vec<FlvAudioTag>> {
    let bytes = std::fs::read(path)?;
    let bad = |m: &str| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{}: {m}", path.display()),
        )
    };
    if bytes.len() < 13 || &bytes[..3] != b"FLV" {
        return Err(bad("not an FLV file"));
    }
    let header_len = u32::from_be_bytes([bytes[5], bytes[6], bytes[7], bytes[8]]) as usize;
    let mut pos = header_len + 4;
    let mut tags = Vec::new();
    while pos + 11 <= bytes.len() {
        let kind = bytes[pos] & 0x1f;
        let size = u32::from_be_bytes([0, bytes[pos + 1], bytes[pos + 2], bytes[pos + 3]]) as usize;
        let ts = u32::from_be_bytes([
            bytes[pos + 7],
            bytes[pos + 4],
            bytes[pos + 5],
            bytes[pos + 6],
        ]);
        let body = pos + 11;
        if body + size > bytes.len() {
            return Err(bad("truncated tag"));
        }
        if kind == wanted {
            tags.push(FlvAudioTag {
                timestamp: ts,
                data: bytes[body..body + size].to_vec(),
            });
        }
        pos = body + size + 4;
    }
    Ok(tags)
}
