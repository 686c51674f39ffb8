//! picoserve on smol: the socket and timer adapters picoserve needs to run on smol's reactor.
//!
//! A [`Conn`] owns the accepted `Async<TcpStream>` and borrows a write buffer that belongs to
//! its worker, so headers and a small body go out in one `send` and nothing is allocated per
//! request. Reads go straight to the socket into picoserve's request buffer.

use picoserve::io::{ErrorKind, ErrorType, Read, Write as PicoWrite};
use picoserve::io::embedded_io_async::Write as BaseWrite;
use picoserve::mem::BorrowedBuffer;
use picoserve::time::{Duration, Timer};
use smol::Async;
use smol::io::{AsyncReadExt, AsyncWriteExt};
use super::pool::Slot;
use std::net::{Shutdown, TcpStream};

/// Marker type for picoserve's `Runtime` parameter.
pub struct SmolRuntime;

/// picoserve's timer on smol's reactor.
pub struct SmolTimer;

impl Timer<SmolRuntime> for SmolTimer {
    async fn delay(&self, duration: Duration) {
        smol::Timer::after(std::time::Duration::from_millis(duration.as_millis())).await;
    }
}

/// An I/O error from the socket.
#[derive(Debug)]
pub struct IoError(pub std::io::Error);

impl core::fmt::Display for IoError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.0.fmt(f)
    }
}

impl core::error::Error for IoError {}

impl picoserve::io::Error for IoError {
    fn kind(&self) -> ErrorKind {
        match self.0.kind() {
            std::io::ErrorKind::ConnectionReset => ErrorKind::ConnectionReset,
            std::io::ErrorKind::ConnectionAborted => ErrorKind::ConnectionAborted,
            std::io::ErrorKind::BrokenPipe => ErrorKind::BrokenPipe,
            std::io::ErrorKind::TimedOut => ErrorKind::TimedOut,
            std::io::ErrorKind::InvalidData => ErrorKind::InvalidData,
            _ => ErrorKind::Other,
        }
    }
}

/// One accepted connection, its worker's write buffer and slot.
pub struct Conn<'b> {
    pub stream: Async<TcpStream>,
    pub wbuf: &'b mut [u8],
    pub slot: &'b Slot,
}

pub struct ReadHalf<'a> {
    stream: &'a Async<TcpStream>,
    slot: &'a Slot,
}

pub struct WriteHalf<'a> {
    stream: &'a Async<TcpStream>,
    buf: &'a mut [u8],
    len: usize,
    slot: &'a Slot,
}

/// Body bytes of a `HEAD` answer that are dropped quietly; beyond this (a download, a live
/// stream) the connection is closed once the head is out instead of producing the whole body
/// for nothing.
const HEAD_BODY_DROP: u32 = 256 * 1024;

/// Of `data` about to be sent, how many bytes to send when the current request is a `HEAD`
/// (the response's head up to its blank line), and whether to stop (too much body).
fn head_only(slot: &Slot, data: &[u8]) -> (usize, bool) {
    if !slot.head_only.get() {
        return (data.len(), false);
    }
    let mut matched = slot.head_scan.get();
    let mut keep = 0;
    while matched < 4 && keep < data.len() {
        let want = b"\r\n\r\n"[matched as usize];
        matched = if data[keep] == want {
            matched + 1
        } else if data[keep] == b'\r' {
            1
        } else {
            0
        };
        keep += 1;
    }
    slot.head_scan.set(matched);
    let dropped = slot.head_dropped.get().saturating_add((data.len() - keep) as u32);
    slot.head_dropped.set(dropped);
    (keep, dropped > HEAD_BODY_DROP)
}

fn head_done() -> IoError {
    IoError(std::io::Error::new(std::io::ErrorKind::BrokenPipe, "HEAD: head sent, body not produced"))
}

impl ErrorType for ReadHalf<'_> {
    type Error = IoError;
}

impl Read for ReadHalf<'_> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, IoError> {
        // picoserve reads into the rest of its request buffer; an empty rest means the request
        // is larger than the buffer, which it reports (as end of input) with a 400.
        if buf.is_empty() {
            return Ok(0);
        }
        let slot = self.slot;
        let now = crate::clock::now_mono_ns();
        // Request boundaries, the slowloris deadline and the life of a connection without
        // credentials (src/web/pool.rs).
        let Some(deadline) = slot.before_read(now) else { return Ok(0) };
        let mut s = self.stream;
        slot.reading.set(true);
        let res = match deadline {
            None => s.read(buf).await,
            Some(d) => {
                let left = std::time::Duration::from_nanos(d.saturating_sub(now));
                smol::future::or(s.read(buf), async {
                    smol::Timer::after(left).await;
                    Err(std::io::Error::from(std::io::ErrorKind::TimedOut))
                })
                .await
            }
        };
        slot.reading.set(false);
        let n = res.map_err(IoError)?;
        let fed = slot.framing.borrow_mut().feed(&mut buf[..n]);
        match fed {
            Ok(true) => {
                slot.in_request.set(true);
                Ok(n)
            }
            Ok(false) => Ok(n),
            Err(refusal) => {
                // picoserve never sees this head complete: answer here and close.
                let _ = smol::future::or(s.write_all(refusal.response()), async {
                    smol::Timer::after(std::time::Duration::from_secs(2)).await;
                    Ok(())
                })
                .await;
                let _ = self.stream.get_ref().shutdown(Shutdown::Write);
                // Read what the client still sends (briefly) so closing does not reset the
                // connection under our answer.
                let mut scratch = [0u8; 256];
                let _ = smol::future::or(
                    async {
                        let mut left = 64 * 1024usize;
                        while left > 0 {
                            match s.read(&mut scratch).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => left = left.saturating_sub(n),
                            }
                        }
                    },
                    async {
                        smol::Timer::after(std::time::Duration::from_secs(1)).await;
                    },
                )
                .await;
                Err(IoError(std::io::Error::new(std::io::ErrorKind::InvalidData, "refused request framing")))
            }
        }
    }
}

impl WriteHalf<'_> {
    /// `data` into the buffer (sending it first when full), all of it.
    async fn write_all_buffered(&mut self, mut data: &[u8]) -> Result<(), IoError> {
        while !data.is_empty() {
            if self.len == self.buf.len() {
                self.send_buffered().await?;
            }
            let n = (self.buf.len() - self.len).min(data.len());
            self.buf[self.len..self.len + n].copy_from_slice(&data[..n]);
            self.len += n;
            data = &data[n..];
        }
        Ok(())
    }

    async fn send_buffered(&mut self) -> Result<(), IoError> {
        if self.len > 0 {
            let mut s = self.stream;
            s.write_all(&self.buf[..self.len]).await.map_err(IoError)?;
            self.len = 0;
        }
        Ok(())
    }
}

impl ErrorType for WriteHalf<'_> {
    type Error = IoError;
}

impl BaseWrite for WriteHalf<'_> {
    async fn write(&mut self, data: &[u8]) -> Result<usize, IoError> {
        if data.is_empty() {
            return Ok(0);
        }
        let (keep, stop) = head_only(self.slot, data);
        if keep < data.len() {
            // A HEAD answer's body: send the head, drop the rest.
            if keep > 0 {
                self.write_all_buffered(&data[..keep]).await?;
            }
            if stop {
                self.send_buffered().await?;
                return Err(head_done());
            }
            return Ok(data.len());
        }
        if self.len + data.len() <= self.buf.len() {
            self.buf[self.len..self.len + data.len()].copy_from_slice(data);
            self.len += data.len();
            return Ok(data.len());
        }
        self.send_buffered().await?;
        if data.len() <= self.buf.len() {
            self.buf[..data.len()].copy_from_slice(data);
            self.len = data.len();
            return Ok(data.len());
        }
        let mut s = self.stream;
        s.write(data).await.map_err(IoError)
    }

    async fn flush(&mut self) -> Result<(), IoError> {
        self.send_buffered().await
    }
}

impl PicoWrite for WriteHalf<'_> {
    async fn write_with<F: FnOnce(picoserve::mem::BorrowedCursor<'_>) -> R, R>(
        &mut self,
        f: F,
    ) -> Result<R, IoError> {
        // Give the callback the free tail of the buffer; when it is nearly full, send first so
        // that a formatted header line rarely has to be split.
        if self.buf.len() - self.len < 256 {
            self.send_buffered().await?;
        }
        let mut tail = BorrowedBuffer::new(&mut self.buf[self.len..]);
        let out = f(tail.unfilled());
        let n = tail.len();
        let (keep, stop) = head_only(self.slot, &self.buf[self.len..self.len + n]);
        self.len += keep;
        if stop {
            self.send_buffered().await?;
            return Err(head_done());
        }
        Ok(out)
    }
}

impl picoserve::io::Socket<SmolRuntime> for Conn<'_> {
    type Error = IoError;
    type ReadHalf<'a>
        = ReadHalf<'a>
    where
        Self: 'a;
    type WriteHalf<'a>
        = WriteHalf<'a>
    where
        Self: 'a;

    fn split(&mut self) -> (ReadHalf<'_>, WriteHalf<'_>) {
        (ReadHalf { stream: &self.stream, slot: self.slot }, WriteHalf { stream: &self.stream, buf: &mut *self.wbuf, len: 0, slot: self.slot })
    }

    async fn abort<T: Timer<SmolRuntime>>(
        self,
        _timeouts: &picoserve::Timeouts,
        _timer: &T,
    ) -> Result<(), picoserve::Error<IoError>> {
        // Dropping the stream closes it.
        Ok(())
    }

    async fn shutdown<T: Timer<SmolRuntime>>(
        self,
        timeouts: &picoserve::Timeouts,
        timer: &T,
    ) -> Result<(), picoserve::Error<IoError>> {
        let _ = self.stream.get_ref().shutdown(Shutdown::Write);
        // Read what the client still sends (up to a limit and a deadline) before closing, so the
        // kernel does not answer unread data with a reset that could destroy our response.
        let mut scratch = [0u8; 512];
        let mut left: usize = 256 * 1024;
        let mut s = &self.stream;
        let drain = async {
            while left > 0 {
                match s.read(&mut scratch).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => left = left.saturating_sub(n),
                }
            }
        };
        let _ = timer.run_with_timeout(timeouts.read_request, drain).await;
        Ok(())
    }
}
