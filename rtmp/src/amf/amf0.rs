//! AMF0 decoding and encoding ("Action Message Format -- AMF 0", Adobe, 2007).
//!
//! The AVM+ marker (0x11, §3.1) switches the following value to AMF3; each switch
//! opens fresh AMF3 reference tables, as Flash Player writes them.

use super::{amf3, AmfError, AmfValue, DecodeLimits, Reader};

const NUMBER: u8 = 0x00;
const BOOLEAN: u8 = 0x01;
const STRING: u8 = 0x02;
const OBJECT: u8 = 0x03;
const NULL: u8 = 0x05;
const UNDEFINED: u8 = 0x06;
const REFERENCE: u8 = 0x07;
const ECMA_ARRAY: u8 = 0x08;
const OBJECT_END: u8 = 0x09;
const STRICT_ARRAY: u8 = 0x0A;
const DATE: u8 = 0x0B;
const LONG_STRING: u8 = 0x0C;
const UNSUPPORTED: u8 = 0x0D;
const XML_DOCUMENT: u8 = 0x0F;
const TYPED_OBJECT: u8 = 0x10;
const AVMPLUS: u8 = 0x11;

/// Decodes every value in `data`, as found in a command or data message body.
pub fn decode_all(data: &[u8], limits: DecodeLimits) -> Result<Vec<AmfValue>, AmfError> {
    let mut decoder = Decoder {
        r: Reader::new(data, limits),
        refs: Vec::new(),
    };
    let mut out = Vec::new();
    while !decoder.r.is_empty() {
        out.push(decoder.value(0)?);
    }
    Ok(out)
}

struct Decoder<'a> {
    r: Reader<'a>,
    /// Complex values in the order they began (§2.9); `None` while still being decoded.
    refs: Vec<Option<AmfValue>>,
}

impl Decoder<'_> {
    fn value(&mut self, depth: usize) -> Result<AmfValue, AmfError> {
        self.r.check_depth(depth)?;
        self.r.charge(1)?;
        let marker = self.r.u8()?;
        Ok(match marker {
            NUMBER => AmfValue::Number(self.r.f64()?),
            BOOLEAN => AmfValue::Boolean(self.r.u8()? != 0),
            STRING => {
                let n = self.r.u16()? as usize;
                AmfValue::String(self.r.utf8(n)?)
            }
            LONG_STRING => {
                let n = self.r.u32()? as usize;
                AmfValue::String(self.r.utf8(n)?)
            }
            XML_DOCUMENT => {
                let n = self.r.u32()? as usize;
                AmfValue::Xml(self.r.utf8(n)?)
            }
            NULL => AmfValue::Null,
            UNDEFINED | UNSUPPORTED => AmfValue::Undefined,
            DATE => {
                let ms = self.r.f64()?;
                let _time_zone = self.r.u16()?; // reserved, "should be 0x0000"
                AmfValue::Date(ms)
            }
            OBJECT => {
                let slot = self.reserve();
                let props = self.properties(depth)?;
                self.fill(slot, AmfValue::Object(props))
            }
            TYPED_OBJECT => {
                let slot = self.reserve();
                let n = self.r.u16()? as usize;
                let class = self.r.utf8(n)?;
                let properties = self.properties(depth)?;
                self.fill(slot, AmfValue::TypedObject { class, properties })
            }
            ECMA_ARRAY => {
                let slot = self.reserve();
                // The count is only a hint (§2.10): the end marker is what ends it.
                let _count = self.r.u32()?;
                let props = self.properties(depth)?;
                self.fill(slot, AmfValue::EcmaArray(props))
            }
            STRICT_ARRAY => {
                let slot = self.reserve();
                let n = self.r.u32()? as usize;
                let mut items = Vec::with_capacity(self.r.capacity_for(n));
                for _ in 0..n {
                    items.push(self.value(depth + 1)?);
                }
                self.fill(slot, AmfValue::StrictArray(items))
            }
            REFERENCE => {
                let index = self.r.u16()? as usize;
                let value = self
                    .refs
                    .get(index)
                    .and_then(Option::as_ref)
                    .cloned()
                    .ok_or(AmfError::BadReference(index))?;
                self.r.charge(value.weight())?;
                value
            }
            AVMPLUS => amf3::decode_one(&mut self.r, depth)?,
            other => {
                return Err(AmfError::UnknownMarker {
                    version: 0,
                    marker: other,
                })
            }
        })
    }

    /// Key/value pairs up to the empty key followed by the object-end marker (§2.5).
    fn properties(&mut self, depth: usize) -> Result<Vec<(String, AmfValue)>, AmfError> {
        let mut props = Vec::new();
        loop {
            if self.r.remaining() < 3 {
                return Err(AmfError::MissingObjectEnd);
            }
            let n = self.r.u16()? as usize;
            if n == 0 && self.r.peek() == Some(OBJECT_END) {
                self.r.u8()?;
                return Ok(props);
            }
            let key = self.r.utf8(n)?;
            let value = self.value(depth + 1)?;
            props.push((key, value));
        }
    }

    fn reserve(&mut self) -> usize {
        self.refs.push(None);
        self.refs.len() - 1
    }

    fn fill(&mut self, slot: usize, value: AmfValue) -> AmfValue {
        if let Some(s) = self.refs.get_mut(slot) {
            *s = Some(value.clone());
        }
        value
    }
}

/// Appends the AMF0 encoding of `value` to `out`.
pub fn encode(value: &AmfValue, out: &mut Vec<u8>) {
    match value {
        AmfValue::Number(n) => {
            out.push(NUMBER);
            out.extend_from_slice(&n.to_be_bytes());
        }
        AmfValue::Boolean(b) => out.extend_from_slice(&[BOOLEAN, u8::from(*b)]),
        AmfValue::String(s) => match u16::try_from(s.len()) {
            Ok(n) => {
                out.push(STRING);
                out.extend_from_slice(&n.to_be_bytes());
                out.extend_from_slice(s.as_bytes());
            }
            Err(_) => {
                out.push(LONG_STRING);
                put_u32_len(out, s.len());
                out.extend_from_slice(s.as_bytes());
            }
        },
        AmfValue::Object(props) => {
            out.push(OBJECT);
            encode_properties(props, out);
        }
        AmfValue::TypedObject { class, properties } => {
            out.push(TYPED_OBJECT);
            put_short_string(out, class);
            encode_properties(properties, out);
        }
        AmfValue::EcmaArray(props) => {
            out.push(ECMA_ARRAY);
            put_u32_len(out, props.len());
            encode_properties(props, out);
        }
        AmfValue::StrictArray(items) => {
            out.push(STRICT_ARRAY);
            put_u32_len(out, items.len());
            for item in items {
                encode(item, out);
            }
        }
        AmfValue::Date(ms) => {
            out.push(DATE);
            out.extend_from_slice(&ms.to_be_bytes());
            out.extend_from_slice(&[0, 0]);
        }
        AmfValue::Xml(s) => {
            out.push(XML_DOCUMENT);
            put_u32_len(out, s.len());
            out.extend_from_slice(s.as_bytes());
        }
        // AMF0 has no byte array: AMF3 carries it behind the AVM+ marker.
        AmfValue::ByteArray(_) => {
            out.push(AVMPLUS);
            amf3::encode(value, out);
        }
        AmfValue::Null => out.push(NULL),
        AmfValue::Undefined => out.push(UNDEFINED),
    }
}

/// Appends the AMF0 encoding of each value in turn.
pub fn encode_all<'v>(values: impl IntoIterator<Item = &'v AmfValue>, out: &mut Vec<u8>) {
    for v in values {
        encode(v, out);
    }
}

fn encode_properties(props: &[(String, AmfValue)], out: &mut Vec<u8>) {
    for (k, v) in props {
        put_short_string(out, k);
        encode(v, out);
    }
    out.extend_from_slice(&[0, 0, OBJECT_END]);
}

/// Keys and class names are u16-prefixed; longer ones are cut at a character boundary.
fn put_short_string(out: &mut Vec<u8>, s: &str) {
    let mut end = s.len().min(u16::MAX as usize);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    out.extend_from_slice(&(end as u16).to_be_bytes());
    out.extend_from_slice(&s.as_bytes()[..end]);
}

fn put_u32_len(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(v: AmfValue) {
        let mut buf = Vec::new();
        encode(&v, &mut buf);
        assert_eq!(decode_all(&buf, DecodeLimits::default()).unwrap(), vec![v]);
    }

    #[test]
    fn round_trips_every_kind() {
        round_trip(AmfValue::Number(1.5));
        round_trip(AmfValue::Boolean(true));
        round_trip(AmfValue::String("sip:alice@example.com".into()));
        round_trip(AmfValue::String("x".repeat(70_000)));
        round_trip(AmfValue::Null);
        round_trip(AmfValue::Undefined);
        round_trip(AmfValue::Date(1.0e12));
        round_trip(AmfValue::Xml("<a/>".into()));
        round_trip(AmfValue::object([
            ("app", AmfValue::from("phone")),
            ("objectEncoding", AmfValue::Number(3.0)),
        ]));
        round_trip(AmfValue::TypedObject {
            class: "flex.Foo".into(),
            properties: vec![("a".into(), AmfValue::Null)],
        });
        round_trip(AmfValue::EcmaArray(vec![(
            "k".into(),
            AmfValue::Number(2.0),
        )]));
        round_trip(AmfValue::StrictArray(vec![
            AmfValue::Null,
            AmfValue::from("s"),
        ]));
        round_trip(AmfValue::ByteArray(vec![1, 2, 3]));
    }

    #[test]
    fn decodes_a_flash_connect_command() {
        // "connect", 1.0, {app: "phone"} as Flash Player writes it.
        let mut buf = vec![0x02, 0x00, 0x07];
        buf.extend_from_slice(b"connect");
        buf.push(0x00);
        buf.extend_from_slice(&1.0f64.to_be_bytes());
        buf.extend_from_slice(&[0x03, 0x00, 0x03]);
        buf.extend_from_slice(b"app");
        buf.extend_from_slice(&[0x02, 0x00, 0x05]);
        buf.extend_from_slice(b"phone");
        buf.extend_from_slice(&[0x00, 0x00, 0x09]);
        let v = decode_all(&buf, DecodeLimits::default()).unwrap();
        assert_eq!(v[0].as_str(), Some("connect"));
        assert_eq!(v[1].as_number(), Some(1.0));
        assert_eq!(v[2].get("app").and_then(AmfValue::as_str), Some("phone"));
    }

    #[test]
    fn references_resolve_to_earlier_objects() {
        let mut buf = Vec::new();
        encode(&AmfValue::object([("a", AmfValue::Number(1.0))]), &mut buf);
        buf.extend_from_slice(&[REFERENCE, 0, 0]);
        let v = decode_all(&buf, DecodeLimits::default()).unwrap();
        assert_eq!(v[0], v[1]);
    }

    #[test]
    fn rejects_malformed_input() {
        let limits = DecodeLimits::default();
        assert_eq!(
            decode_all(&[NUMBER, 0, 0], limits),
            Err(AmfError::Truncated)
        );
        assert_eq!(
            decode_all(&[0x04], limits),
            Err(AmfError::UnknownMarker {
                version: 0,
                marker: 4
            })
        );
        assert_eq!(
            decode_all(&[STRING, 0, 2, 0xff, 0xfe], limits),
            Err(AmfError::InvalidUtf8)
        );
        assert_eq!(
            decode_all(&[REFERENCE, 0, 0], limits),
            Err(AmfError::BadReference(0))
        );
        assert_eq!(
            decode_all(&[OBJECT, 0, 1, b'a', NULL], limits),
            Err(AmfError::MissingObjectEnd)
        );
        // A strict array claiming four billion entries must fail, not allocate.
        assert_eq!(
            decode_all(&[STRICT_ARRAY, 0xff, 0xff, 0xff, 0xff], limits),
            Err(AmfError::Truncated)
        );
    }

    #[test]
    fn bounds_depth_and_reference_expansion() {
        let deep: Vec<u8> = std::iter::repeat_n([STRICT_ARRAY, 0, 0, 0, 1], 100)
            .flatten()
            .collect();
        assert!(matches!(
            decode_all(&deep, DecodeLimits::default()),
            Err(AmfError::TooDeep(_))
        ));
        // Each array holds two references to the one before: 2^n values if unbounded.
        let mut buf = vec![STRICT_ARRAY, 0, 0, 0, 1, NULL];
        for i in 0..40u16 {
            buf.extend_from_slice(&[STRICT_ARRAY, 0, 0, 0, 2, REFERENCE]);
            buf.extend_from_slice(&i.to_be_bytes());
            buf.push(REFERENCE);
            buf.extend_from_slice(&i.to_be_bytes());
        }
        assert!(matches!(
            decode_all(&buf, DecodeLimits::default()),
            Err(AmfError::TooManyValues(_))
        ));
    }
}
