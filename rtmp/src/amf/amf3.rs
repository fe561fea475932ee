//! AMF3 decoding and encoding ("Action Message Format -- AMF 3", Adobe, 2013).
//!
//! Only reached from AMF0 through the AVM+ marker, which is how Flash Player sends
//! the arguments of `NetConnection.call` when its object encoding is AMF3. The
//! encoder writes no references; the decoder follows all three reference tables
//! (strings, objects, traits; §2.2) and charges copied values against the budget.

use super::{AmfError, AmfValue, Reader};

const UNDEFINED: u8 = 0x00;
const NULL: u8 = 0x01;
const FALSE: u8 = 0x02;
const TRUE: u8 = 0x03;
const INTEGER: u8 = 0x04;
const DOUBLE: u8 = 0x05;
const STRING: u8 = 0x06;
const XML_DOC: u8 = 0x07;
const DATE: u8 = 0x08;
const ARRAY: u8 = 0x09;
const OBJECT: u8 = 0x0A;
const XML: u8 = 0x0B;
const BYTE_ARRAY: u8 = 0x0C;
const VECTOR_INT: u8 = 0x0D;
const VECTOR_UINT: u8 = 0x0E;
const VECTOR_DOUBLE: u8 = 0x0F;
const VECTOR_OBJECT: u8 = 0x10;
const DICTIONARY: u8 = 0x11;

/// Largest and smallest integers the 29-bit integer type holds (§1.3.1).
const INT29_MAX: i64 = (1 << 28) - 1;
const INT29_MIN: i64 = -(1 << 28);

#[derive(Clone)]
struct Traits {
    class: String,
    sealed: Vec<String>,
    dynamic: bool,
}

/// Decodes one AMF3 value from `r`, with reference tables of its own.
pub(crate) fn decode_one(r: &mut Reader<'_>, depth: usize) -> Result<AmfValue, AmfError> {
    let mut d = Decoder {
        r,
        strings: Vec::new(),
        objects: Vec::new(),
        traits: Vec::new(),
    };
    d.value(depth)
}

struct Decoder<'r, 'a> {
    r: &'r mut Reader<'a>,
    strings: Vec<String>,
    objects: Vec<Option<AmfValue>>,
    traits: Vec<Traits>,
}

impl Decoder<'_, '_> {
    fn value(&mut self, depth: usize) -> Result<AmfValue, AmfError> {
        self.r.check_depth(depth)?;
        self.r.charge(1)?;
        let marker = self.r.u8()?;
        Ok(match marker {
            UNDEFINED => AmfValue::Undefined,
            NULL => AmfValue::Null,
            FALSE => AmfValue::Boolean(false),
            TRUE => AmfValue::Boolean(true),
            INTEGER => AmfValue::Number(f64::from(self.i29()?)),
            DOUBLE => AmfValue::Number(self.r.f64()?),
            STRING => AmfValue::String(self.string()?),
            XML_DOC | XML => match self.inline_or_ref()? {
                Err(v) => v,
                Ok(n) => {
                    let s = self.r.utf8(n)?;
                    self.add_object(AmfValue::Xml(s))
                }
            },
            DATE => match self.inline_or_ref()? {
                Err(v) => v,
                Ok(_) => {
                    let ms = self.r.f64()?;
                    self.add_object(AmfValue::Date(ms))
                }
            },
            BYTE_ARRAY => match self.inline_or_ref()? {
                Err(v) => v,
                Ok(n) => {
                    let b = self.r.bytes(n)?.to_vec();
                    self.add_object(AmfValue::ByteArray(b))
                }
            },
            ARRAY => match self.inline_or_ref()? {
                Err(v) => v,
                Ok(dense) => self.array(dense, depth)?,
            },
            OBJECT => self.object(depth)?,
            VECTOR_INT | VECTOR_UINT | VECTOR_DOUBLE | VECTOR_OBJECT => {
                match self.inline_or_ref()? {
                    Err(v) => v,
                    Ok(n) => self.vector(marker, n, depth)?,
                }
            }
            DICTIONARY => match self.inline_or_ref()? {
                Err(v) => v,
                Ok(n) => self.dictionary(n, depth)?,
            },
            other => {
                return Err(AmfError::UnknownMarker {
                    version: 3,
                    marker: other,
                })
            }
        })
    }

    /// U29 (§1.3.1): 7 bits in each of up to three bytes, then 8 bits in a fourth.
    fn u29(&mut self) -> Result<u32, AmfError> {
        let mut value = 0u32;
        for _ in 0..3 {
            let b = self.r.u8()?;
            value = (value << 7) | u32::from(b & 0x7f);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Ok((value << 8) | u32::from(self.r.u8()?))
    }

    fn i29(&mut self) -> Result<i32, AmfError> {
        let v = self.u29()?;
        // Sign-extend the 29-bit two's complement value.
        Ok(((v << 3) as i32) >> 3)
    }

    /// Reads a U29 header whose low bit says inline (`Ok(len)`) or a reference to the
    /// object table (`Err(value)`, already resolved).
    fn inline_or_ref(&mut self) -> Result<Result<usize, AmfValue>, AmfError> {
        let h = self.u29()?;
        if h & 1 == 0 {
            return Ok(Err(self.object_ref((h >> 1) as usize)?));
        }
        Ok(Ok((h >> 1) as usize))
    }

    fn object_ref(&mut self, index: usize) -> Result<AmfValue, AmfError> {
        let v = self
            .objects
            .get(index)
            .and_then(Option::as_ref)
            .cloned()
            .ok_or(AmfError::BadReference(index))?;
        self.r.charge(v.weight())?;
        Ok(v)
    }

    fn string(&mut self) -> Result<String, AmfError> {
        let h = self.u29()?;
        if h & 1 == 0 {
            let index = (h >> 1) as usize;
            return self
                .strings
                .get(index)
                .cloned()
                .ok_or(AmfError::BadReference(index));
        }
        let s = self.r.utf8((h >> 1) as usize)?;
        // The empty string is never sent by reference (§1.3.2).
        if !s.is_empty() {
            self.strings.push(s.clone());
        }
        Ok(s)
    }

    fn add_object(&mut self, v: AmfValue) -> AmfValue {
        self.objects.push(Some(v.clone()));
        v
    }

    fn reserve(&mut self) -> usize {
        self.objects.push(None);
        self.objects.len() - 1
    }

    fn fill(&mut self, slot: usize, v: AmfValue) -> AmfValue {
        if let Some(s) = self.objects.get_mut(slot) {
            *s = Some(v.clone());
        }
        v
    }

    fn array(&mut self, dense: usize, depth: usize) -> Result<AmfValue, AmfError> {
        let slot = self.reserve();
        let mut assoc = Vec::new();
        loop {
            let key = self.string()?;
            if key.is_empty() {
                break;
            }
            let v = self.value(depth + 1)?;
            assoc.push((key, v));
        }
        let mut items = Vec::with_capacity(self.r.capacity_for(dense));
        for _ in 0..dense {
            items.push(self.value(depth + 1)?);
        }
        let v = if assoc.is_empty() {
            AmfValue::StrictArray(items)
        } else {
            let mut all: Vec<(String, AmfValue)> = items
                .into_iter()
                .enumerate()
                .map(|(i, v)| (i.to_string(), v))
                .collect();
            all.extend(assoc);
            AmfValue::EcmaArray(all)
        };
        Ok(self.fill(slot, v))
    }

    fn object(&mut self, depth: usize) -> Result<AmfValue, AmfError> {
        let h = self.u29()?;
        if h & 1 == 0 {
            return self.object_ref((h >> 1) as usize);
        }
        let slot = self.reserve();
        let traits = if h & 2 == 0 {
            let index = (h >> 2) as usize;
            self.traits
                .get(index)
                .cloned()
                .ok_or(AmfError::BadReference(index))?
        } else {
            let externalizable = h & 4 != 0;
            let dynamic = h & 8 != 0;
            let count = (h >> 4) as usize;
            let class = self.string()?;
            if externalizable {
                return Err(AmfError::Externalizable(class));
            }
            let mut sealed = Vec::with_capacity(self.r.capacity_for(count));
            for _ in 0..count {
                sealed.push(self.string()?);
            }
            let t = Traits {
                class,
                sealed,
                dynamic,
            };
            self.traits.push(t.clone());
            t
        };
        let mut props = Vec::with_capacity(self.r.capacity_for(traits.sealed.len()));
        for name in &traits.sealed {
            let v = self.value(depth + 1)?;
            props.push((name.clone(), v));
        }
        if traits.dynamic {
            loop {
                let key = self.string()?;
                if key.is_empty() {
                    break;
                }
                let v = self.value(depth + 1)?;
                props.push((key, v));
            }
        }
        let v = if traits.class.is_empty() {
            AmfValue::Object(props)
        } else {
            AmfValue::TypedObject {
                class: traits.class,
                properties: props,
            }
        };
        Ok(self.fill(slot, v))
    }

    fn vector(&mut self, marker: u8, n: usize, depth: usize) -> Result<AmfValue, AmfError> {
        let slot = self.reserve();
        let _fixed = self.r.u8()?;
        let mut items = Vec::with_capacity(self.r.capacity_for(n));
        if marker == VECTOR_OBJECT {
            let _type_name = self.string()?;
        }
        for _ in 0..n {
            self.r.charge(1)?;
            items.push(match marker {
                VECTOR_INT => AmfValue::Number(f64::from(self.r.u32()? as i32)),
                VECTOR_UINT => AmfValue::Number(f64::from(self.r.u32()?)),
                VECTOR_DOUBLE => AmfValue::Number(self.r.f64()?),
                _ => self.value(depth + 1)?,
            });
        }
        Ok(self.fill(slot, AmfValue::StrictArray(items)))
    }

    fn dictionary(&mut self, n: usize, depth: usize) -> Result<AmfValue, AmfError> {
        let slot = self.reserve();
        let _weak_keys = self.r.u8()?;
        let mut pairs = Vec::with_capacity(self.r.capacity_for(n));
        for _ in 0..n {
            let key = self.value(depth + 1)?;
            let value = self.value(depth + 1)?;
            let key = match key {
                AmfValue::String(s) => s,
                other => other.to_string(),
            };
            pairs.push((key, value));
        }
        Ok(self.fill(slot, AmfValue::EcmaArray(pairs)))
    }
}

/// Appends the AMF3 encoding of `value` to `out` (no references).
pub fn encode(value: &AmfValue, out: &mut Vec<u8>) {
    match value {
        AmfValue::Undefined => out.push(UNDEFINED),
        AmfValue::Null => out.push(NULL),
        AmfValue::Boolean(false) => out.push(FALSE),
        AmfValue::Boolean(true) => out.push(TRUE),
        AmfValue::Number(n) => {
            let i = *n as i64;
            if n.fract() == 0.0
                && (INT29_MIN..=INT29_MAX).contains(&i)
                && !(*n == 0.0 && n.is_sign_negative())
            {
                out.push(INTEGER);
                put_u29(out, (i as u32) & 0x1fff_ffff);
            } else {
                out.push(DOUBLE);
                out.extend_from_slice(&n.to_be_bytes());
            }
        }
        AmfValue::String(s) => {
            out.push(STRING);
            put_string(out, s);
        }
        AmfValue::Xml(s) => {
            out.push(XML);
            put_inline_len(out, s.len());
            out.extend_from_slice(s.as_bytes());
        }
        AmfValue::Date(ms) => {
            out.push(DATE);
            put_u29(out, 1);
            out.extend_from_slice(&ms.to_be_bytes());
        }
        AmfValue::ByteArray(b) => {
            out.push(BYTE_ARRAY);
            put_inline_len(out, b.len());
            out.extend_from_slice(b);
        }
        AmfValue::StrictArray(items) => {
            out.push(ARRAY);
            put_inline_len(out, items.len());
            put_string(out, "");
            for item in items {
                encode(item, out);
            }
        }
        AmfValue::EcmaArray(props) => {
            out.push(ARRAY);
            put_inline_len(out, 0);
            put_pairs(out, props);
        }
        AmfValue::Object(props) => encode_object(out, "", props),
        AmfValue::TypedObject { class, properties } => encode_object(out, class, properties),
    }
}

/// Objects are written with inline, dynamic traits and no sealed members.
fn encode_object(out: &mut Vec<u8>, class: &str, props: &[(String, AmfValue)]) {
    out.push(OBJECT);
    put_u29(out, 0b1011);
    put_string(out, class);
    put_pairs(out, props);
}

fn put_pairs(out: &mut Vec<u8>, props: &[(String, AmfValue)]) {
    for (k, v) in props.iter().filter(|(k, _)| !k.is_empty()) {
        put_string(out, k);
        encode(v, out);
    }
    put_string(out, "");
}

fn put_string(out: &mut Vec<u8>, s: &str) {
    put_inline_len(out, s.len());
    out.extend_from_slice(s.as_bytes());
}

fn put_inline_len(out: &mut Vec<u8>, n: usize) {
    // A U29 holds 28 bits of length; longer values cannot be expressed in AMF3.
    let n = u32::try_from(n).unwrap_or(u32::MAX).min((1 << 28) - 1);
    put_u29(out, (n << 1) | 1);
}

fn put_u29(out: &mut Vec<u8>, v: u32) {
    let v = v & 0x1fff_ffff;
    if v < 0x80 {
        out.push(v as u8);
    } else if v < 0x4000 {
        out.extend_from_slice(&[((v >> 7) | 0x80) as u8, (v & 0x7f) as u8]);
    } else if v < 0x20_0000 {
        out.extend_from_slice(&[
            ((v >> 14) | 0x80) as u8,
            ((v >> 7) | 0x80) as u8,
            (v & 0x7f) as u8,
        ]);
    } else {
        out.extend_from_slice(&[
            ((v >> 22) | 0x80) as u8,
            ((v >> 15) | 0x80) as u8,
            ((v >> 8) | 0x80) as u8,
            v as u8,
        ]);
    }
}

#[cfg(test)]
mod tests {
    use super::super::{amf0, DecodeLimits};
    use super::*;

    /// Wraps an AMF3 value behind the AVM+ marker, as Flash sends it.
    fn decode(bytes: &[u8]) -> Result<AmfValue, AmfError> {
        let mut buf = vec![0x11];
        buf.extend_from_slice(bytes);
        amf0::decode_all(&buf, DecodeLimits::default()).map(|mut v| v.remove(0))
    }

    fn round_trip(v: AmfValue) {
        let mut buf = Vec::new();
        encode(&v, &mut buf);
        assert_eq!(decode(&buf).unwrap(), v);
    }

    #[test]
    fn round_trips_every_kind() {
        for n in [
            0.0,
            1.0,
            -1.0,
            268_435_455.0,
            -268_435_456.0,
            268_435_456.0,
            0.5,
            1e300,
        ] {
            round_trip(AmfValue::Number(n));
        }
        round_trip(AmfValue::Boolean(false));
        round_trip(AmfValue::String("sip:bob@example.org".into()));
        round_trip(AmfValue::String(String::new()));
        round_trip(AmfValue::Null);
        round_trip(AmfValue::Undefined);
        round_trip(AmfValue::Date(1.7e12));
        round_trip(AmfValue::ByteArray(vec![0, 255]));
        round_trip(AmfValue::StrictArray(vec![
            AmfValue::from("a"),
            AmfValue::Number(7.0),
        ]));
        round_trip(AmfValue::object([("user", AmfValue::from("alice"))]));
        round_trip(AmfValue::TypedObject {
            class: "sono.Thing".into(),
            properties: vec![("x".into(), AmfValue::Boolean(true))],
        });
    }

    #[test]
    fn follows_string_object_and_trait_references() {
        // [ "ab", "ab"(ref 0), {a:1} , {a:1}(ref obj 1), object with traits ref 0 {a:2} ]
        let bytes = [
            ARRAY, 0x0B, 0x01, // dense 5, no assoc
            STRING, 0x05, b'a', b'b', STRING, 0x00, // string ref 0
            OBJECT, 0x13, 0x01, 0x03, b'a', INTEGER, 0x01, // sealed 1 member "a", class ""
            OBJECT, 0x02, // object ref 1 (0 is the array itself)
            OBJECT, 0x01, INTEGER, 0x02, // traits ref 0, a=2
        ];
        let v = decode(&bytes).unwrap();
        let AmfValue::StrictArray(items) = v else {
            panic!("not an array: {v:?}")
        };
        assert_eq!(items[1].as_str(), Some("ab"));
        assert_eq!(items[2], items[3]);
        assert_eq!(items[4].get("a"), Some(&AmfValue::Number(2.0)));
    }

    #[test]
    fn decodes_negative_integers() {
        assert_eq!(
            decode(&[INTEGER, 0xff, 0xff, 0xff, 0xff]).unwrap(),
            AmfValue::Number(-1.0)
        );
    }

    #[test]
    fn rejects_malformed_input() {
        assert_eq!(decode(&[STRING, 0x00]), Err(AmfError::BadReference(0)));
        assert_eq!(decode(&[STRING, 0x07, b'a']), Err(AmfError::Truncated));
        assert!(matches!(
            decode(&[0x12]),
            Err(AmfError::UnknownMarker { version: 3, .. })
        ));
        assert!(matches!(
            decode(&[OBJECT, 0x07, 0x03, b'X']),
            Err(AmfError::Externalizable(_))
        ));
        assert_eq!(decode(&[OBJECT, 0x01]), Err(AmfError::BadReference(0)));
        // A cyclic reference to the array being decoded is refused, not looped on.
        assert_eq!(
            decode(&[ARRAY, 0x03, 0x01, ARRAY, 0x00]),
            Err(AmfError::BadReference(0))
        );
    }
}
