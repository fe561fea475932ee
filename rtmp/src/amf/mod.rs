//! Action Message Format values, as carried in RTMP command and data messages.
//!
//! AMF0 is specified in Adobe's "Action Message Format -- AMF 0" (2007), AMF3 in
//! "Action Message Format -- AMF 3" (2013). Flash Player sends commands in AMF0,
//! except that with `NetConnection.objectEncoding = 3` (its default) each argument
//! of a `NetConnection.call` is an AMF0 "avmplus-object" marker (0x11) followed by
//! an AMF3 value. Both decoders therefore produce one value type, [`AmfValue`].
//!
//! Decoding is defensive: nesting depth, reference tables and the total number of
//! decoded values are bounded ([`DecodeLimits`]), so a hostile peer can neither
//! exhaust the stack nor make references expand exponentially.

pub mod amf0;
pub mod amf3;

use std::fmt;

/// One decoded AMF value. AMF3 integers become `Number`, as ActionScript sees them.
#[derive(Debug, Clone, PartialEq)]
pub enum AmfValue {
    Number(f64),
    Boolean(bool),
    String(String),
    /// An anonymous object: ordered key/value pairs.
    Object(Vec<(String, AmfValue)>),
    /// An object of a named class (AMF0 typed object, AMF3 sealed/dynamic object with a class name).
    TypedObject {
        class: String,
        properties: Vec<(String, AmfValue)>,
    },
    /// An associative array (AMF0 ECMA array, or an AMF3 array with named keys).
    EcmaArray(Vec<(String, AmfValue)>),
    StrictArray(Vec<AmfValue>),
    /// Milliseconds since the Unix epoch.
    Date(f64),
    Xml(String),
    ByteArray(Vec<u8>),
    Null,
    Undefined,
}

impl AmfValue {
    /// The string inside, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            AmfValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// The number inside, if this is a number.
    pub fn as_number(&self) -> Option<f64> {
        match self {
            AmfValue::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// True for `null` and `undefined`, which ActionScript callers use interchangeably.
    pub fn is_nullish(&self) -> bool {
        matches!(self, AmfValue::Null | AmfValue::Undefined)
    }

    /// The properties of any object-like value.
    pub fn properties(&self) -> Option<&[(String, AmfValue)]> {
        match self {
            AmfValue::Object(p) | AmfValue::EcmaArray(p) => Some(p),
            AmfValue::TypedObject { properties, .. } => Some(properties),
            _ => None,
        }
    }

    /// Looks a property up by name in any object-like value.
    pub fn get(&self, key: &str) -> Option<&AmfValue> {
        self.properties()?
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// Builds an anonymous object from `(key, value)` pairs.
    pub fn object<K: Into<String>>(pairs: impl IntoIterator<Item = (K, AmfValue)>) -> AmfValue {
        AmfValue::Object(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// Number of values in this tree, itself included; used to charge references.
    fn weight(&self) -> usize {
        1 + match self {
            AmfValue::Object(p) | AmfValue::EcmaArray(p) => p.iter().map(|(_, v)| v.weight()).sum(),
            AmfValue::TypedObject { properties, .. } => {
                properties.iter().map(|(_, v)| v.weight()).sum()
            }
            AmfValue::StrictArray(items) => items.iter().map(AmfValue::weight).sum(),
            _ => 0,
        }
    }
}

impl From<&str> for AmfValue {
    fn from(s: &str) -> Self {
        AmfValue::String(s.to_owned())
    }
}

impl From<String> for AmfValue {
    fn from(s: String) -> Self {
        AmfValue::String(s)
    }
}

impl From<f64> for AmfValue {
    fn from(n: f64) -> Self {
        AmfValue::Number(n)
    }
}

impl From<bool> for AmfValue {
    fn from(b: bool) -> Self {
        AmfValue::Boolean(b)
    }
}

/// Why an AMF payload could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmfError {
    #[error("AMF data ends in the middle of a value")]
    Truncated,
    #[error("unknown AMF{version} type marker 0x{marker:02x}")]
    UnknownMarker { version: u8, marker: u8 },
    #[error("AMF string is not valid UTF-8")]
    InvalidUtf8,
    #[error("AMF values nested deeper than {0}")]
    TooDeep(usize),
    #[error("AMF payload holds more than {0} values")]
    TooManyValues(usize),
    #[error("AMF reference {0} points to nothing decoded before")]
    BadReference(usize),
    #[error("AMF3 externalizable object of class {0:?} cannot be decoded without its class")]
    Externalizable(String),
    #[error("AMF0 object property list is not closed by an object-end marker")]
    MissingObjectEnd,
}

/// Bounds applied while decoding one payload.
#[derive(Debug, Clone, Copy)]
pub struct DecodeLimits {
    /// Deepest nesting of objects and arrays.
    pub max_depth: usize,
    /// Most values (including those copied by references) in one payload.
    pub max_values: usize,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            max_depth: 32,
            max_values: 65_536,
        }
    }
}

/// Shared bookkeeping of the two decoders: where we are, how much budget is left.
pub(crate) struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    limits: DecodeLimits,
    values: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(data: &'a [u8], limits: DecodeLimits) -> Self {
        Reader {
            data,
            pos: 0,
            limits,
            values: 0,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    pub(crate) fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.data.get(self.pos).copied()
    }

    pub(crate) fn u8(&mut self) -> Result<u8, AmfError> {
        let b = self.peek().ok_or(AmfError::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], AmfError> {
        if self.remaining() < n {
            return Err(AmfError::Truncated);
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub(crate) fn u16(&mut self) -> Result<u16, AmfError> {
        let b = self.bytes(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, AmfError> {
        let b = self.bytes(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn f64(&mut self) -> Result<f64, AmfError> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(f64::from_be_bytes(a))
    }

    pub(crate) fn utf8(&mut self, n: usize) -> Result<String, AmfError> {
        let b = self.bytes(n)?;
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| AmfError::InvalidUtf8)
    }

    /// Charges `n` values against the payload's budget.
    pub(crate) fn charge(&mut self, n: usize) -> Result<(), AmfError> {
        self.values = self.values.saturating_add(n);
        if self.values > self.limits.max_values {
            return Err(AmfError::TooManyValues(self.limits.max_values));
        }
        Ok(())
    }

    pub(crate) fn check_depth(&self, depth: usize) -> Result<(), AmfError> {
        if depth > self.limits.max_depth {
            return Err(AmfError::TooDeep(self.limits.max_depth));
        }
        Ok(())
    }

    /// A collection may not claim more entries than bytes remain: each entry takes
    /// at least one byte, so this bounds pre-allocation by what was really received.
    pub(crate) fn capacity_for(&self, claimed: usize) -> usize {
        claimed.min(self.remaining())
    }
}

impl fmt::Display for AmfValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AmfValue::Number(n) => write!(f, "{n}"),
            AmfValue::Boolean(b) => write!(f, "{b}"),
            AmfValue::String(s) => write!(f, "{s:?}"),
            AmfValue::Null => f.write_str("null"),
            AmfValue::Undefined => f.write_str("undefined"),
            other => write!(f, "{other:?}"),
        }
    }
}
