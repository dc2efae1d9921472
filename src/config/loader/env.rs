//! Step 1: `${VAR}` / `${VAR:-default}` / `$$` substitution on the raw text,
//! keeping track of what was unset so it can be reported with its line.

/// The text with variables replaced, and the problems found as `(line, message)`.
pub(super) struct Substituted {
    pub(super) text: String,
    pub(super) problems: Vec<(usize, String)>,
}

/// Where the scanner is, as far as `#` and `$` are concerned.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Scan {
    Bare,
    Comment,
    /// `"…"`
    Basic,
    /// `'…'`
    Literal,
    /// `"""…"""`
    MultiBasic,
    /// `'''…'''`
    MultiLiteral,
}

/// Replaces `${VAR}`, `${VAR:-default}` and `$$` outside comments. A `$` not
/// followed by `{` or `$` is kept as it is.
pub(super) fn substitute_env(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Substituted {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut problems = Vec::new();
    let mut scan = Scan::Bare;
    let mut line = 1;
    // Start of the text not yet copied to `out`. Every index compared against
    // is an ASCII byte, so slicing at it stays on a char boundary.
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        let rest = &bytes[i..];
        match (scan, bytes[i]) {
            (_, b'\n') => {
                line += 1;
                // Single-line strings end at the line's end; an unterminated
                // one is the parser's to report.
                if matches!(scan, Scan::Comment | Scan::Basic | Scan::Literal) {
                    scan = Scan::Bare;
                }
            }
            (Scan::Comment, _) => {}
            (Scan::Bare, b'#') => scan = Scan::Comment,
            (Scan::Bare, b'"') if rest.starts_with(b"\"\"\"") => {
                scan = Scan::MultiBasic;
                i += 3;
                continue;
            }
            (Scan::Bare, b'"') => scan = Scan::Basic,
            (Scan::Bare, b'\'') if rest.starts_with(b"'''") => {
                scan = Scan::MultiLiteral;
                i += 3;
                continue;
            }
            (Scan::Bare, b'\'') => scan = Scan::Literal,
            // Skip the escaped character, unless it is a line-ending backslash.
            (Scan::Basic | Scan::MultiBasic, b'\\') if rest.get(1) != Some(&b'\n') => {
                i += 2;
                continue;
            }
            (Scan::Basic, b'"') | (Scan::Literal, b'\'') => scan = Scan::Bare,
            (Scan::MultiBasic, b'"') if rest.starts_with(b"\"\"\"") => {
                scan = Scan::Bare;
                i += 3;
                continue;
            }
            (Scan::MultiLiteral, b'\'') if rest.starts_with(b"'''") => {
                scan = Scan::Bare;
                i += 3;
                continue;
            }
            (_, b'$') if rest.get(1) == Some(&b'$') => {
                out.push_str(&text[copied..i]);
                out.push('$');
                i += 2;
                copied = i;
                continue;
            }
            (_, b'$') if rest.get(1) == Some(&b'{') => {
                let inner_start = i + 2;
                let close = text[inner_start..]
                    .find(['}', '\n'])
                    .map(|at| inner_start + at)
                    .filter(|&at| bytes[at] == b'}');
                let Some(close) = close else {
                    problems.push((
                        line,
                        "`${` is not closed by `}` on the same line (write `$${` for a literal `${`)"
                            .to_owned(),
                    ));
                    i += 2;
                    continue;
                };
                let reference = &text[inner_start..close];
                match lookup(reference, env) {
                    Ok(value) => {
                        out.push_str(&text[copied..i]);
                        out.push_str(&value);
                        copied = close + 1;
                    }
                    Err(Lookup::Invalid) => problems.push((
                        line,
                        format!(
                            "`${{{reference}}}` is not a valid environment variable reference \
                             (write `${{NAME}}` or `${{NAME:-default}}`)"
                        ),
                    )),
                    Err(Lookup::Unset(name)) => {
                        problems.push((
                            line,
                            format!(
                                "environment variable \"{name}\" is not set and `${{{name}}}` has \
                                 no default (write `${{{name}:-default}}` to give one)"
                            ),
                        ));
                        // Leave nothing behind: the rest of the file is still checked.
                        out.push_str(&text[copied..i]);
                        copied = close + 1;
                    }
                }
                i = close + 1;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out.push_str(&text[copied..]);
    Substituted {
        text: out,
        problems,
    }
}

pub(super) enum Lookup<'r> {
    /// Not `NAME` or `NAME:-default`.
    Invalid,
    /// Unset, with no default.
    Unset(&'r str),
}

/// The value of the reference between `${` and `}`.
pub(super) fn lookup<'r>(
    reference: &'r str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, Lookup<'r>> {
    let (name, default) = match reference.split_once(":-") {
        Some((name, default)) => (name, Some(default)),
        None => (reference, None),
    };
    let valid_name = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid_name {
        return Err(Lookup::Invalid);
    }
    match (env(name), default) {
        (Some(value), Some(default)) if value.is_empty() => Ok(default.to_owned()),
        (Some(value), _) => Ok(value),
        (None, Some(default)) => Ok(default.to_owned()),
        (None, None) => Err(Lookup::Unset(name)),
    }
}

// ---------------------------------------------------------------------------
// Finding lines.
