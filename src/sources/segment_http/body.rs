//! Reading a request body without ever holding more than the limit.
//!
//! A [`BodyReader`] takes the body chunk by chunk as the network delivers it.
//! Plain bodies are refused as soon as they pass the limit; gzip bodies
//! (`Content-Encoding: gzip`) are inflated as they arrive into a buffer that
//! refuses to grow past the same limit, so a small compressed body that would
//! inflate to gigabytes (a decompression bomb) is stopped after `limit` bytes
//! of output. The compressed bytes count against the limit too.

use std::io::Write;

use flate2::write::GzDecoder;

/// Why a body could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("the body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("the body is not valid gzip: {0}")]
    BadGzip(String),
}

/// A `Vec` that refuses to grow past `limit`.
struct Capped {
    data: Vec<u8>,
    limit: usize,
    exceeded: bool,
}

impl Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.data.len() + buf.len() > self.limit {
            self.exceeded = true;
            return Err(std::io::Error::other("inflated body over the limit"));
        }
        self.data.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Accumulates one request body, inflating gzip on the fly.
pub struct BodyReader {
    limit: usize,
    /// Bytes received from the network so far.
    received: usize,
    plain: Vec<u8>,
    gzip: Option<GzDecoder<Capped>>,
}

impl BodyReader {
    /// `gzip` when the request said `Content-Encoding: gzip`; `expected` is its
    /// `Content-Length`, if any, to size the buffer once (capped by `limit`).
    pub fn new(limit: usize, gzip: bool, expected: Option<usize>) -> Self {
        let initial = expected.unwrap_or(0).min(limit);
        let (plain, gzip) = if gzip {
            let capped = Capped {
                data: Vec::with_capacity(initial.saturating_mul(4).min(limit)),
                limit,
                exceeded: false,
            };
            (Vec::new(), Some(GzDecoder::new(capped)))
        } else {
            (Vec::with_capacity(initial), None)
        };
        BodyReader {
            limit,
            received: 0,
            plain,
            gzip,
        }
    }

    /// Takes the next chunk from the network.
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), BodyError> {
        self.received += chunk.len();
        if self.received > self.limit {
            return Err(BodyError::TooLarge { limit: self.limit });
        }
        match &mut self.gzip {
            None => {
                self.plain.extend_from_slice(chunk);
                Ok(())
            }
            Some(decoder) => decoder
                .write_all(chunk)
                .map_err(|err| inflate_error(decoder.get_ref(), err, self.limit)),
        }
    }

    /// The whole (inflated) body.
    pub fn finish(self) -> Result<Vec<u8>, BodyError> {
        match self.gzip {
            None => Ok(self.plain),
            Some(mut decoder) => {
                if let Err(err) = decoder.try_finish() {
                    return Err(inflate_error(decoder.get_ref(), err, self.limit));
                }
                let limit = self.limit;
                let capped = decoder
                    .finish()
                    .map_err(|err| BodyError::BadGzip(err.to_string()))?;
                if capped.exceeded {
                    return Err(BodyError::TooLarge { limit });
                }
                Ok(capped.data)
            }
        }
    }
}

fn inflate_error(capped: &Capped, err: std::io::Error, limit: usize) -> BodyError {
    if capped.exceeded {
        BodyError::TooLarge { limit }
    } else {
        BodyError::BadGzip(err.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use flate2::Compression;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn plain_bodies_stop_at_the_limit() {
        let mut r = BodyReader::new(10, false, None);
        r.push(b"12345").unwrap();
        r.push(b"67890").unwrap();
        assert_eq!(r.finish().unwrap(), b"1234567890");
        let mut r = BodyReader::new(10, false, None);
        r.push(b"12345").unwrap();
        assert_eq!(r.push(b"678901"), Err(BodyError::TooLarge { limit: 10 }));
    }

    #[test]
    fn gzip_is_inflated_in_chunks() {
        let body = br#"{"type":"track","event":"x"}"#.repeat(20);
        let packed = gzip(&body);
        let mut r = BodyReader::new(body.len(), true, Some(packed.len()));
        for chunk in packed.chunks(7) {
            r.push(chunk).unwrap();
        }
        assert_eq!(r.finish().unwrap(), body);
    }

    #[test]
    fn a_decompression_bomb_stops_at_the_limit() {
        let packed = gzip(&vec![b' '; 50 << 20]);
        assert!(packed.len() < 100_000, "{}", packed.len());
        let mut r = BodyReader::new(512_000, true, None);
        let outcome = packed
            .chunks(8192)
            .try_for_each(|chunk| r.push(chunk))
            .and_then(|()| r.finish().map(|_| ()));
        assert_eq!(outcome, Err(BodyError::TooLarge { limit: 512_000 }));
    }

    #[test]
    fn broken_gzip_is_reported() {
        let mut r = BodyReader::new(1000, true, None);
        let outcome = r
            .push(b"not gzip at all")
            .and_then(|()| r.finish().map(|_| ()));
        assert!(matches!(outcome, Err(BodyError::BadGzip(_))), "{outcome:?}");
    }

    #[test]
    fn truncated_gzip_is_reported() {
        let packed = gzip(b"{\"a\":1}");
        let mut r = BodyReader::new(1000, true, None);
        r.push(&packed[..packed.len() / 2]).unwrap();
        assert!(matches!(r.finish(), Err(BodyError::BadGzip(_))));
    }
}
