//! Finding the line of a field: byte offsets to line numbers, and field
//! paths such as `ops[1].from` looked up in the parsed document.

use super::*;

/// Byte offsets of line starts, to turn spans into 1-based lines.
pub(super) struct LineIndex {
    pub(super) starts: Vec<usize>,
}

impl LineIndex {
    pub(super) fn new(text: &str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(at, _)| at + 1))
            .collect();
        LineIndex { starts }
    }

    pub(super) fn line(&self, offset: usize) -> usize {
        self.starts.partition_point(|&start| start <= offset)
    }

    /// 1-based column of `offset`, in characters.
    pub(super) fn column(&self, text: &str, offset: usize) -> usize {
        let start = self.starts[self.line(offset) - 1];
        text.get(start..offset)
            .map_or(1, |before| before.chars().count() + 1)
    }

    pub(super) fn line_of(&self, span: Option<Range<usize>>) -> Option<usize> {
        span.map(|span| self.line(span.start))
    }
}

/// Something in the document a field path can step through.
#[derive(Clone, Copy)]
pub(super) enum Node<'d> {
    Item(&'d Item),
    Value(&'d toml_edit::Value),
    Table(&'d toml_edit::Table),
}

impl<'d> Node<'d> {
    pub(super) fn table_like(self) -> Option<&'d dyn TableLike> {
        match self {
            Node::Item(item) => item.as_table_like(),
            Node::Value(value) => value.as_inline_table().map(|t| t as &dyn TableLike),
            Node::Table(table) => Some(table),
        }
    }

    pub(super) fn element(self, index: usize) -> Option<Node<'d>> {
        match self {
            Node::Item(Item::ArrayOfTables(tables)) => tables.get(index).map(Node::Table),
            Node::Item(Item::Value(value)) | Node::Value(value) => {
                value.as_array()?.get(index).map(Node::Value)
            }
            _ => None,
        }
    }

    pub(super) fn span(self) -> Option<Range<usize>> {
        match self {
            Node::Item(item) => item.span(),
            Node::Value(value) => value.span(),
            Node::Table(table) => table.span(),
        }
    }
}

/// One step of a field path such as `ops[1].from`.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Segment<'p> {
    Key(&'p str),
    Index(usize),
}

pub(super) fn path_segments(path: &str) -> Vec<Segment<'_>> {
    let mut segments = Vec::new();
    if path.is_empty() {
        return segments;
    }
    for piece in path.split('.') {
        let key_end = piece.find('[').unwrap_or(piece.len());
        if key_end > 0 {
            segments.push(Segment::Key(&piece[..key_end]));
        }
        for index in piece[key_end..].split('[').filter(|part| !part.is_empty()) {
            match index.trim_end_matches(']').parse() {
                Ok(index) => segments.push(Segment::Index(index)),
                // `a[x]` is not a path serde writes; treat it as a key.
                Err(_) => segments.push(Segment::Key(index)),
            }
        }
    }
    segments
}

/// The line of the field at `path` inside `item`: the deepest part of the
/// path found, else `fallback`.
pub(super) fn locate(lines: &LineIndex, item: &Item, path: &str, fallback: usize) -> usize {
    find_field(lines, item, path, fallback).0
}

/// The line of the field at `path` inside `item` (as [`locate`]), and the
/// field itself when the whole path was found. Keys holding dots
/// (`events."a.b"`) are found by trying the following segments joined back
/// together.
pub(super) fn find_field<'d>(
    lines: &LineIndex,
    item: &'d Item,
    path: &str,
    fallback: usize,
) -> (usize, Option<Node<'d>>) {
    let segments = path_segments(path);
    let mut rest = segments.as_slice();
    let mut node = Node::Item(item);
    let mut line = fallback;
    while let Some(first) = rest.first() {
        match first {
            Segment::Index(index) => {
                let Some(next) = node.element(*index) else {
                    break;
                };
                line = lines.line_of(next.span()).unwrap_or(line);
                node = next;
                rest = &rest[1..];
            }
            Segment::Key(_) => {
                let Some(table) = node.table_like() else {
                    break;
                };
                let mut found = None;
                let mut joined = String::new();
                for (taken, segment) in rest.iter().enumerate() {
                    let Segment::Key(key) = segment else { break };
                    if taken > 0 {
                        joined.push('.');
                    }
                    joined.push_str(key);
                    if let Some((key, value)) = table.get_key_value(&joined) {
                        found = Some((taken + 1, key, value));
                        break;
                    }
                }
                let Some((taken, key, value)) = found else {
                    break;
                };
                line = lines
                    .line_of(key.span())
                    .or_else(|| lines.line_of(value.span()))
                    .unwrap_or(line);
                node = Node::Item(value);
                rest = &rest[taken..];
            }
        }
    }
    (line, rest.is_empty().then_some(node))
}

/// A scalar as written in the file (`"nope"`, `3`), to quote in messages.
pub(super) fn scalar_text(node: Node<'_>) -> Option<String> {
    use toml_edit::Value;
    let value = match node {
        Node::Item(Item::Value(value)) | Node::Value(value) => value,
        _ => return None,
    };
    let text = match value {
        Value::String(text) => text.display_repr(),
        Value::Integer(number) => number.display_repr(),
        Value::Float(number) => number.display_repr(),
        Value::Boolean(flag) => flag.display_repr(),
        Value::Datetime(time) => time.display_repr(),
        Value::Array(_) | Value::InlineTable(_) => return None,
    };
    Some(text.into_owned())
}

// ---------------------------------------------------------------------------
// Steps 3 to 7.
