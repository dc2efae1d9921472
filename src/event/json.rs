//! The JSON reader and writer on the event hot path.
//!
//! A replay spends most of its CPU turning lines into events and events back
//! into lines. serde_json does both through its generic visitor and serializer
//! traits, inserts every object key into a `BTreeMap` one at a time, and looks
//! at strings a byte at a time. This module does the same job for
//! `serde_json::Value` more directly: one recursive-descent pass that collects
//! each object's entries into a vector and builds the map in bulk, and string
//! scans that test eight bytes at once for the few bytes JSON cares about
//! (`"`, `\`, control characters).
//!
//! Contract: [`parse`] accepts exactly the documents `serde_json::from_str`
//! accepts and gives the same `Value` (same numbers, last duplicate key wins,
//! 128 levels of nesting at most); [`write_object`] produces byte-for-byte what
//! `serde_json::to_writer` produces. The differential tests at the bottom check
//! both on random and corrupted documents. Only error messages are worded
//! independently (they still say what was wrong and where).

use serde_json::{Map, Number, Value};

/// Nesting this deep is refused, as serde_json refuses it (127 levels pass): a recursive
/// parser must not let a line of ten thousand `[` overflow its stack.
const MAX_DEPTH: u32 = 128;

/// Why a text is not JSON, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} at line {line} column {column}")]
pub struct ParseError {
    what: &'static str,
    line: usize,
    column: usize,
}

/// Parses one JSON document (surrounding whitespace allowed).
pub fn parse(text: &str) -> Result<Value, ParseError> {
    let mut parser = Parser {
        text,
        bytes: text.as_bytes(),
        pos: 0,
        depth: 0,
        scratch: String::new(),
    };
    let value = parser.value()?;
    parser.skip_whitespace();
    if parser.pos < parser.bytes.len() {
        return Err(parser.error("trailing characters"));
    }
    Ok(value)
}

/// Appends `map` as a compact JSON object, exactly as serde_json writes it.
pub fn write_object(map: &Map<String, Value>, out: &mut Vec<u8>) {
    out.push(b'{');
    let mut first = true;
    for (key, value) in map {
        if !first {
            out.push(b',');
        }
        first = false;
        write_str(key, out);
        out.push(b':');
        write_value(value, out);
    }
    out.push(b'}');
}

/// Appends `value` as compact JSON, exactly as serde_json writes it.
pub fn write_value(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(number) => write_number(number, out),
        Value::String(text) => write_str(text, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out);
            }
            out.push(b']');
        }
        Value::Object(map) => write_object(map, out),
    }
}

fn write_number(number: &Number, out: &mut Vec<u8>) {
    if let Some(n) = number.as_u64() {
        out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    } else if let Some(n) = number.as_i64() {
        out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    } else {
        match number.as_f64() {
            // serde_json writes a non-finite float as null; a `Number` built by
            // serde_json cannot hold one, but the writer must not lie if it did.
            Some(f) if f.is_finite() => {
                out.extend_from_slice(zmij::Buffer::new().format_finite(f).as_bytes())
            }
            _ => out.extend_from_slice(b"null"),
        }
    }
}

/// Appends `text` as a JSON string: `"` and `\` escaped, control characters
/// as serde_json escapes them (`\n`, `\t`, ... or `\u00XX`), nothing else.
pub fn write_str(text: &str, out: &mut Vec<u8>) {
    let bytes = text.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut start = 0;
    loop {
        let special = find_special(bytes, start);
        out.extend_from_slice(&bytes[start..special]);
        let Some(&byte) = bytes.get(special) else {
            break;
        };
        match byte {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(byte >> 4)]);
                out.push(HEX[usize::from(byte & 0xf)]);
            }
        }
        start = special + 1;
    }
    out.push(b'"');
}

/// The index of the first byte at or after `from` that is `"`, `\` or a
/// control character (below 0x20), or `bytes.len()` when there is none.
///
/// Eight bytes at a time: for a word `w`, `(w - 0x01..01 * n) & !w & 0x80..80`
/// flags bytes below `n`; applied to `w` (n = 0x20) and to `w` xor-ed with
/// `"` and `\` (n = 1, i.e. zero bytes) it flags the three kinds. Borrows can
/// only flag bytes above a truly flagged one, so the lowest flag is exact.
#[inline]
pub(super) fn find_special(bytes: &[u8], from: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut i = from;
    while let Some(chunk) = bytes.get(i..i + 8) {
        let word = u64::from_le_bytes(chunk.try_into().expect("an 8-byte slice"));
        let quote = word ^ (ONES * u64::from(b'"'));
        let backslash = word ^ (ONES * u64::from(b'\\'));
        let flags = (word.wrapping_sub(ONES * 0x20) & !word)
            | (quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash);
        let flags = flags & HIGH;
        if flags != 0 {
            return i + (flags.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&byte) = bytes.get(i) {
        if byte == b'"' || byte == b'\\' || byte < 0x20 {
            return i;
        }
        i += 1;
    }
    i
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    depth: u32,
    /// Where strings with escapes are assembled; reused.
    scratch: String,
}

impl Parser<'_> {
    fn error(&self, what: &'static str) -> ParseError {
        let before = &self.bytes[..self.pos.min(self.bytes.len())];
        let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        ParseError {
            what,
            line,
            column: self.pos - line_start + 1,
        }
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    #[inline]
    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn value(&mut self) -> Result<Value, ParseError> {
        self.skip_whitespace();
        match self.peek() {
            None => Err(self.error("EOF while parsing a value")),
            Some(b'"') => {
                self.pos += 1;
                self.string().map(Value::String)
            }
            Some(b'{') => self.object(),
            Some(b'[') => self.array(),
            Some(b't') => self.literal(b"true", Value::Bool(true)),
            Some(b'f') => self.literal(b"false", Value::Bool(false)),
            Some(b'n') => self.literal(b"null", Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number().map(Value::Number),
            Some(_) => Err(self.error("expected value")),
        }
    }

    fn literal(&mut self, word: &[u8], value: Value) -> Result<Value, ParseError> {
        for &expected in word {
            match self.peek() {
                Some(b) if b == expected => self.pos += 1,
                None => return Err(self.error("EOF while parsing a value")),
                Some(_) => return Err(self.error("expected ident")),
            }
        }
        Ok(value)
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth >= MAX_DEPTH {
            return Err(self.error("recursion limit exceeded"));
        }
        self.pos += 1; // the opening bracket
        Ok(())
    }

    fn object(&mut self) -> Result<Value, ParseError> {
        self.enter()?;
        let mut entries: Vec<(String, Value)> = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            self.depth -= 1;
            return Ok(Value::Object(Map::new()));
        }
        loop {
            self.skip_whitespace();
            match self.peek() {
                Some(b'"') => self.pos += 1,
                Some(b'}') if !entries.is_empty() => return Err(self.error("trailing comma")),
                None => return Err(self.error("EOF while parsing an object")),
                Some(_) => return Err(self.error("key must be a string")),
            }
            let key = self.string()?;
            self.skip_whitespace();
            match self.peek() {
                Some(b':') => self.pos += 1,
                None => return Err(self.error("EOF while parsing an object")),
                Some(_) => return Err(self.error("expected `:`")),
            }
            let value = self.value()?;
            entries.push((key, value));
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    break;
                }
                None => return Err(self.error("EOF while parsing an object")),
                Some(_) => return Err(self.error("expected `,` or `}`")),
            }
        }
        self.depth -= 1;
        // Built in bulk: the entries are sorted once (stably, so of two equal
        // keys the later one wins, as with serde_json's inserts) and the tree
        // is filled in order, instead of a search and a shift per key.
        Ok(Value::Object(entries.into_iter().collect()))
    }

    fn array(&mut self) -> Result<Value, ParseError> {
        self.enter()?;
        let mut items = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(b']') {
            self.pos += 1;
            self.depth -= 1;
            return Ok(Value::Array(items));
        }
        loop {
            items.push(self.value()?);
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    self.skip_whitespace();
                    if self.peek() == Some(b']') {
                        return Err(self.error("trailing comma"));
                    }
                }
                Some(b']') => {
                    self.pos += 1;
                    break;
                }
                None => return Err(self.error("EOF while parsing a list")),
                Some(_) => return Err(self.error("expected `,` or `]`")),
            }
        }
        self.depth -= 1;
        Ok(Value::Array(items))
    }

    /// A string's contents; the opening quote is already consumed.
    fn string(&mut self) -> Result<String, ParseError> {
        let start = self.pos;
        let end = find_special(self.bytes, start);
        match self.bytes.get(end) {
            Some(b'"') => {
                self.pos = end + 1;
                // `"` is ASCII, so both ends are char boundaries of `text`.
                Ok(self.text[start..end].to_owned())
            }
            _ => {
                self.pos = end;
                self.scratch.clear();
                self.scratch.push_str(&self.text[start..end]);
                self.escaped_string()
            }
        }
    }

    /// The rest of a string that has escapes (or is broken); what came before
    /// the first special byte is in `scratch`.
    fn escaped_string(&mut self) -> Result<String, ParseError> {
        loop {
            let start = self.pos;
            let end = find_special(self.bytes, start);
            self.scratch.push_str(&self.text[start..end]);
            self.pos = end;
            match self.peek() {
                None => return Err(self.error("EOF while parsing a string")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(self.scratch.clone());
                }
                Some(b'\\') => {
                    self.pos += 1;
                    self.escape()?;
                }
                Some(_) => {
                    return Err(self
                        .error("control character (\\u0000-\\u001F) found while parsing a string"))
                }
            }
        }
    }

    /// One escape; the backslash is already consumed.
    fn escape(&mut self) -> Result<(), ParseError> {
        let Some(byte) = self.peek() else {
            return Err(self.error("EOF while parsing a string"));
        };
        self.pos += 1;
        let ch = match byte {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => self.unicode_escape()?,
            _ => return Err(self.error("invalid escape")),
        };
        self.scratch.push(ch);
        Ok(())
    }

    /// `\uXXXX`, or a surrogate pair `\uD8XX\uDCXX`; the `\u` is consumed.
    /// Unpaired surrogates are errors: a Rust string cannot hold them.
    fn unicode_escape(&mut self) -> Result<char, ParseError> {
        let first = self.hex4()?;
        let code = match first {
            0xDC00..=0xDFFF => return Err(self.error("lone leading surrogate in hex escape")),
            0xD800..=0xDBFF => {
                if self.bytes.get(self.pos..self.pos + 2) != Some(b"\\u") {
                    return Err(self.error("unexpected end of hex escape"));
                }
                self.pos += 2;
                let second = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&second) {
                    return Err(self.error("lone leading surrogate in hex escape"));
                }
                0x10000 + ((u32::from(first) - 0xD800) << 10) + (u32::from(second) - 0xDC00)
            }
            other => u32::from(other),
        };
        char::from_u32(code).ok_or_else(|| self.error("invalid unicode code point"))
    }

    fn hex4(&mut self) -> Result<u16, ParseError> {
        let mut n = 0u16;
        for _ in 0..4 {
            let digit = match self.peek() {
                None => return Err(self.error("EOF while parsing a string")),
                Some(b) => (b as char).to_digit(16),
            };
            let Some(digit) = digit else {
                return Err(self.error("invalid escape"));
            };
            self.pos += 1;
            n = n * 16 + digit as u16;
        }
        Ok(n)
    }

    /// A number, as serde_json reads it: an integer without fraction or
    /// exponent is a `u64` (non-negative) or `i64` (negative) when it fits,
    /// otherwise (and `-0`) an `f64`, correctly rounded; out of range is an error.
    fn number(&mut self) -> Result<Number, ParseError> {
        let start = self.pos;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => {
                self.pos += 1;
                if let Some(b'0'..=b'9') = self.peek() {
                    return Err(self.error("invalid number"));
                }
            }
            Some(b'1'..=b'9') => self.digits(),
            None => return Err(self.error("EOF while parsing a value")),
            Some(_) => return Err(self.error("invalid number")),
        }
        let int_end = self.pos;
        let mut is_float = false;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            self.required_digits()?;
            is_float = true;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            self.required_digits()?;
            is_float = true;
        }
        let text = &self.text[start..self.pos];
        if !is_float {
            let digits = &self.text[start + usize::from(negative)..int_end];
            if let Ok(magnitude) = digits.parse::<u64>() {
                if !negative {
                    return Ok(Number::from(magnitude));
                }
                if magnitude != 0 && magnitude <= i64::MIN.unsigned_abs() {
                    return Ok(Number::from((magnitude as i64).wrapping_neg()));
                }
            }
        }
        // The text matched JSON's number grammar, which Rust's float syntax
        // includes, so the parse cannot fail; it rounds correctly.
        let float: f64 = text.parse().map_err(|_| self.error("invalid number"))?;
        Number::from_f64(float).ok_or_else(|| self.error("number out of range"))
    }

    /// The digits a fraction or exponent must have at least one of.
    fn required_digits(&mut self) -> Result<(), ParseError> {
        match self.peek() {
            Some(b'0'..=b'9') => {
                self.digits();
                Ok(())
            }
            None => Err(self.error("EOF while parsing a value")),
            Some(_) => Err(self.error("invalid number")),
        }
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn theirs(text: &str) -> Result<Value, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// Same outcome as serde_json: the same value, or both an error.
    fn agrees(text: &str) {
        match (parse(text), theirs(text)) {
            (Ok(ours), Ok(reference)) => {
                assert_eq!(ours, reference, "values differ for {text:?}");
                // Equal `Value`s can still hold floats that differ in sign
                // of zero; the written text tells them apart.
                assert_eq!(
                    serde_json::to_string(&ours).unwrap(),
                    serde_json::to_string(&reference).unwrap(),
                    "for {text:?}"
                );
            }
            (Err(_), Err(_)) => {}
            (ours, reference) => panic!("for {text:?}: ours {ours:?}, serde_json {reference:?}"),
        }
    }

    fn written(value: &Value) -> String {
        let mut out = Vec::new();
        write_value(value, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn edge_cases_match_serde_json() {
        let cases = [
            "",
            " ",
            "{}",
            "[]",
            "{ }",
            "[ ]",
            " {\"a\" : 1 } ",
            "{\"a\":1,}",
            "[1,]",
            "[,1]",
            "{,}",
            "{\"a\"}",
            "{\"a\":}",
            "{\"a\" 1}",
            "{1:2}",
            "{\"a\":1 \"b\":2}",
            "[1 2]",
            "{\"a\":1}x",
            "{\"a\":1}{}",
            "\"abc",
            "\"a\\\"b\"",
            "\"\\/\"",
            "\"\\x\"",
            "\"\\u00e9\"",
            "\"\\u00E9\"",
            "\"\\ud83d\\ude00\"",
            "\"\\ud83d\"",
            "\"\\ud83d\\u0041\"",
            "\"\\ude00\"",
            "\"\\ud83dx\"",
            "\"\\u12\"",
            "\"\\u12g4\"",
            "\"tab\there\"",
            "\"nl\nhere\"",
            "\"\u{7f}\"",
            "\"é中😀\"",
            "0",
            "-0",
            "-0.0",
            "00",
            "01",
            "-",
            "-a",
            "1.",
            "1.e3",
            ".5",
            "1e",
            "1e+",
            "1E-2",
            "1e5",
            "+1",
            "18446744073709551615",
            "18446744073709551616",
            "-9223372036854775808",
            "-9223372036854775809",
            "123456789012345678901234567890",
            "1e308",
            "1e309",
            "-1e309",
            "1e-400",
            "0.1",
            "2.5e-3",
            "1.7976931348623157e308",
            "4.9e-324",
            "true",
            "false",
            "null",
            "tru",
            "nul",
            "truex",
            "nulll",
            "[true,false,null]",
            "{\"a\":1,\"a\":2}",
            "{\"b\":1,\"a\":2,\"b\":3}",
            "[[[[]]]]",
            "{\"a\":{\"b\":{}}}",
            "\u{feff}{}",
            "{\"a\":\"\\u0000\"}",
            "\t\n\r {}\r\n",
        ];
        for case in cases {
            agrees(case);
        }
    }

    #[test]
    fn nesting_is_limited_like_serde_json() {
        for depth in [127, 128, 129, 1000, 100_000] {
            agrees(&format!("{}{}", "[".repeat(depth), "]".repeat(depth)));
            agrees(&format!(
                "{}1{}",
                "{\"a\":".repeat(depth),
                "}".repeat(depth)
            ));
        }
    }

    #[test]
    fn errors_say_where() {
        let err = parse("{\"a\":1,\n \"b\" 2}").unwrap_err();
        assert_eq!(err.to_string(), "expected `:` at line 2 column 6");
    }

    #[test]
    fn writer_escapes_like_serde_json() {
        let mut text = String::new();
        for c in 0u8..=0x7f {
            text.push(c as char);
        }
        text.push_str("é中😀\"\\");
        for value in [
            Value::String(text),
            serde_json::json!({"b": [1, -2, 2.5, -0.0, 1e300, null, true, false], "a": {"x": ""}}),
            serde_json::json!(u64::MAX),
            serde_json::json!(i64::MIN),
        ] {
            assert_eq!(written(&value), serde_json::to_string(&value).unwrap());
        }
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<u64>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(|f| Number::from_f64(f).map_or(Value::Null, Value::Number)),
            "(?s).{0,24}".prop_map(Value::String),
            "[a-z\"\\\\\u{0}-\u{1f}é😀]{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(5, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                prop::collection::vec(("[a-d]{0,3}", inner), 0..8)
                    .prop_map(|entries| Value::Object(entries.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn writes_what_serde_json_writes(value in json_value()) {
            prop_assert_eq!(written(&value), serde_json::to_string(&value).unwrap());
        }

        #[test]
        fn reads_what_serde_json_reads(value in json_value(), pretty in any::<bool>()) {
            let text = if pretty {
                serde_json::to_string_pretty(&value).unwrap()
            } else {
                serde_json::to_string(&value).unwrap()
            };
            agrees(&text);
        }

        /// Damaged documents: a byte cut, replaced or inserted anywhere.
        #[test]
        fn refuses_what_serde_json_refuses(
            value in json_value(),
            at in any::<prop::sample::Index>(),
            byte in prop::sample::select(b"{}[]\",:\\ 0123456789-+.eEtrufalsn\x01\x7f".to_vec()),
            how in 0..3u8,
        ) {
            let mut bytes = serde_json::to_vec(&value).unwrap();
            let i = at.index(bytes.len() + 1);
            match how {
                0 => { bytes.truncate(i); }
                1 => { if i < bytes.len() { bytes[i] = byte } }
                _ => bytes.insert(i, byte),
            }
            if let Ok(text) = std::str::from_utf8(&bytes) {
                agrees(text);
            }
        }

        #[test]
        fn reads_any_number_text_like_serde_json(
            sign in "-?", int in "(0|[1-9][0-9]{0,25})", frac in "(\\.[0-9]{1,20})?",
            exp in "([eE][+-]?[0-9]{1,4})?",
        ) {
            agrees(&format!("{sign}{int}{frac}{exp}"));
        }
    }
}
