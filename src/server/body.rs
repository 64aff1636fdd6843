//! A request body read straight from the client's connection.
//!
//! While a request with a body is in the service, the body owns the connection's read
//! half and buffer ([`Reader`]). It gives them back to the connection through a oneshot
//! the moment its last byte is read, or when it is dropped: then whatever is left of it
//! is skipped if it is already in the buffer, and otherwise the connection is marked
//! not reusable (the client may still be sending it).

use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use http_body::{Frame, SizeHint};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::oneshot;

use crate::body_type::BoxError;
use crate::http1::{Chunked, Decoded, FramingError, READ_SIZE, ReadSize};

/// The connection's read side: the socket's read half and what was read ahead.
#[derive(Debug)]
pub(super) struct Reader {
    pub(super) io: OwnedReadHalf,
    pub(super) buf: BytesMut,
    read_size: ReadSize,
}

impl Reader {
    pub(super) fn new(io: OwnedReadHalf) -> Self {
        Self {
            io,
            buf: BytesMut::new(),
            read_size: ReadSize::default(),
        }
    }

    /// Reads what the socket has into the buffer; `Ok(0)`: the client closed.
    pub(super) fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
        self.buf.reserve(self.read_size.size);
        let n = ready!(pin!(self.io.read_buf(&mut self.buf)).poll(cx))?;
        self.read_size.record(n);
        Poll::Ready(Ok(n))
    }

    /// Between requests: a buffer grown by a large body is let go, so that an idle
    /// connection holds no more than a head's room.
    pub(super) fn rewind(&mut self) {
        if self.buf.is_empty() && self.buf.capacity() > 2 * READ_SIZE {
            self.buf = BytesMut::new();
        }
    }
}

/// The read side, given back by a body.
#[derive(Debug)]
pub(super) struct Handback {
    pub(super) reader: Reader,
    /// The body was read (or skipped) to its end: the next request starts in `buf`.
    pub(super) clean: bool,
}

/// How the body is delimited.
#[derive(Debug)]
pub(super) enum Decoder {
    /// This many bytes left.
    Length(u64),
    Chunked(Chunked),
}

/// The `100 Continue` a request with `Expect: 100-continue` gets when its body is first
/// read (RFC 9110 §10.1.1), unless the final answer was started first.
#[derive(Debug)]
pub(super) struct Interim {
    state: Arc<AtomicU8>,
    started: bool,
    written: usize,
}

const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";
/// Nobody has written anything yet.
const PENDING: u8 = 0;
/// The body is writing the `100 Continue`.
const SENDING: u8 = 1;
/// The `100 Continue` is out.
const SENT: u8 = 2;
/// The connection started the final answer: no interim answer any more.
const FINAL: u8 = 3;

impl Interim {
    /// The interim answer for a body, and the flag the connection claims before it
    /// writes the final one.
    pub(super) fn new() -> (Self, Arc<AtomicU8>) {
        let state = Arc::new(AtomicU8::new(PENDING));
        let interim = Self {
            state: state.clone(),
            started: false,
            written: 0,
        };
        (interim, state)
    }

    fn poll_send(&mut self, io: &TcpStream, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if !self.started {
            if self
                .state
                .compare_exchange(PENDING, SENDING, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                return Poll::Ready(Ok(()));
            }
            self.started = true;
        }
        while self.written < CONTINUE.len() {
            match io.try_write(&CONTINUE[self.written..]) {
                Ok(n) => self.written += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    ready!(io.poll_write_ready(cx))?;
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        self.state.store(SENT, Ordering::Release);
        Poll::Ready(Ok(()))
    }
}

/// Claims the right to write the final answer. `false`: a `100 Continue` is half
/// written (a client that does not read), and the connection cannot carry an answer.
pub(super) fn claim_final(state: &AtomicU8) -> bool {
    match state.compare_exchange(PENDING, FINAL, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) | Err(SENT | FINAL) => true,
        Err(_) => false,
    }
}

/// A request body on an HTTP/1.1 connection served by the gateway.
#[derive(Debug)]
pub(crate) struct RequestBody {
    reader: Option<Reader>,
    decoder: Decoder,
    handback: Option<oneshot::Sender<Handback>>,
    interim: Option<Interim>,
}

impl RequestBody {
    pub(super) fn new(
        reader: Reader,
        decoder: Decoder,
        handback: oneshot::Sender<Handback>,
        interim: Option<Interim>,
    ) -> Self {
        Self {
            reader: Some(reader),
            decoder,
            handback: Some(handback),
            interim,
        }
    }

    /// Gives the read side back to the connection.
    fn give_back(&mut self, clean: bool) {
        if let (Some(reader), Some(handback)) = (self.reader.take(), self.handback.take()) {
            let _ = handback.send(Handback { reader, clean });
        }
    }

    fn fail(&mut self, error: BoxError) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.give_back(false);
        Poll::Ready(Some(Err(error)))
    }
}

impl http_body::Body for RequestBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let Some(reader) = this.reader.as_mut() else {
            return Poll::Ready(None);
        };
        if let Some(interim) = &mut this.interim {
            if let Err(e) = ready!(interim.poll_send(reader.io.as_ref(), cx)) {
                return this.fail(e.into());
            }
            this.interim = None;
        }
        loop {
            if !reader.buf.is_empty() {
                match &mut this.decoder {
                    Decoder::Length(left) => {
                        let take = usize::try_from(*left)
                            .unwrap_or(usize::MAX)
                            .min(reader.buf.len());
                        let data = reader.buf.split_to(take).freeze();
                        *left -= take as u64;
                        if *left == 0 {
                            // The last byte: the connection may read the next head now.
                            this.give_back(true);
                        }
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                    Decoder::Chunked(chunked) => match chunked.decode(&mut reader.buf) {
                        Ok(Decoded::Data(data)) => return Poll::Ready(Some(Ok(Frame::data(data)))),
                        Ok(Decoded::End) => {
                            this.give_back(true);
                            return Poll::Ready(None);
                        }
                        Ok(Decoded::Incomplete) => {}
                        Err(e) => return this.fail(e.into()),
                    },
                }
            }
            match ready!(reader.poll_fill(cx)) {
                Ok(0) => return this.fail(FramingError::Incomplete.into()),
                Ok(_) => {}
                Err(e) => return this.fail(e.into()),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.reader.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        match (&self.reader, &self.decoder) {
            (None, _) => SizeHint::with_exact(0),
            (Some(_), Decoder::Length(left)) => SizeHint::with_exact(*left),
            (Some(_), Decoder::Chunked(_)) => SizeHint::default(),
        }
    }
}

impl Drop for RequestBody {
    fn drop(&mut self) {
        let Some(reader) = self.reader.as_mut() else {
            return;
        };
        // What is left of the body, if it is all here, is skipped: the connection can
        // carry the next request.
        let clean = match &mut self.decoder {
            Decoder::Length(left) => {
                let here = usize::try_from(*left).is_ok_and(|left| left <= reader.buf.len());
                if here {
                    reader.buf.advance(*left as usize);
                }
                here
            }
            Decoder::Chunked(chunked) => skip_chunked(chunked, &mut reader.buf),
        };
        self.give_back(clean);
    }
}

/// Decodes and drops the rest of a chunked body; `true` if its end was in `buf`.
fn skip_chunked(chunked: &mut Chunked, buf: &mut BytesMut) -> bool {
    loop {
        match chunked.decode(buf) {
            Ok(Decoded::Data(_)) => {}
            Ok(Decoded::End) => return true,
            Ok(Decoded::Incomplete) | Err(_) => return false,
        }
    }
}
