//! Writing an event's JSON by hand, byte by byte: faster than building a
//! value and serializing it, and the output never changes with a library.

use super::*;

pub(super) fn push_context(line: &mut Vec<u8>, machine: &Machine) {
    let platform = machine.platform;
    let (app, version, build) = machine.app;
    let (locale, timezone, _) = machine.locale;
    push(line, "\"context\":{\"device\":{\"id\":\"m-");
    push_decimal(line, machine.index, 6);
    push(line, "\",\"manufacturer\":\"");
    push(line, platform.manufacturer);
    push(line, "\",\"model\":\"");
    push(line, machine.model);
    push(line, "\"},\"app\":{\"name\":\"");
    push(line, app);
    push(line, "\",\"version\":\"");
    push(line, version);
    push(line, "\",\"build\":\"");
    push(line, build);
    push(
        line,
        "\"},\"library\":{\"name\":\"analytics-python\",\"version\":\"",
    );
    push(line, machine.library_version);
    push(line, "\"},\"ip\":\"");
    for (i, octet) in machine.ip.into_iter().enumerate() {
        if i > 0 {
            line.push(b'.');
        }
        push_decimal(line, u64::from(octet), 1);
    }
    push(line, "\",\"locale\":\"");
    push(line, locale);
    push(line, "\",\"timezone\":\"");
    push(line, timezone);
    push(line, "\",\"os\":{\"name\":\"");
    push(line, platform.os);
    push(line, "\",\"version\":\"");
    push(line, machine.os_version);
    push(line, "\"},\"userAgent\":\"");
    push(line, platform.user_agent);
    push(line, "\"}");
}

// The helpers below write JSON by hand: `write!` spent more time in the
// formatting machinery than in building the event. Every string they are given
// comes from this file and needs no JSON escaping.

pub(super) fn push(line: &mut Vec<u8>, text: &str) {
    line.extend_from_slice(text.as_bytes());
}

/// `n` in decimal, zero-padded to at least `width` digits.
pub(super) fn push_decimal(line: &mut Vec<u8>, mut n: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut at = digits.len();
    while n > 0 || digits.len() - at < width.max(1) {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    line.extend_from_slice(&digits[at..]);
}

/// The low `width` hex digits of `n`.
pub(super) fn push_hex(line: &mut Vec<u8>, n: u64, width: usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for i in (0..width).rev() {
        line.push(HEX[((n >> (i * 4)) & 0xF) as usize]);
    }
}

/// `path`, followed by the product's id on a product page.
pub(super) fn push_page_path(line: &mut Vec<u8>, path: &str, product: Option<u64>) {
    push(line, path);
    if let Some(id) = product {
        push(line, "p-");
        push_decimal(line, id, 5);
    }
}

/// A UUID-shaped (version 4 layout) rendering of 128 bits.
pub(super) fn push_uuid(line: &mut Vec<u8>, (hi, lo): (u64, u64)) {
    push_hex(line, hi >> 32, 8);
    line.push(b'-');
    push_hex(line, hi >> 16, 4);
    push(line, "-4");
    push_hex(line, hi, 3);
    line.push(b'-');
    push_hex(line, ((lo >> 48) & 0x3FFF) | 0x8000, 4);
    line.push(b'-');
    push_hex(line, lo, 12);
}

/// RFC 3339 in UTC with milliseconds, e.g. `2024-03-01T00:00:01.250Z`.
pub(super) fn push_time(line: &mut Vec<u8>, ms: i64) -> io::Result<()> {
    let Some(time) = DateTime::from_timestamp_millis(ms) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("timestamp {ms} ms after 1970 is out of range; choose an earlier start"),
        ));
    };
    let year = u64::try_from(time.year()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("timestamp {ms} ms after 1970 is before year 0; choose a later start"),
        )
    })?;
    push_decimal(line, year, 4);
    line.push(b'-');
    push_decimal(line, u64::from(time.month()), 2);
    line.push(b'-');
    push_decimal(line, u64::from(time.day()), 2);
    line.push(b'T');
    push_decimal(line, u64::from(time.hour()), 2);
    line.push(b':');
    push_decimal(line, u64::from(time.minute()), 2);
    line.push(b':');
    push_decimal(line, u64::from(time.second()), 2);
    line.push(b'.');
    push_decimal(line, u64::from(time.timestamp_subsec_millis()), 3);
    line.push(b'Z');
    Ok(())
}
