//! gzip input (issue #21: CloudTrail as delivered to S3 is `.json.gz`):
//! a [`Source`] that decompresses on the fly, so every reader streams a
//! gzip file exactly as it streams the plain one.

use crate::Source;
use flate2::bufread::MultiGzDecoder;
use std::io::{BufReader, Read, Seek, SeekFrom};

/// The two bytes every gzip member starts with.
pub(crate) const MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The decompressed bytes of a gzip source (several members one after
/// another are one stream, as `gzip -c a b > c` and S3 multipart uploads
/// write them). Seeking is emulated: forward by reading and discarding,
/// backward (the readers seek to 0 after sniffing) by restarting the
/// decoder from the compressed start. `SeekFrom::End` is refused (the
/// decompressed length is unknown without decompressing everything).
pub(crate) struct GzSource {
    dec: Option<MultiGzDecoder<BufReader<Box<dyn Source>>>>,
    pos: u64,
}

impl GzSource {
    /// `src` positioned at the first gzip byte (its offset 0).
    pub(crate) fn new(src: Box<dyn Source>) -> Self {
        GzSource {
            dec: Some(MultiGzDecoder::new(BufReader::with_capacity(1 << 16, src))),
            pos: 0,
        }
    }

    fn restart(&mut self) -> std::io::Result<()> {
        let dec = self.dec.take().ok_or_else(gone)?;
        let mut src = dec.into_inner().into_inner();
        src.seek(SeekFrom::Start(0))?;
        self.dec = Some(MultiGzDecoder::new(BufReader::with_capacity(1 << 16, src)));
        self.pos = 0;
        Ok(())
    }
}

fn gone() -> std::io::Error {
    std::io::Error::other("gzip source lost after an earlier I/O error")
}

impl Read for GzSource {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.dec.as_mut().ok_or_else(gone)?.read(buf)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for GzSource {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => n,
            SeekFrom::Current(d) => self
                .pos
                .checked_add_signed(d)
                .ok_or_else(|| std::io::Error::other("seek before the start of gzip data"))?,
            SeekFrom::End(_) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::Unsupported,
                    "cannot seek from the end of gzip data",
                ))
            }
        };
        if target < self.pos {
            self.restart()?;
        }
        let skip = target - self.pos;
        if skip > 0 {
            let copied = std::io::copy(&mut self.take(skip), &mut std::io::sink())?;
            if copied < skip {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "seek past the end of gzip data",
                ));
            }
        }
        Ok(self.pos)
    }
}
