//! Reading a log file in rounds of chunks of whole lines, for the `templates` command.
//!
//! In: a path. Out: rounds of `Chunk`s (bytes and line spans), in file order. A plain file is
//! read in parallel: each worker reads one 16 MiB stretch through its own handle, owning the lines that
//! start in it (it skips a partial first line and reads past its end to finish its last one),
//! so reading and splitting cost no sequential time. A gzip file is a stream: one chunk per round.
//! State: the read position, and for streams the bytes of an unfinished line.

use std::fs::File;
use std::io::{BufRead, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::source::reader::open_file;

/// Bytes per chunk of a plain file, and per round of a stream.
const CHUNK: u64 = 16 << 20;
/// How much further a chunk reads at a time to finish its last line.
const EXTEND: usize = 64 << 10;

/// Whole lines: `bytes` and each line's `(start, end)` in it, without the newline.
#[derive(Default)]
pub struct Chunk {
    pub bytes: Vec<u8>,
    pub lines: Vec<(u32, u32)>,
}

impl Chunk {
    fn clear(&mut self) {
        self.bytes.clear();
        self.lines.clear();
    }

    /// Records the lines of `bytes[from..]` that start before `owned_end`.
    fn split(&mut self, from: usize, owned_end: usize) {
        let mut start = from;
        for nl in memchr::memchr_iter(b'\n', &self.bytes[from..]).map(|i| i + from) {
            if start >= owned_end {
                return;
            }
            self.lines.push((start as u32, nl as u32));
            start = nl + 1;
        }
        if start < owned_end.min(self.bytes.len()) {
            self.lines.push((start as u32, self.bytes.len() as u32));
        }
    }
}

pub enum Input {
    /// One handle per chunk slot (each with its own file offset), opened on first use.
    Plain {
        path: PathBuf,
        files: Vec<File>,
        size: u64,
        next: u64,
    },
    Stream {
        reader: Box<dyn BufRead + Send>,
        carry: Vec<u8>,
        eof: bool,
    },
}

impl Input {
    pub fn open(path: &Path) -> std::io::Result<Input> {
        let (reader, gz) = open_file(path)?;
        if gz {
            return Ok(Input::Stream {
                reader,
                carry: Vec::new(),
                eof: false,
            });
        }
        drop(reader);
        let size = std::fs::metadata(path)?.len();
        Ok(Input::Plain {
            path: path.to_path_buf(),
            files: Vec::new(),
            size,
            next: 0,
        })
    }

    /// Fills the next round into `chunks` (as many as are given for a plain file, one for a
    /// stream); returns how many were filled, 0 at end of input.
    pub fn next_round(&mut self, chunks: &mut [Chunk]) -> std::io::Result<usize> {
        match self {
            Input::Plain {
                path,
                files,
                size,
                next,
            } => {
                let (size, start) = (*size, *next);
                let n = chunks
                    .len()
                    .min(size.saturating_sub(start).div_ceil(CHUNK) as usize);
                while files.len() < n {
                    files.push(File::open(&*path)?);
                }
                std::thread::scope(|s| {
                    let handles: Vec<_> = chunks[..n]
                        .iter_mut()
                        .zip(files.iter_mut())
                        .enumerate()
                        .map(|(k, (chunk, file))| {
                            let from = start + k as u64 * CHUNK;
                            s.spawn(move || {
                                read_chunk(file, size, from, (from + CHUNK).min(size), chunk)
                            })
                        })
                        .collect();
                    handles.into_iter().try_for_each(|h| {
                        h.join()
                            .unwrap_or_else(|_| Err(std::io::Error::other("reader panicked")))
                    })
                })?;
                *next = start + n as u64 * CHUNK;
                Ok(n)
            }
            Input::Stream { reader, carry, eof } => {
                let Some(chunk) = chunks.first_mut() else {
                    return Ok(0);
                };
                chunk.clear();
                chunk.bytes.append(carry);
                // Read at least a chunk's worth, and on until a line ends.
                while !*eof && ((chunk.bytes.len() as u64) < CHUNK || !chunk.bytes.contains(&b'\n'))
                {
                    let want = CHUNK as usize;
                    let got = reader
                        .by_ref()
                        .take(want as u64)
                        .read_to_end(&mut chunk.bytes)?;
                    *eof = got < want;
                }
                if chunk.bytes.is_empty() {
                    return Ok(0);
                }
                let cut = if *eof {
                    chunk.bytes.len()
                } else {
                    memchr::memrchr(b'\n', &chunk.bytes).map_or(chunk.bytes.len(), |i| i + 1)
                };
                carry.extend_from_slice(&chunk.bytes[cut..]);
                chunk.bytes.truncate(cut);
                chunk.split(0, cut);
                Ok(1)
            }
        }
    }
}

/// Reads the lines that start in `[from, to)` of `file` into `chunk`.
fn read_chunk(
    file: &mut File,
    size: u64,
    from: u64,
    to: u64,
    chunk: &mut Chunk,
) -> std::io::Result<()> {
    chunk.clear();
    // One byte before `from` tells whether a line starts exactly at `from`.
    let begin = from.saturating_sub(1);
    file.seek(SeekFrom::Start(begin))?;
    read_more(file, (to - begin) as usize, &mut chunk.bytes)?;
    let owned_end = (to - begin) as usize;
    let first = if from == 0 {
        0
    } else {
        match memchr::memchr(b'\n', &chunk.bytes[..owned_end]) {
            Some(i) => i + 1,
            None => return Ok(()), // a line that started earlier covers this whole chunk
        }
    };
    // Finish the last owned line.
    let mut pos = begin + chunk.bytes.len() as u64;
    while pos < size
        && memchr::memrchr(b'\n', &chunk.bytes[first.min(owned_end)..])
            .is_none_or(|i| i + first < owned_end.saturating_sub(1))
    {
        let n = EXTEND.min((size - pos) as usize);
        let before = chunk.bytes.len();
        read_more(file, n, &mut chunk.bytes)?;
        pos += (chunk.bytes.len() - before) as u64;
        if chunk.bytes.len() == before {
            break;
        }
    }
    chunk.split(first, owned_end);
    Ok(())
}

/// Appends the next `len` bytes of `file` to `buf` (fewer at end of file), without zeroing
/// the buffer first.
fn read_more(file: &mut File, len: usize, buf: &mut Vec<u8>) -> std::io::Result<()> {
    buf.reserve(len);
    file.take(len as u64).read_to_end(buf).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_lines(path: &Path, per_round: usize) -> Vec<Vec<u8>> {
        let mut input = Input::open(path).expect("open");
        let mut chunks: Vec<Chunk> = (0..per_round).map(|_| Chunk::default()).collect();
        let mut out = Vec::new();
        loop {
            let n = input.next_round(&mut chunks).expect("round");
            if n == 0 {
                return out;
            }
            for c in &chunks[..n] {
                out.extend(
                    c.lines
                        .iter()
                        .map(|&(a, b)| c.bytes[a as usize..b as usize].to_vec()),
                );
            }
        }
    }

    #[test]
    fn chunks_own_every_line_exactly_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.log");
        // Lines of every length, including ones longer than EXTEND, around chunk boundaries.
        let mut want: Vec<Vec<u8>> = Vec::new();
        let mut size = 0u64;
        let mut i = 0usize;
        while size < 3 * CHUNK + 12345 {
            let len = match i % 7 {
                0 => 0,
                1 => EXTEND + 17,
                _ => (i * 37) % 300,
            };
            let line = vec![b'a' + (i % 26) as u8; len];
            size += len as u64 + 1;
            want.push(line);
            i += 1;
        }
        let mut data = want.join(&b'\n');
        std::fs::write(&path, &data).expect("write without final newline");
        assert_eq!(all_lines(&path, 2), want);
        assert_eq!(all_lines(&path, 5), want);
        data.push(b'\n');
        std::fs::write(&path, &data).expect("write");
        assert_eq!(all_lines(&path, 3), want);
    }
}
