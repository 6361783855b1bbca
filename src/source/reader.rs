//! Reading lines from a byte stream with a length limit.
//!
//! In: any `BufRead` (a plain file, a gzip stream, stdin). Out: one line at a time with its byte
//! offset and line number; a line longer than the limit is returned truncated to the limit with
//! its full length (the rest is skipped, never buffered); a final line without a newline is
//! returned at end of input as `unterminated`, or, when following a growing file, held back
//! until its newline arrives. State: the read position and a partial line.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

/// One line as read.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Line {
    pub bytes: Vec<u8>,
    /// Byte offset of the line's first byte in the (decompressed) input.
    pub offset: u64,
    /// 1-based line number.
    pub number: u64,
    /// The full length when longer than the limit (`bytes` then holds the first `limit` bytes).
    pub oversize: Option<u64>,
    /// The last line of the input had no newline.
    pub unterminated: bool,
}

/// What `LineReader::next` found.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    Line(Line),
    /// No complete line yet (only when following).
    Pending,
    Eof,
}

pub struct LineReader {
    inner: Box<dyn BufRead + Send>,
    limit: usize,
    follow: bool,
    offset: u64,
    number: u64,
    partial: Vec<u8>,
    partial_len: u64,
    partial_start: u64,
}

/// Opens a file, transparently decompressing gzip (detected by its magic bytes, not its name).
pub fn open_file(path: &Path) -> io::Result<(Box<dyn BufRead + Send>, bool)> {
    let mut file = BufReader::with_capacity(1 << 16, File::open(path)?);
    let gz = file.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    if gz {
        let decoder = flate2::read::MultiGzDecoder::new(file);
        Ok((Box::new(BufReader::with_capacity(1 << 16, decoder)), true))
    } else {
        Ok((Box::new(file), false))
    }
}

impl LineReader {
    pub fn new(inner: Box<dyn BufRead + Send>, limit: usize, follow: bool) -> LineReader {
        LineReader {
            inner,
            limit: limit.max(1),
            follow,
            offset: 0,
            number: 0,
            partial: Vec::new(),
            partial_len: 0,
            partial_start: 0,
        }
    }

    /// Starts over from a new stream (a rotated or truncated file being followed).
    pub fn reset(&mut self, inner: Box<dyn BufRead + Send>) {
        self.inner = inner;
        self.offset = 0;
        self.partial.clear();
        self.partial_len = 0;
        self.partial_start = 0;
    }

    /// Bytes consumed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    pub fn next_line(&mut self) -> io::Result<Next> {
        loop {
            let buf = match self.inner.fill_buf() {
                Ok(buf) => buf,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if buf.is_empty() {
                if self.partial_len == 0 {
                    return Ok(if self.follow {
                        Next::Pending
                    } else {
                        Next::Eof
                    });
                }
                if self.follow {
                    return Ok(Next::Pending);
                }
                let mut line = self.take_line();
                line.unterminated = true;
                return Ok(Next::Line(line));
            }
            if self.partial_len == 0 {
                self.partial_start = self.offset;
            }
            let (n, found) = match memchr::memchr(b'\n', buf) {
                Some(i) => (i, true),
                None => (buf.len(), false),
            };
            // Keep at most `limit` bytes of the line; count the rest without holding it.
            let room = self.limit.saturating_sub(self.partial.len());
            self.partial.extend_from_slice(&buf[..n.min(room)]);
            self.partial_len += n as u64;
            let consumed = n + usize::from(found);
            self.inner.consume(consumed);
            self.offset += consumed as u64;
            if found {
                return Ok(Next::Line(self.take_line()));
            }
        }
    }

    fn take_line(&mut self) -> Line {
        self.number += 1;
        let mut bytes = std::mem::take(&mut self.partial);
        let len = std::mem::take(&mut self.partial_len);
        if bytes.last() == Some(&b'\r') && len == bytes.len() as u64 {
            bytes.pop();
        }
        let oversize = (len > self.limit as u64).then_some(len);
        Line {
            bytes,
            offset: self.partial_start,
            number: self.number,
            oversize,
            unterminated: false,
        }
    }
}

/// Reads everything into lines (tests and the sequential reference).
pub fn read_all(reader: impl Read + Send + 'static, limit: usize) -> io::Result<Vec<Line>> {
    let mut r = LineReader::new(Box::new(BufReader::new(reader)), limit, false);
    let mut out = Vec::new();
    while let Next::Line(l) = r.next_line()? {
        out.push(l);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_limits_and_unterminated() {
        let text = b"one\r\ntwo\n0123456789abcdef\nlast".to_vec();
        let lines = read_all(std::io::Cursor::new(text), 8).expect("reads");
        assert_eq!(lines.len(), 4);
        assert_eq!(
            (lines[0].bytes.as_slice(), lines[0].offset),
            (&b"one"[..], 0)
        );
        assert_eq!(
            (lines[1].bytes.as_slice(), lines[1].offset, lines[1].number),
            (&b"two"[..], 5, 2)
        );
        assert_eq!((lines[2].bytes.len(), lines[2].oversize), (8, Some(16)));
        assert!(lines[3].unterminated && lines[3].bytes == b"last");
    }

    #[test]
    fn huge_line_is_not_buffered() {
        let mut text = vec![b'x'; 10 << 20];
        text.extend_from_slice(b"\nok\n");
        let lines = read_all(std::io::Cursor::new(text), 1 << 20).expect("reads");
        assert_eq!(lines[0].bytes.len(), 1 << 20);
        assert_eq!(lines[0].oversize, Some(10 << 20));
        assert_eq!(lines[1].bytes, b"ok");
    }

    #[test]
    fn gzip_is_detected_by_content() {
        use std::io::Write;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.log");
        let mut enc = flate2::write::GzEncoder::new(
            File::create(&path).expect("create"),
            flate2::Compression::fast(),
        );
        enc.write_all(b"a\nb\n").expect("write");
        enc.finish().expect("finish");
        let (inner, gz) = open_file(&path).expect("open");
        assert!(gz);
        let mut r = LineReader::new(inner, 100, false);
        assert!(matches!(r.next_line().expect("a"), Next::Line(l) if l.bytes == b"a"));
        assert!(matches!(r.next_line().expect("b"), Next::Line(l) if l.bytes == b"b"));
        assert_eq!(r.next_line().expect("eof"), Next::Eof);
    }
}
