//! An event kept as the JSON line it arrived as, indexed, changed by overlay.
//!
//! Turning every line into a `serde_json::Value` tree costs about eighty heap
//! allocations per Segment event, a second pass to write it out again and a
//! third to free it, although components read a handful of fields and change
//! fewer. A [`RawEvent`] instead keeps the line's text and an index of its
//! top-level entries (key and value spans), found by one validating pass that
//! allocates nothing but the index:
//!
//! * reads walk the text: a top-level field is a span, a nested one
//!   (`context.device.id`) is found by skipping through its parent's span;
//!   strings without escapes are borrowed straight from the text. A reader
//!   that needs a `&Value` gets the entry parsed once and cached.
//! * writes replace or append top-level entries; a change below the top level
//!   indexes just the object it is in, the same way, and changes it there
//!   (a value that is not an object of the text is parsed and changed as a
//!   `Value`).
//! * serialization copies untouched entries' bytes and writes only what
//!   changed; freeing is one text, one index and the changed values.
//!
//! Contract: a `RawEvent` behaves exactly like the `Map` that serde_json would
//! have parsed from the same text (same values, last duplicate key wins), and
//! the text it writes parses to that map; the differential tests at the
//! bottom of this file check it. What differs is only the spelling of the written line: entries
//! keep their arrival order (new ones last) instead of sorted order, and an
//! untouched value keeps its original spelling (`"\u00e9"` stays escaped, a
//! nested object with a repeated key keeps both — readers take the last, as
//! serde_json does). Lines this representation is not worth it for (over
//! [`MAX_RAW_ENTRIES`] top-level keys, over 4 GiB) are parsed into a tree.

use std::sync::OnceLock;

use serde_json::{Map, Value};

use super::{json, Kind};

/// A value parsed from the text once a reader asked for it. Boxed: most
/// entries are never parsed, and the index is smaller for it (an entry's
/// size is what a lookup's cache misses pay for).
#[derive(Debug, Clone, Default)]
struct Parsed(OnceLock<Box<Value>>);

impl Parsed {
    fn get(&self) -> Option<&Value> {
        self.0.get().map(|value| &**value)
    }

    fn get_or_init(&self, parse: impl FnOnce() -> Value) -> &Value {
        self.0.get_or_init(|| Box::new(parse()))
    }

    fn into_inner(self) -> Option<Value> {
        self.0.into_inner().map(|value| *value)
    }

    fn take(&mut self) -> Option<Value> {
        self.0.take().map(|value| *value)
    }
}

/// More top-level entries than this and the event is parsed into a tree: the
/// index is searched linearly and duplicate keys are found pairwise.
pub const MAX_RAW_ENTRIES: usize = 48;

/// Entries an index has room for beyond those its line has.
const ROOM_TO_ADD: usize = 6;
/// Members an index of a nested object starts with room for: a typical
/// `properties` or `context` fits, where growing from empty reallocated both
/// vectors three times.
const NESTED_CAPACITY: usize = 8;
/// The same for an object the program wrote (a session summary has 11).
const WRITTEN_CAPACITY: usize = 16;

thread_local! {
    /// How many entries the previous line indexed on this thread had (lines
    /// of one stream are alike).
    static ENTRIES_SEEN: std::cell::Cell<usize> = const { std::cell::Cell::new(10) };
}

/// Nesting this deep is refused, as serde_json refuses it.
const MAX_DEPTH: u32 = 128;

#[derive(Debug)]
pub struct RawEvent {
    text: Box<str>,
    /// The index of the top-level entries. Always there for text that was
    /// read; for an object the program wrote ([`RawEvent::index_written`])
    /// built on first use, as many (session summaries) are only written out.
    root: OnceLock<Members>,
    /// The whole event as a map, for readers that ask for one; emptied by
    /// every change.
    tree: OnceLock<Map<String, Value>>,
}

impl Clone for RawEvent {
    fn clone(&self) -> Self {
        RawEvent {
            text: self.text.clone(),
            root: self.root.clone(),
            tree: OnceLock::new(),
        }
    }
}

/// The tag of a removed entry: no key has it, as 0xFF never occurs in UTF-8.
const REMOVED: Tag = Tag::MAX;

/// One object's members, indexed: the event's top level, or an object in it
/// that was changed below its top.
#[derive(Debug, Clone, Default)]
struct Members {
    entries: Vec<Entry>,
    /// [`key_tag`] of each entry's key ([`REMOVED`] once removed), apart
    /// from the entries so a lookup reads one or two cache lines.
    tags: Vec<Tag>,
}

#[derive(Debug, Clone)]
struct Entry {
    key: Key,
    value: Slot,
}

#[derive(Debug, Clone)]
enum Key {
    /// Between the quotes in the text; has no escapes, so the bytes are the key.
    Span(u32, u32),
    /// A key set by a component, up to [`INLINE_KEY`] bytes, held without an
    /// allocation (enrichments and the session tag add a few to every event).
    Inline {
        len: u8,
        bytes: [u8; INLINE_KEY],
    },
    Owned(Box<str>),
}

/// The longest key held inline.
const INLINE_KEY: usize = 22;

impl Key {
    fn new(key: &str) -> Key {
        if key.len() <= INLINE_KEY {
            let mut bytes = [0u8; INLINE_KEY];
            bytes[..key.len()].copy_from_slice(key.as_bytes());
            Key::Inline {
                len: key.len() as u8,
                bytes,
            }
        } else {
            Key::Owned(key.into())
        }
    }
}

#[derive(Debug, Clone)]
enum Slot {
    /// Untouched: the value's bytes in the text. `compact` when the span has
    /// no whitespace between tokens, so it can be copied out as it is;
    /// `unique` when no object inside repeats a key (checked for objects of
    /// up to [`UNIQUE_CHECKED`] keys), so a lookup may stop at the first match.
    Span {
        start: u32,
        end: u32,
        compact: bool,
        unique: bool,
        parsed: Parsed,
    },
    Owned(Value),
    /// Set as JSON text by its writer (trusted to be valid JSON, compact).
    Text {
        json: Box<str>,
        parsed: Parsed,
    },
    /// An object of the text changed below its top: its members, indexed
    /// the same way; `parsed` is the whole object for readers that ask.
    Object {
        members: Box<Members>,
        parsed: Parsed,
    },
    Removed,
}

impl RawEvent {
    /// Indexes `text` when it is a JSON object this representation suits.
    /// `None` means "parse it into a tree instead": anything that is not an
    /// object, is not valid JSON, or is too large to index; the tree parser
    /// then says what is wrong with it, if anything.
    pub fn index(text: &str) -> Option<RawEvent> {
        if text.len() > u32::MAX as usize {
            return None;
        }
        let mut scan = Scanner {
            bytes: text.as_bytes(),
            pos: 0,
            depth: 1,
            spaced: false,
            unique: true,
        };
        scan.skip_whitespace();
        if scan.peek() != Some(b'{') {
            return None;
        }
        scan.pos += 1;
        // Sized for as many entries as this thread's previous event had, and
        // the few a pipeline adds (enrichments, the session tag): growing the
        // index later would copy it.
        let capacity = ENTRIES_SEEN.get() + ROOM_TO_ADD;
        let mut root = Members {
            entries: Vec::with_capacity(capacity),
            tags: Vec::with_capacity(capacity),
        };
        scan.skip_whitespace();
        if scan.peek() == Some(b'}') {
            scan.pos += 1;
        } else {
            loop {
                scan.skip_whitespace();
                if scan.peek() != Some(b'"') {
                    return None;
                }
                scan.pos += 1;
                let key_start = scan.pos;
                let escaped = scan.skip_string().ok()?;
                let key_end = scan.pos - 1;
                let key = key_at(text, key_start, key_end, escaped)?;
                scan.skip_whitespace();
                if scan.peek() != Some(b':') {
                    return None;
                }
                scan.pos += 1;
                scan.skip_whitespace();
                let start = scan.pos;
                scan.spaced = false;
                scan.unique = true;
                scan.skip_value().ok()?;
                let value = Slot::Span {
                    start: start as u32,
                    end: scan.pos as u32,
                    compact: !scan.spaced,
                    unique: scan.unique,
                    parsed: Parsed::default(),
                };
                if root.entries.len() == MAX_RAW_ENTRIES {
                    return None;
                }
                root.add(text, key, value, true);
                scan.skip_whitespace();
                match scan.peek() {
                    Some(b',') => scan.pos += 1,
                    Some(b'}') => {
                        scan.pos += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        scan.skip_whitespace();
        if scan.pos != text.len() {
            return None;
        }
        ENTRIES_SEEN.set(root.entries.len());
        Some(RawEvent {
            text: text.into(),
            root: OnceLock::from(root),
            tree: OnceLock::new(),
        })
    }

    /// Keeps a JSON object this program wrote itself, without validating
    /// it: `text` must be one compact JSON object with distinct keys at every
    /// level (checked in debug builds). It is indexed when first read or
    /// changed; written out untouched, it never is.
    pub fn index_written(text: String) -> RawEvent {
        debug_assert!(matches!(json::parse(&text), Ok(Value::Object(_))), "{text}");
        debug_assert!(
            !Members::of_object(&text, 0, text.len(), true, false, 0)
                .tags
                .contains(&REMOVED),
            "repeated key in {text}"
        );
        RawEvent {
            text: text.into_boxed_str(),
            root: OnceLock::new(),
            tree: OnceLock::new(),
        }
    }

    /// A placeholder, for taking a `RawEvent` out of a `&mut`.
    pub fn empty() -> RawEvent {
        RawEvent {
            text: Box::default(),
            root: OnceLock::from(Members::default()),
            tree: OnceLock::new(),
        }
    }

    /// The index, built now for a written object not read before.
    fn root(&self) -> &Members {
        self.root.get_or_init(|| self.index_of_written())
    }

    /// The text and the index, to change the index.
    fn parts_mut(&mut self) -> (&str, &mut Members) {
        if self.root.get().is_none() {
            let _ = self.root.set(self.index_of_written());
        }
        match self.root.get_mut() {
            Some(root) => (&self.text, root),
            None => unreachable!("the index was just set"),
        }
    }

    /// The index of written text. The writer promised distinct keys, so no
    /// member looks for an earlier one of its key (that search made indexing
    /// a summary quadratic) and nested lookups may stop at the first match.
    fn index_of_written(&self) -> Members {
        Members::of_object(&self.text, 0, self.text.len(), true, true, WRITTEN_CAPACITY)
    }

    /// The value at `segments` (non-empty), parsing the entry that holds it
    /// once if it is still text.
    pub fn get(&self, segments: &[String]) -> Option<&Value> {
        self.root().get(&self.text, segments)
    }

    /// The string at `segments`, borrowed from the text when it has no escapes.
    pub fn get_str(&self, segments: &[String]) -> Option<&str> {
        match self.root().span_of(&self.text, segments) {
            Ok(Some((start, end))) => {
                let bytes = self.text.as_bytes();
                if bytes[start] != b'"' {
                    return None;
                }
                let inner = &self.text[start + 1..end - 1];
                if !inner.contains('\\') {
                    return Some(inner);
                }
                self.get(segments).and_then(Value::as_str)
            }
            Ok(None) => None,
            Err(()) => self.get(segments).and_then(Value::as_str),
        }
    }

    /// The kind of the value at `segments`, from its first byte in the text.
    pub fn kind(&self, segments: &[String]) -> Option<Kind> {
        match self.root().span_of(&self.text, segments) {
            Ok(Some((start, end))) => Some(match self.text.as_bytes()[start] {
                b'n' => Kind::Null,
                b't' | b'f' => Kind::Bool,
                b'"' => Kind::String {
                    empty: end - start == 2,
                },
                b'[' => Kind::Array,
                b'{' => Kind::Object,
                _ => Kind::Number,
            }),
            Ok(None) => None,
            Err(()) => self.get(segments).map(Kind::of),
        }
    }

    /// Writes `value` at `segments` (non-empty) as `Event::insert` does.
    pub fn insert(&mut self, segments: &[String], value: Value) -> Option<Value> {
        self.tree.take();
        let (text, root) = self.parts_mut();
        root.insert(text, segments, value)
    }

    /// Sets the top-level `key` to the value whose JSON text is `json`.
    pub fn insert_json(&mut self, key: &str, json: Box<str>) {
        self.tree.take();
        let slot = Slot::Text {
            json,
            parsed: Parsed::default(),
        };
        let (text, root) = self.parts_mut();
        match root.find(text, key) {
            Some(index) => root.entries[index].value = slot,
            None => {
                root.push(key, slot);
            }
        }
    }

    /// Removes and returns the value at `segments`.
    pub fn remove(&mut self, segments: &[String]) -> Option<Value> {
        // Nothing changes when the path is not there: leave the text alone.
        if let Ok(None) = self.root().span_of(&self.text, segments) {
            return None;
        }
        self.tree.take();
        let (text, root) = self.parts_mut();
        root.remove(text, segments)
    }

    /// The whole event as a map.
    pub fn fields(&self) -> &Map<String, Value> {
        self.tree.get_or_init(|| self.root().to_map(&self.text))
    }

    pub fn into_map(mut self) -> Map<String, Value> {
        match self.tree.take() {
            Some(map) => map,
            None => {
                let (text, root) = self.parts_mut();
                std::mem::take(root).into_map(text)
            }
        }
    }

    /// Appends the event as one JSON object (no newline).
    pub fn write(&self, out: &mut Vec<u8>) {
        match self.root.get() {
            Some(root) => {
                out.reserve(self.text.len() + 64);
                root.write(&self.text, out);
            }
            // Written compact and not changed since: the text is the line.
            None => out.extend_from_slice(self.text.as_bytes()),
        }
    }

    /// See `Event::prefetch`.
    #[inline]
    pub fn prefetch(&self) {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            let text = self.text.as_ptr();
            let Some(root) = self.root.get() else {
                return;
            };
            let tags = root.tags.as_ptr();
            // SAFETY: prefetching is a hint that never faults, whatever the
            // address; these are live allocations anyway. SSE is part of
            // the x86_64 baseline.
            unsafe {
                _mm_prefetch::<_MM_HINT_T0>(tags.cast());
                _mm_prefetch::<_MM_HINT_T0>(tags.wrapping_add(4).cast());
                _mm_prefetch::<_MM_HINT_T0>(root.entries.as_ptr().cast());
                _mm_prefetch::<_MM_HINT_T0>(text.cast());
                _mm_prefetch::<_MM_HINT_T0>(text.wrapping_add(64).cast());
            }
        }
    }

    /// An estimate of the heap this event holds: its text and index, and the
    /// values parsed or set since.
    pub fn approx_heap_bytes(&self) -> u64 {
        self.text.len() as u64 + self.root.get().map_or(0, Members::approx_heap_bytes)
    }
}

impl Members {
    /// The members of the object at `start..end` of validated text.
    /// `unique` (from the scanner) says no object there repeats a key;
    /// otherwise repeats are found as the index finds them.
    fn of_object(
        text: &str,
        start: usize,
        end: usize,
        compact: bool,
        unique: bool,
        capacity: usize,
    ) -> Members {
        let bytes = text.as_bytes();
        let mut members = Members {
            entries: Vec::with_capacity(capacity),
            tags: Vec::with_capacity(capacity),
        };
        let mut pos = start + 1;
        loop {
            pos = skip_spaces(bytes, pos);
            match bytes[pos] {
                b'}' => break,
                b',' => pos = skip_spaces(bytes, pos + 1),
                _ => {}
            }
            let key_start = pos + 1;
            let key_end = end_of_string(bytes, key_start) - 1;
            let escaped = text[key_start..key_end].contains('\\');
            // Validated text: the key always reads.
            let key = key_at(text, key_start, key_end, escaped)
                .unwrap_or_else(|| Key::new(&text[key_start..key_end]));
            pos = skip_spaces(bytes, key_end + 1);
            pos = skip_spaces(bytes, pos + 1); // the colon
            let value_end = end_of_value(bytes, pos);
            let value = Slot::Span {
                start: pos as u32,
                end: value_end as u32,
                compact,
                unique,
                parsed: Parsed::default(),
            };
            members.add(text, key, value, !unique);
            pos = value_end;
        }
        debug_assert!(pos < end);
        members
    }

    /// Appends a member read from the text. With `repeats`, an earlier
    /// member of the same key is removed: the later one wins, as in
    /// serde_json's map.
    fn add(&mut self, text: &str, key: Key, value: Slot, repeats: bool) {
        let tag = key_tag(key_text(text, &key));
        if repeats {
            if let Some(earlier) = self.find(text, key_text(text, &key)) {
                self.entries[earlier].value = Slot::Removed;
                self.tags[earlier] = REMOVED;
            }
        }
        self.entries.push(Entry { key, value });
        self.tags.push(tag);
    }

    fn find(&self, text: &str, key: &str) -> Option<usize> {
        find_tagged(text, &self.entries, &self.tags, key_tag(key), key)
    }

    fn push(&mut self, key: &str, value: Slot) -> usize {
        self.entries.push(Entry {
            key: Key::new(key),
            value,
        });
        self.tags.push(key_tag(key));
        self.entries.len() - 1
    }

    fn get<'a>(&'a self, text: &'a str, segments: &[String]) -> Option<&'a Value> {
        let (first, rest) = segments.split_first()?;
        let entry = &self.entries[self.find(text, first)?];
        let mut value = match &entry.value {
            Slot::Owned(value) => value,
            Slot::Span {
                start, end, parsed, ..
            } => parsed.get_or_init(|| parse_span(text, *start, *end)),
            Slot::Text { json, parsed } => parsed.get_or_init(|| parse_text(json)),
            Slot::Object { members, parsed } => {
                if rest.is_empty() {
                    parsed.get_or_init(|| Value::Object(members.to_map(text)))
                } else {
                    return members.get(text, rest);
                }
            }
            Slot::Removed => return None,
        };
        for segment in rest {
            value = value.as_object()?.get(segment)?;
        }
        Some(value)
    }

    /// Where the value at `segments` is in the text, if it is there untouched;
    /// `Err(())` when the text cannot answer (the value was set, or a key on
    /// the way is spelled with escapes) and [`Members::get`] must.
    fn span_of(&self, text: &str, segments: &[String]) -> Result<Option<(usize, usize)>, ()> {
        let Some((first, rest)) = segments.split_first() else {
            return Ok(None);
        };
        let Some(index) = self.find(text, first) else {
            return Ok(None);
        };
        let (start, end, unique) = match &self.entries[index].value {
            Slot::Span {
                start, end, unique, ..
            } => (*start, *end, *unique),
            Slot::Object { members, .. } if !rest.is_empty() => return members.span_of(text, rest),
            _ => return Err(()),
        };
        let mut span = (start as usize, end as usize);
        for segment in rest {
            match find_member(text.as_bytes(), span.0, segment, unique)? {
                Some(found) => span = found,
                None => return Ok(None),
            }
        }
        Ok(Some(span))
    }

    fn insert(&mut self, text: &str, segments: &[String], value: Value) -> Option<Value> {
        let (first, rest) = segments.split_first()?;
        let index = match self.find(text, first) {
            Some(index) => index,
            None if rest.is_empty() => {
                self.push(first, Slot::Owned(value));
                return None;
            }
            None => self.push(
                first,
                Slot::Object {
                    members: Box::default(),
                    parsed: Parsed::default(),
                },
            ),
        };
        if rest.is_empty() {
            let old = std::mem::replace(&mut self.entries[index].value, Slot::Owned(value));
            return take_value(text, old);
        }
        if let Some(members) = self.object(text, index) {
            return members.insert(text, rest, value);
        }
        // Not an object of the text: a value set earlier, or something that
        // is no object and is replaced by one, as `Event::insert` does.
        let top = self.owned(text, index);
        if !top.is_object() {
            *top = Value::Object(Map::new());
        }
        let Value::Object(map) = top else {
            unreachable!("just made an object");
        };
        super::insert_into(map, rest, value)
    }

    fn remove(&mut self, text: &str, segments: &[String]) -> Option<Value> {
        let (first, rest) = segments.split_first()?;
        let index = self.find(text, first)?;
        if rest.is_empty() {
            self.tags[index] = REMOVED;
            let old = std::mem::replace(&mut self.entries[index].value, Slot::Removed);
            return take_value(text, old);
        }
        if let Some(members) = self.object(text, index) {
            return members.remove(text, rest);
        }
        let (last, parents) = rest.split_last()?;
        let mut map = self.owned(text, index).as_object_mut()?;
        for segment in parents {
            map = map.get_mut(segment)?.as_object_mut()?;
        }
        map.remove(last)
    }

    /// The members of the entry at `index` when it is an object of the text,
    /// indexed (once) for a change below it; `None` for anything else.
    fn object(&mut self, text: &str, index: usize) -> Option<&mut Members> {
        let slot = &mut self.entries[index].value;
        if let Slot::Span {
            start,
            end,
            compact,
            unique,
            ..
        } = *slot
        {
            if text.as_bytes()[start as usize] == b'{' {
                *slot = Slot::Object {
                    members: Box::new(Members::of_object(
                        text,
                        start as usize,
                        end as usize,
                        compact,
                        unique,
                        NESTED_CAPACITY,
                    )),
                    parsed: Parsed::default(),
                };
            }
        }
        match slot {
            Slot::Object { members, parsed } => {
                parsed.take();
                Some(members)
            }
            _ => None,
        }
    }

    /// The entry at `index` as an owned value, parsing it if it is text.
    fn owned(&mut self, text: &str, index: usize) -> &mut Value {
        let slot = &mut self.entries[index].value;
        if !matches!(slot, Slot::Owned(_)) {
            let old = std::mem::replace(slot, Slot::Removed);
            *slot = Slot::Owned(take_value(text, old).unwrap_or(Value::Null));
        }
        match slot {
            Slot::Owned(value) => value,
            _ => unreachable!("just made owned"),
        }
    }

    fn to_map(&self, text: &str) -> Map<String, Value> {
        let mut map = Map::new();
        for entry in &self.entries {
            let value = match &entry.value {
                Slot::Owned(value) => value.clone(),
                Slot::Span {
                    start, end, parsed, ..
                } => match parsed.get() {
                    Some(value) => value.clone(),
                    None => parse_span(text, *start, *end),
                },
                Slot::Text { json, parsed } => match parsed.get() {
                    Some(value) => value.clone(),
                    None => parse_text(json),
                },
                Slot::Object { members, parsed } => match parsed.get() {
                    Some(value) => value.clone(),
                    None => Value::Object(members.to_map(text)),
                },
                Slot::Removed => continue,
            };
            map.insert(key_text(text, &entry.key).to_owned(), value);
        }
        map
    }

    fn into_map(self, text: &str) -> Map<String, Value> {
        let mut map = Map::new();
        for entry in self.entries {
            let key = key_text(text, &entry.key).to_owned();
            if let Some(value) = take_value(text, entry.value) {
                map.insert(key, value);
            }
        }
        map
    }

    fn write(&self, text: &str, out: &mut Vec<u8>) {
        let bytes = text.as_bytes();
        out.push(b'{');
        let mut first = true;
        for entry in &self.entries {
            if matches!(entry.value, Slot::Removed) {
                continue;
            }
            if !first {
                out.push(b',');
            }
            first = false;
            match &entry.key {
                Key::Span(start, end) => {
                    out.extend_from_slice(&bytes[*start as usize - 1..=*end as usize]);
                }
                Key::Inline { .. } | Key::Owned(_) => {
                    json::write_str(key_text(text, &entry.key), out)
                }
            }
            out.push(b':');
            match &entry.value {
                Slot::Span {
                    start,
                    end,
                    compact: true,
                    ..
                } => out.extend_from_slice(&bytes[*start as usize..*end as usize]),
                Slot::Span {
                    start, end, parsed, ..
                } => match parsed.get() {
                    Some(value) => json::write_value(value, out),
                    None => json::write_value(&parse_span(text, *start, *end), out),
                },
                Slot::Owned(value) => json::write_value(value, out),
                Slot::Text { json, .. } => out.extend_from_slice(json.as_bytes()),
                Slot::Object { members, .. } => members.write(text, out),
                Slot::Removed => unreachable!("skipped above"),
            }
        }
        out.push(b'}');
    }

    fn approx_heap_bytes(&self) -> u64 {
        let mut bytes = (self.entries.capacity() * size_of::<Entry>()) as u64
            + (self.tags.capacity() * size_of::<Tag>()) as u64;
        for entry in &self.entries {
            if let Key::Owned(key) = &entry.key {
                bytes += key.len() as u64;
            }
            bytes += match &entry.value {
                Slot::Owned(value) => super::approx_value_bytes(value),
                Slot::Span { parsed, .. } => parsed.get().map_or(0, super::approx_value_bytes),
                Slot::Text { json, parsed } => {
                    json.len() as u64 + parsed.get().map_or(0, super::approx_value_bytes)
                }
                Slot::Object { members, parsed } => {
                    members.approx_heap_bytes() + parsed.get().map_or(0, super::approx_value_bytes)
                }
                Slot::Removed => 0,
            };
        }
        bytes
    }
}

/// Keys of a nested object checked for repeats; a larger object is taken to
/// repeat one (lookups in it then read all of it, which is only slower).
const UNIQUE_CHECKED: usize = 16;

/// A key's length and its first [`TAG_BYTES`] bytes in one number.
type Tag = u128;

/// Keys this long or shorter are wholly in their tag.
const TAG_BYTES: usize = 15;

/// Two keys with different tags differ, and two keys of at most
/// [`TAG_BYTES`] bytes with equal tags are equal: most lookups compare tags
/// only, without touching the entries or the text (which, for an event that
/// crossed threads or waited in a buffer, are cache misses).
#[inline]
fn key_tag(key: &str) -> Tag {
    bytes_tag(key.as_bytes())
}

#[inline]
fn bytes_tag(bytes: &[u8]) -> Tag {
    let mut head = [0u8; 16];
    let n = bytes.len().min(TAG_BYTES);
    head[..n].copy_from_slice(&bytes[..n]);
    head[15] = bytes.len().min(255) as u8;
    Tag::from_le_bytes(head)
}

/// The live entry whose key is `key` (tagged `tag`).
#[inline]
fn find_tagged(text: &str, entries: &[Entry], tags: &[Tag], tag: Tag, key: &str) -> Option<usize> {
    let mut end = tags.len();
    while let Some(index) = tags[..end].iter().rposition(|&t| t == tag) {
        if key.len() <= TAG_BYTES || key_text(text, &entries[index].key) == key {
            return Some(index);
        }
        end = index;
    }
    None
}

/// The key spelled between the quotes at `start..end` of `text`: a span
/// when it has no escapes, else decoded (`None` if the escapes are invalid).
fn key_at(text: &str, start: usize, end: usize, escaped: bool) -> Option<Key> {
    if !escaped {
        return Some(Key::Span(start as u32, end as u32));
    }
    match json::parse(&text[start - 1..=end]) {
        Ok(Value::String(key)) => Some(Key::Owned(key.into())),
        _ => None,
    }
}

fn key_text<'t>(text: &'t str, key: &'t Key) -> &'t str {
    match key {
        Key::Span(start, end) => &text[*start as usize..*end as usize],
        // Copied from a `&str` whole, so always UTF-8.
        Key::Inline { len, bytes } => std::str::from_utf8(&bytes[..*len as usize]).unwrap_or(""),
        Key::Owned(key) => key,
    }
}

/// Parses text its writer promised is JSON; a string of it if that was wrong.
fn parse_text(json: &str) -> Value {
    json::parse(json).unwrap_or_else(|_| Value::String(json.to_owned()))
}

/// Parses a span the index validated.
fn parse_span(text: &str, start: u32, end: u32) -> Value {
    // Validated when indexed, so this cannot fail; null is the harmless answer
    // if that promise were ever broken.
    json::parse(&text[start as usize..end as usize]).unwrap_or(Value::Null)
}

fn take_value(text: &str, slot: Slot) -> Option<Value> {
    match slot {
        Slot::Owned(value) => Some(value),
        Slot::Span {
            start, end, parsed, ..
        } => Some(
            parsed
                .into_inner()
                .unwrap_or_else(|| parse_span(text, start, end)),
        ),
        Slot::Text { json, parsed } => {
            Some(parsed.into_inner().unwrap_or_else(|| parse_text(&json)))
        }
        Slot::Object { members, parsed } => Some(
            parsed
                .into_inner()
                .unwrap_or_else(|| Value::Object(members.into_map(text))),
        ),
        Slot::Removed => None,
    }
}

/// In validated text, the span of the member `key` of the object starting at
/// `at` (the last one, if repeated: unless `unique` says no key repeats, the
/// whole object is read); `Ok(None)` if absent or `at` is not an object;
/// `Err(())` if a key is spelled with escapes (the caller parses).
fn find_member(
    bytes: &[u8],
    at: usize,
    key: &str,
    unique: bool,
) -> Result<Option<(usize, usize)>, ()> {
    if bytes[at] != b'{' {
        return Ok(None);
    }
    let mut pos = at + 1;
    let mut found = None;
    loop {
        pos = skip_spaces(bytes, pos);
        match bytes[pos] {
            b'}' => return Ok(found),
            b',' => {
                pos = skip_spaces(bytes, pos + 1);
            }
            _ => {}
        }
        // At a key's opening quote.
        let key_start = pos + 1;
        let key_end = end_of_string(bytes, key_start);
        let name = &bytes[key_start..key_end - 1];
        if name.contains(&b'\\') {
            return Err(());
        }
        pos = skip_spaces(bytes, key_end);
        pos = skip_spaces(bytes, pos + 1); // the colon
        let value_end = end_of_value(bytes, pos);
        if name == key.as_bytes() {
            if unique {
                return Ok(Some((pos, value_end)));
            }
            found = Some((pos, value_end));
        }
        pos = value_end;
    }
}

fn skip_spaces(bytes: &[u8], mut pos: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = bytes.get(pos) {
        pos += 1;
    }
    pos
}

/// In validated text, the index just past the string whose contents start at `pos`.
fn end_of_string(bytes: &[u8], mut pos: usize) -> usize {
    loop {
        match memchr::memchr2(b'"', b'\\', &bytes[pos..]) {
            Some(offset) if bytes[pos + offset] == b'\\' => pos += offset + 2,
            Some(offset) => return pos + offset + 1,
            None => return bytes.len(),
        }
    }
}

/// In validated text, the index just past the value starting at `pos`.
fn end_of_value(bytes: &[u8], mut pos: usize) -> usize {
    match bytes[pos] {
        b'"' => end_of_string(bytes, pos + 1),
        b'{' | b'[' => {
            let mut depth = 0usize;
            loop {
                match bytes[pos] {
                    b'"' => {
                        pos = end_of_string(bytes, pos + 1);
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return pos + 1;
                        }
                    }
                    _ => {}
                }
                pos += 1;
            }
        }
        _ => {
            while let Some(&b) = bytes.get(pos) {
                if matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') {
                    break;
                }
                pos += 1;
            }
            pos
        }
    }
}

/// A validating pass over JSON that builds nothing: it accepts exactly what
/// [`json::parse`] accepts (checked by the differential tests).
struct Scanner<'a> {
    bytes: &'a [u8],
    pos: usize,
    depth: u32,
    /// Whitespace was skipped between tokens since last cleared.
    spaced: bool,
    /// No object since last set repeated a key (as far as checked).
    unique: bool,
}

impl Scanner<'_> {
    #[inline]
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    #[inline]
    fn skip_whitespace(&mut self) {
        let start = self.pos;
        self.pos = skip_spaces(self.bytes, self.pos);
        self.spaced |= self.pos != start;
    }

    fn skip_value(&mut self) -> Result<(), ()> {
        match self.peek().ok_or(())? {
            b'"' => {
                self.pos += 1;
                self.skip_string().map(drop)
            }
            b'{' => self.skip_container(b'}', true),
            b'[' => self.skip_container(b']', false),
            b't' => self.skip_literal(b"true"),
            b'f' => self.skip_literal(b"false"),
            b'n' => self.skip_literal(b"null"),
            b'-' | b'0'..=b'9' => self.skip_number(),
            _ => Err(()),
        }
    }

    fn skip_literal(&mut self, word: &[u8]) -> Result<(), ()> {
        if self.bytes.get(self.pos..self.pos + word.len()) == Some(word) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(())
        }
    }

    fn skip_container(&mut self, close: u8, object: bool) -> Result<(), ()> {
        self.depth += 1;
        if self.depth >= MAX_DEPTH {
            return Err(());
        }
        self.pos += 1;
        self.skip_whitespace();
        if self.peek() == Some(close) {
            self.pos += 1;
            self.depth -= 1;
            return Ok(());
        }
        // The keys seen so far in this object, to notice a repeated one.
        let mut keys = [(0 as Tag, 0usize, 0usize); UNIQUE_CHECKED];
        let mut count = 0;
        loop {
            self.skip_whitespace();
            if object {
                if self.peek() != Some(b'"') {
                    return Err(());
                }
                self.pos += 1;
                let start = self.pos;
                let escaped = self.skip_string()?;
                if self.unique {
                    // An escaped key may spell another one differently;
                    // a large object is not checked: both count as repeated.
                    let key = &self.bytes[start..self.pos - 1];
                    let tag = bytes_tag(key);
                    let repeated = escaped
                        || count == UNIQUE_CHECKED
                        || keys[..count]
                            .iter()
                            .any(|&(t, s, e)| t == tag && &self.bytes[s..e] == key);
                    if repeated {
                        self.unique = false;
                    } else {
                        keys[count] = (tag, start, self.pos - 1);
                        count += 1;
                    }
                }
                self.skip_whitespace();
                if self.peek() != Some(b':') {
                    return Err(());
                }
                self.pos += 1;
                self.skip_whitespace();
            }
            self.skip_value()?;
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b) if b == close => {
                    self.pos += 1;
                    self.depth -= 1;
                    return Ok(());
                }
                _ => return Err(()),
            }
        }
    }

    /// Past a string whose opening quote is consumed; true if it had escapes.
    fn skip_string(&mut self) -> Result<bool, ()> {
        let mut escaped = false;
        loop {
            self.pos = json::find_special(self.bytes, self.pos);
            match self.peek().ok_or(())? {
                b'"' => {
                    self.pos += 1;
                    return Ok(escaped);
                }
                b'\\' => {
                    escaped = true;
                    self.pos += 1;
                    self.skip_escape()?;
                }
                _ => return Err(()), // a control character
            }
        }
    }

    fn skip_escape(&mut self) -> Result<(), ()> {
        let byte = self.peek().ok_or(())?;
        self.pos += 1;
        match byte {
            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Ok(()),
            b'u' => {
                let first = self.hex4()?;
                match first {
                    0xDC00..=0xDFFF => Err(()),
                    0xD800..=0xDBFF => {
                        if self.bytes.get(self.pos..self.pos + 2) != Some(b"\\u") {
                            return Err(());
                        }
                        self.pos += 2;
                        match self.hex4()? {
                            0xDC00..=0xDFFF => Ok(()),
                            _ => Err(()),
                        }
                    }
                    _ => Ok(()),
                }
            }
            _ => Err(()),
        }
    }

    fn hex4(&mut self) -> Result<u16, ()> {
        let digits = self.bytes.get(self.pos..self.pos + 4).ok_or(())?;
        let mut n = 0u16;
        for &b in digits {
            n = n * 16 + (b as char).to_digit(16).ok_or(())? as u16;
        }
        self.pos += 4;
        Ok(n)
    }

    /// JSON's number grammar; a value beyond f64's range is refused, as the
    /// parser refuses it.
    fn skip_number(&mut self) -> Result<(), ()> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        let int_start = self.pos;
        match self.peek().ok_or(())? {
            b'0' => self.pos += 1,
            b'1'..=b'9' => self.skip_digits(),
            _ => return Err(()),
        }
        let int_digits = self.pos - int_start;
        if let Some(b'0'..=b'9') = self.peek() {
            return Err(()); // a leading zero
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(());
            }
            self.skip_digits();
        }
        let mut exponent = false;
        if let Some(b'e' | b'E') = self.peek() {
            exponent = true;
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(());
            }
            self.skip_digits();
        }
        // Without an exponent, fewer than 309 integer digits is always finite.
        if exponent || int_digits > 308 {
            let text = std::str::from_utf8(&self.bytes[start..self.pos]).map_err(drop)?;
            let value: f64 = text.parse().map_err(drop)?;
            if !value.is_finite() {
                return Err(());
            }
        }
        Ok(())
    }

    fn skip_digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Event, FieldPath, Repr};
    use super::*;
    use proptest::prelude::*;

    fn path(p: &str) -> FieldPath {
        FieldPath::parse(p).unwrap()
    }

    fn raw(text: &str) -> Event {
        let event = Event::from_json(text).unwrap();
        assert!(
            matches!(event.0, Repr::Raw(_)),
            "{text} was not kept as text"
        );
        event
    }

    fn line(event: &Event) -> Value {
        let mut out = Vec::new();
        event.write_json_line(&mut out);
        assert_eq!(out.pop(), Some(b'\n'));
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn reads_borrow_from_the_text() {
        let e = raw(r#"{"type":"track","context":{"device":{"id":"m-1"},"n":3},"e":""}"#);
        assert_eq!(e.get_str(&path("context.device.id")), Some("m-1"));
        assert_eq!(e.get_str(&path("context.n")), None);
        assert_eq!(e.kind(&path("context.n")), Some(Kind::Number));
        assert!(!e.has_value(&path("e")));
        assert!(!e.has_value(&path("context.device.nope")));
        let Repr::Raw(inner) = &e.0 else {
            unreachable!()
        };
        // Nothing was parsed to answer those.
        assert!(inner
            .root()
            .entries
            .iter()
            .all(|e| matches!(&e.value, Slot::Span { parsed, .. } if parsed.get().is_none())));
    }

    #[test]
    fn repeated_and_escaped_keys_read_as_serde_json_reads_them() {
        let text = r#"{"a":1,"b":{"k":1,"k":"two"},"a":3,"\u0063":"see","d":{"\u006b":4}}"#;
        let e = raw(text);
        let reference: Value = serde_json::from_str(text).unwrap();
        assert_eq!(Value::Object(e.fields().clone()), reference);
        assert_eq!(e.get(&path("a")), Some(&Value::from(3)));
        assert_eq!(e.get_str(&path("b.k")), Some("two"));
        assert_eq!(e.get_str(&path("c")), Some("see"));
        assert_eq!(e.get(&path("d.k")), Some(&Value::from(4)));
        assert_eq!(e.kind(&path("d.k")), Some(Kind::Number));
        assert_eq!(line(&e), reference);
    }

    #[test]
    fn long_keys_sharing_a_prefix_are_told_apart() {
        let text = r#"{"a_long_common_prefix_1":1,"a_long_common_prefix_2":{"a_long_common_prefix_1":2,"a_long_common_prefix_3":3}}"#;
        let mut e = raw(text);
        assert_eq!(
            e.get(&path("a_long_common_prefix_1")),
            Some(&Value::from(1))
        );
        assert_eq!(e.get(&path("a_long_common_prefix_3")), None);
        assert_eq!(
            e.kind(&path("a_long_common_prefix_2.a_long_common_prefix_3")),
            Some(Kind::Number)
        );
        assert_eq!(
            e.remove(&path("a_long_common_prefix_1")),
            Some(Value::from(1))
        );
        e.insert(&path("a_long_common_prefix_4"), Value::from(4));
        e.insert(&path("a_key_longer_than_any_inline_one"), Value::from(5));
        assert_eq!(
            e.get(&path("a_key_longer_than_any_inline_one")),
            Some(&Value::from(5))
        );
        assert_eq!(line(&e)["a_key_longer_than_any_inline_one"], Value::from(5));
        assert_eq!(
            e.get(&path("a_long_common_prefix_2.a_long_common_prefix_1")),
            Some(&Value::from(2))
        );
        assert_eq!(
            e.get(&path("a_long_common_prefix_4")),
            Some(&Value::from(4))
        );
        assert_eq!(e.get(&path("a_long_common_prefix_1")), None);
    }

    #[test]
    fn changes_are_written_and_untouched_entries_copied() {
        let mut e = raw(r#"{"z":1,"p":{"sku":"S-1","q":2},"s":"caf\u00e9", "sp" : [1, 2]}"#);
        e.insert(&path("p.item"), Value::from("S-1"));
        e.remove(&path("p.sku"));
        e.insert(&path("new"), Value::from(true));
        e.remove(&path("z"));
        let mut out = Vec::new();
        e.write_json_line(&mut out);
        // Arrival order kept (nested too), the escape kept, the spaced array
        // re-written.
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"p\":{\"q\":2,\"item\":\"S-1\"},\"s\":\"caf\\u00e9\",\"sp\":[1,2],\"new\":true}\n"
        );
    }

    #[test]
    fn written_objects_index_like_read_ones() {
        let text = r#"{"s":"a\"b\\c\u0001","n":-1.5e3,"o":{"k":[1,{"x":null}],"j":2},"e":"","\u0061":true}"#;
        let written = Event::from_written_json(text.to_owned());
        let read = raw(text);
        // Written out untouched, the text is the line and no index is built.
        assert_eq!(line(&written), line(&read));
        let Repr::Raw(inner) = &written.0 else {
            unreachable!()
        };
        assert!(inner.root.get().is_none());
        assert_eq!(written.fields(), read.fields());
        for p in ["s", "n", "o.k", "o.j", "o.k.x", "e", "a", "zz"] {
            let p = path(p);
            assert_eq!(written.get(&p), read.get(&p), "{p}");
            assert_eq!(written.get_str(&p), read.get_str(&p), "{p}");
            assert_eq!(written.kind(&p), read.kind(&p), "{p}");
        }
        assert_eq!(line(&written), line(&read));
        // Changed (or cloned, or taken apart) before any read: indexed then.
        let mut read = raw(text);
        let mut changed = Event::from_written_json(text.to_owned());
        let copy = changed.clone();
        for e in [&mut changed, &mut read] {
            e.insert(&path("o.k"), Value::from(7));
            e.insert_json(&path("t"), "[true]".to_owned());
            assert_eq!(e.remove(&path("n")), Some(Value::from(-1500.0)));
        }
        assert_eq!(line(&changed), line(&read));
        assert_eq!(line(&copy), line(&raw(text)));
        assert_eq!(
            Event::from_written_json(text.to_owned()).into_fields(),
            raw(text).into_fields()
        );
    }

    #[test]
    fn lines_it_does_not_suit_become_trees() {
        let many: Vec<String> = (0..=MAX_RAW_ENTRIES)
            .map(|i| format!("\"k{i}\":{i}"))
            .collect();
        let text = format!("{{{}}}", many.join(","));
        let e = Event::from_json(&text).unwrap();
        assert!(matches!(e.0, Repr::Tree(_)));
        assert_eq!(e.get(&path("k3")), Some(&Value::from(3)));
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
            "[a-c\"\\\\é\u{1}]{0,4}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec(("[a-c]{1,2}", inner), 0..6)
                    .prop_map(|entries| Value::Object(entries.into_iter().collect())),
            ]
        })
    }

    fn object_text() -> impl Strategy<Value = String> {
        // Objects written compact, pretty, or with keys repeated at the top
        // or one level down.
        (
            prop::collection::vec(("[a-c]{1,2}", json_value()), 0..8),
            0..4u8,
        )
            .prop_map(|(entries, style)| match style {
                0 => serde_json::to_string(&Value::Object(entries.into_iter().collect())).unwrap(),
                1 => serde_json::to_string_pretty(&Value::Object(entries.into_iter().collect()))
                    .unwrap(),
                _ => {
                    let parts: Vec<String> = entries
                        .iter()
                        .map(|(k, v)| format!("{}:{}", Value::from(k.as_str()), v))
                        .collect();
                    if style == 2 {
                        format!("{{{}}}", parts.join(","))
                    } else {
                        // Repeated keys one level down.
                        format!("{{\"b\":1,\"a\":{{{}}}}}", parts.join(","))
                    }
                }
            })
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(String, Value),
        InsertJson(String, Value),
        Remove(String),
    }

    fn op() -> impl Strategy<Value = Op> {
        let path = "[a-c]{1,2}(\\.[a-c]{1,2}){0,2}";
        prop_oneof![
            (path, json_value()).prop_map(|(p, v)| Op::Insert(p, v)),
            (path, json_value()).prop_map(|(p, v)| Op::InsertJson(p, v)),
            path.prop_map(Op::Remove),
        ]
    }

    /// Every read of every short path answers the same on both.
    fn same_reads(raw: &Event, tree: &Event) {
        for a in ["a", "b", "c", "aa", "ab", "ba"] {
            for rest in ["", ".a", ".b", ".c", ".a.b", ".b.a", ".aa"] {
                let p = path(&format!("{a}{rest}"));
                assert_eq!(raw.get(&p), tree.get(&p), "get {p}");
                assert_eq!(raw.get_str(&p), tree.get_str(&p), "get_str {p}");
                assert_eq!(raw.kind(&p), tree.kind(&p), "kind {p}");
                assert_eq!(raw.has_value(&p), tree.has_value(&p), "has_value {p}");
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        /// Kept as text or not, an event is the map serde_json reads from
        /// the same line, through reads, changes and writing out.
        #[test]
        fn behaves_like_the_tree_serde_json_reads(text in object_text(), ops in prop::collection::vec(op(), 0..6)) {
            let reference: Map<String, Value> = serde_json::from_str(&text).unwrap();
            let mut raw = Event::from_json(&text).unwrap();
            let mut tree = Event::from_map(reference);
            same_reads(&raw, &tree);
            for op in ops {
                match op {
                    Op::Insert(p, v) => {
                        let p = path(&p);
                        prop_assert_eq!(raw.insert(&p, v.clone()), tree.insert(&p, v));
                    }
                    Op::InsertJson(p, v) => {
                        let p = path(&p);
                        raw.insert_json(&p, v.to_string());
                        tree.insert(&p, v);
                    }
                    Op::Remove(p) => {
                        let p = path(&p);
                        prop_assert_eq!(raw.remove(&p), tree.remove(&p));
                    }
                }
                same_reads(&raw, &tree);
                prop_assert_eq!(raw.fields(), tree.fields());
                prop_assert_eq!(line(&raw), Value::Object(tree.fields().clone()));
            }
            prop_assert_eq!(raw.clone().into_fields(), tree.clone().into_fields());
            prop_assert!(raw == tree);
        }

        /// Damaged lines: refused exactly when serde_json refuses them (as an
        /// object), and read as serde_json reads them otherwise.
        #[test]
        fn accepts_what_serde_json_accepts(
            text in object_text(),
            at in any::<prop::sample::Index>(),
            byte in prop::sample::select(b"{}[]\",:\\ 0123456789-+.eEtrufalsn\x01".to_vec()),
            how in 0..3u8,
        ) {
            let mut bytes = text.into_bytes();
            let i = at.index(bytes.len() + 1);
            match how {
                0 => { bytes.truncate(i); }
                1 => { if i < bytes.len() { bytes[i] = byte } }
                _ => bytes.insert(i, byte),
            }
            let Ok(text) = std::str::from_utf8(&bytes) else { return Ok(()) };
            let reference = serde_json::from_str::<Value>(text);
            match (Event::from_json(text), reference) {
                (Ok(event), Ok(Value::Object(map))) => {
                    prop_assert_eq!(event.fields(), &map);
                    prop_assert_eq!(line(&event), Value::Object(map));
                }
                (Err(_), Ok(Value::Object(_))) => prop_assert!(false, "refused {:?}", text),
                (Ok(_), _) => prop_assert!(false, "accepted {:?}", text),
                (Err(_), _) => {}
            }
        }
    }
}
