//! UTF-16 text (Windows PowerShell 5.1 `Out-File` and `>` write UTF-16LE with
//! a BOM) transcoded to UTF-8 on the fly, so the JSON readers stream it like
//! any other file. Unpaired surrogates become U+FFFD.

use crate::Source;
use std::io::{Read, Seek, SeekFrom};

/// Byte order of a UTF-16 file, from its BOM or its first characters.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Endian {
    Little,
    Big,
}

/// The UTF-16 byte order of a file starting with `head`, if it is UTF-16
/// text: a BOM (`FF FE` / `FE FF`), or `[`/`{` as its first code unit.
pub(crate) fn detect(head: &[u8]) -> Option<Endian> {
    match head {
        [0xFF, 0xFE, ..] => Some(Endian::Little),
        [0xFE, 0xFF, ..] => Some(Endian::Big),
        [b'[' | b'{', 0, ..] => Some(Endian::Little),
        [0, b'[' | b'{', ..] => Some(Endian::Big),
        _ => None,
    }
}

/// UTF-8 of UTF-16 `bytes` (lossy, a trailing odd byte ignored).
pub(crate) fn decode(bytes: &[u8], e: Endian) -> Vec<u8> {
    let units = bytes.chunks_exact(2).map(|c| unit(c[0], c[1], e));
    let s: String = char::decode_utf16(units)
        .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect();
    s.into_bytes()
}

/// [`decode`] of the start of a file, its BOM dropped.
pub(crate) fn decode_head(bytes: &[u8], e: Endian) -> Vec<u8> {
    let mut d = decode(bytes, e);
    if d.starts_with("\u{feff}".as_bytes()) {
        d.drain(..3);
    }
    d
}

fn unit(a: u8, b: u8, e: Endian) -> u16 {
    match e {
        Endian::Little => u16::from_le_bytes([a, b]),
        Endian::Big => u16::from_be_bytes([a, b]),
    }
}

/// A [`Source`] giving the UTF-8 transcoding of a UTF-16 source. Only a seek
/// to the start is supported (all the JSON readers need).
pub(crate) struct Utf16Source {
    inner: Box<dyn Source>,
    endian: Endian,
    /// Raw bytes read but not decoded yet (an odd byte, a high surrogate).
    raw: Vec<u8>,
    /// Decoded UTF-8 not handed out yet, from `out_pos`.
    out: Vec<u8>,
    out_pos: usize,
    at_start: bool,
    eof: bool,
}

impl Utf16Source {
    pub(crate) fn new(inner: Box<dyn Source>, endian: Endian) -> Self {
        Utf16Source {
            inner,
            endian,
            raw: Vec::new(),
            out: Vec::new(),
            out_pos: 0,
            at_start: true,
            eof: false,
        }
    }

    /// Decodes more input into `out`; false at end of input.
    fn fill(&mut self) -> std::io::Result<bool> {
        let mut buf = [0u8; 1 << 15];
        let n = loop {
            match self.inner.read(&mut buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        if n == 0 {
            self.eof = true;
        }
        self.raw.extend_from_slice(&buf[..n]);
        // Keep an odd byte, and a trailing high surrogate unless at the end.
        let mut take = self.raw.len() & !1;
        if !self.eof && take >= 2 {
            let last = unit(self.raw[take - 2], self.raw[take - 1], self.endian);
            if (0xD800..0xDC00).contains(&last) {
                take -= 2;
            }
        }
        let text = if std::mem::take(&mut self.at_start) {
            decode_head(&self.raw[..take], self.endian)
        } else {
            decode(&self.raw[..take], self.endian)
        };
        self.raw.drain(..take);
        self.out = text;
        self.out_pos = 0;
        Ok(!(self.eof && self.out.is_empty()))
    }
}

impl Read for Utf16Source {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.out_pos >= self.out.len() {
            if self.eof || !self.fill()? {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.out.len() - self.out_pos);
        buf[..n].copy_from_slice(&self.out[self.out_pos..self.out_pos + n]);
        self.out_pos += n;
        Ok(n)
    }
}

impl Seek for Utf16Source {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        if pos != SeekFrom::Start(0) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "UTF-16 input can only be rewound",
            ));
        }
        self.inner.seek(SeekFrom::Start(0))?;
        *self = Utf16Source::new(
            std::mem::replace(&mut self.inner, Box::new(std::io::Cursor::new(Vec::new()))),
            self.endian,
        );
        Ok(0)
    }
}
