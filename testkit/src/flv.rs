//! Reading the audio tags of an FLV file (Adobe FLV specification v10, annex E),
//! so tests can publish what ffmpeg encoded.

use std::path::Path;

/// One audio tag: its timestamp and its body (the FLV audio header byte first).
#[derive(Debug, Clone)]
pub struct FlvAudioTag {
    pub timestamp: u32,
    pub data: Vec<u8>,
}

pub fn read_flv_audio(path: &Path) -> std::io::Result<Vec<FlvAudioTag>> {
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
        if kind == 8 {
            tags.push(FlvAudioTag {
                timestamp: ts,
                data: bytes[body..body + size].to_vec(),
            });
        }
        pos = body + size + 4;
    }
    Ok(tags)
}
