//! One HTTP/1.1 connection, served by the gateway itself.
//!
//! A loop per connection, in the connection's task: read a head, call the service,
//! write the answer, and again. There is no dispatcher between the socket and the
//! service (hyper's server keeps one, with its own buffers and timers per request); a
//! request costs one parse, one call and one write of a head that is assembled in a
//! buffer the connection keeps. Requests on a connection are answered in order, one at
//! a time; pipelined requests wait in the read buffer.

use std::future::poll_fn;
use std::io::IoSlice;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::AtomicU8;
use std::task::Poll;
use std::time::Duration;

use bytes::Buf;
use http::{Method, Request, Response, StatusCode, Version};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;
use tower::Service;

use super::body::{Decoder, Handback, Interim, Reader, RequestBody, claim_final};
use super::wire::{self, Limits, Persistence, RequestFraming, RequestHead, ResponseFraming};
use crate::body_type::{Body, BoxError};
use crate::clock;
use crate::context::{ClientAddr, OnUpgrade, Upgraded};
use crate::error::Error;
use crate::http1::{Chunked, Lines, encode_chunk_size};
use crate::ready;

/// Body data up to this size is copied into the write buffer, next to the head or its
/// chunk framing: one write, not two.
const COPY_LIMIT: usize = 16 * 1024;
/// A write buffer grown past this by a large answer is let go between requests.
const KEEP_WRITE_BUFFER: usize = 64 * 1024;
/// How long, and how much, a closing connection still reads (and drops) of what the
/// client was sending, so that its answer is not lost to a reset (RFC 9112 §9.6).
const LINGER_TIME: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 1024 * 1024;

/// The settings every HTTP/1 connection shares.
#[derive(Debug)]
pub(super) struct Settings {
    pub(super) limits: Limits,
    pub(super) header_read_timeout: Duration,
}

/// Where a request's read side is while the service has the request.
enum Lent {
    /// No body: the connection kept it.
    Kept(Reader),
    /// The body has it, and gives it back through this.
    Body(oneshot::Receiver<Handback>),
}

/// What waiting for a request head ended with.
enum Wait {
    Read(std::io::Result<usize>),
    Timer,
    Stop,
}

/// Serves requests on `stream` until the client closes, a request asks to close, the
/// connection fails, or the server stops.
pub(super) async fn serve<S, B>(
    stream: TcpStream,
    peer: SocketAddr,
    service: S,
    settings: Arc<Settings>,
    stopped: watch::Receiver<()>,
) -> Result<(), BoxError>
where
    S: Service<Request<Body>, Response = Response<B>> + Clone,
    S::Error: Into<BoxError>,
    B: http_body::Body,
    B::Error: Into<BoxError>,
{
    let (read, mut write) = stream.into_split();
    let mut reader = Reader::new(read);
    let mut out: Vec<u8> = Vec::new();
    let mut lines = Lines::default();
    let timeout = settings.header_read_timeout;
    // One timer for the connection's life. Each head wait moves the deadline; the timer
    // is only re-armed when it fires before the deadline it is checked against. Once
    // polled, it holds the task's waker: later waits only look whether it has fired.
    let mut timer = pin!(tokio::time::sleep(timeout));
    let mut armed = false;
    // Likewise one registration for the stop signal (a clone: `stopped` is still
    // asked, without waiting, whether the server is stopping).
    let mut stop_signal = stopped.clone();
    let mut stop = pin!(stop_signal.changed());

    loop {
        // === the head ===
        let deadline = Instant::from_std(clock::now()) + timeout;
        let mut unscanned = 0;
        let head = loop {
            // A head can only have ended in bytes that include a line feed; a buffer at
            // the limit is parsed anyway, to be refused.
            if reader.buf[unscanned..].contains(&b'\n')
                || reader.buf.len() >= settings.limits.max_head
            {
                match wire::parse_request(&mut reader.buf, settings.limits, &mut lines) {
                    Ok(Some(head)) => break head,
                    Ok(None) => {}
                    Err(error) => return refuse(write, reader, &mut out, error).await,
                }
            }
            unscanned = reader.buf.len();
            let idle = reader.buf.is_empty();
            let wait = poll_fn(|cx| {
                if let Poll::Ready(read) = reader.poll_fill(cx) {
                    return Poll::Ready(Wait::Read(read));
                }
                let fired = if armed {
                    timer.is_elapsed()
                } else {
                    armed = true;
                    timer.as_mut().poll(cx).is_ready()
                };
                if fired {
                    return Poll::Ready(Wait::Timer);
                }
                if idle && stop.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Wait::Stop);
                }
                Poll::Pending
            })
            .await;
            match wait {
                Wait::Read(Ok(0)) | Wait::Stop => return Ok(()),
                Wait::Read(Ok(_)) => {}
                Wait::Read(Err(e)) => return Err(e.into()),
                Wait::Timer if Instant::from_std(clock::now()) < deadline => {
                    timer.as_mut().reset(deadline);
                    armed = false;
                }
                // A silent connection just closes; a slow head gets a 408.
                Wait::Timer if idle => return Ok(()),
                Wait::Timer => {
                    let error = Error::Protocol {
                        status: StatusCode::REQUEST_TIMEOUT,
                        description: "The request head took too long to arrive",
                    };
                    return refuse(write, reader, &mut out, error).await;
                }
            }
        };

        // === the service ===
        let RequestHead {
            mut request,
            framing,
            mut keep_alive,
            expect_continue,
            upgrade,
        } = head;
        let head_request = request.method() == Method::HEAD;
        let version = request.version();
        // Filled in place: the request is large, and each move of it is a copy.
        request.extensions_mut().insert(ClientAddr(peer));
        let upgrade = upgrade.then(|| {
            let (tx, on_upgrade) = OnUpgrade::new();
            request.extensions_mut().insert(on_upgrade);
            tx
        });
        let (body, lent, interim) = lend(reader, framing, expect_continue);
        *request.body_mut() = body;
        let answered = ready::call(service.clone(), request).await;

        // === the answer ===
        let (returned, clean) = match lent {
            Lent::Kept(reader) => (Some(reader), true),
            Lent::Body(mut rx) => match rx.try_recv() {
                Ok(Handback { reader, clean }) => (Some(reader), clean),
                // The body is still out (a service streaming it on): the connection
                // ends with this answer.
                Err(_) => (None, false),
            },
        };
        keep_alive &= clean && stopped.has_changed().is_ok();
        if interim.as_deref().is_some_and(|state| !claim_final(state)) {
            return Err("a 100 Continue could not be written".into());
        }
        let persistence = match (keep_alive, version) {
            (false, _) => Persistence::Close,
            (true, Version::HTTP_10) => Persistence::KeepAlive,
            (true, _) => Persistence::Default,
        };
        let response = match final_answer(answered, upgrade.is_some()) {
            Ok(response) => response,
            Err(e) => return fail(write, &mut out, version, peer, e).await,
        };

        if let (Some(tx), StatusCode::SWITCHING_PROTOCOLS) = (upgrade, response.status()) {
            return switch(write, returned, response, tx, &mut out).await;
        }
        let reusable = write_response(
            &mut write,
            &mut out,
            response,
            head_request,
            version,
            persistence,
        )
        .await?;
        if out.capacity() > KEEP_WRITE_BUFFER {
            out = Vec::new();
        }
        match returned {
            Some(next) if keep_alive && reusable => {
                reader = next;
                reader.rewind();
            }
            Some(next) if !clean => return linger(write, next).await,
            _ => return Ok(()),
        }
    }
}

/// The service's answer, if it is one to write: a 1xx other than a requested 101
/// cannot be a final answer (the client would wait for another, or switch protocols on
/// its own).
fn final_answer<B, E: Into<BoxError>>(
    answered: Result<Response<B>, E>,
    upgrade: bool,
) -> Result<Response<B>, BoxError> {
    match answered {
        Ok(response)
            if response.status().is_informational()
                && !(upgrade && response.status() == StatusCode::SWITCHING_PROTOCOLS) =>
        {
            Err(format!(
                "the service answered {} as a final status",
                response.status()
            )
            .into())
        }
        Ok(response) => Ok(response),
        Err(e) => Err(e.into()),
    }
}

/// Answers a request the service failed (or answered with a lone 1xx) with a 500, and
/// closes.
async fn fail(
    mut write: OwnedWriteHalf,
    out: &mut Vec<u8>,
    version: Version,
    peer: SocketAddr,
    error: BoxError,
) -> Result<(), BoxError> {
    tracing::error!(error = %error, %peer, "the service failed; closing the connection");
    let answer = Error::Internal.into_response::<Body>();
    write_response(&mut write, out, answer, false, version, Persistence::Close).await?;
    Ok(())
}

/// The request's body, and where the read side is while the service has it.
fn lend(
    reader: Reader,
    framing: RequestFraming,
    expect_continue: bool,
) -> (Body, Lent, Option<Arc<AtomicU8>>) {
    let decoder = match framing {
        RequestFraming::None => return (Body::empty(), Lent::Kept(reader), None),
        RequestFraming::Length(n) => Decoder::Length(n),
        RequestFraming::Chunked => Decoder::Chunked(Chunked::Size),
    };
    let (interim, state) = if expect_continue {
        let (interim, state) = Interim::new();
        (Some(interim), Some(state))
    } else {
        (None, None)
    };
    let (tx, rx) = oneshot::channel();
    let body = RequestBody::new(reader, decoder, tx, interim);
    (Body::wire(body), Lent::Body(rx), state)
}

/// Answers a head that could not be read, then closes.
async fn refuse(
    mut write: OwnedWriteHalf,
    reader: Reader,
    out: &mut Vec<u8>,
    error: Error,
) -> Result<(), BoxError> {
    tracing::debug!(error = %error, "refused a request head");
    let answer = error.into_response::<Body>();
    write_response(
        &mut write,
        out,
        answer,
        false,
        Version::HTTP_11,
        Persistence::Close,
    )
    .await?;
    linger(write, reader).await
}

/// Closes the connection after an answer while the client may still be sending: our
/// side is shut first, then what arrives is read and dropped for a while, so that the
/// kernel does not answer it with a reset that could destroy the answer in flight.
async fn linger(write: OwnedWriteHalf, mut reader: Reader) -> Result<(), BoxError> {
    drop(write);
    let mut drained = 0;
    let _ = tokio::time::timeout(LINGER_TIME, async {
        while drained < LINGER_BYTES {
            reader.buf.clear();
            match poll_fn(|cx| reader.poll_fill(cx)).await {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
    })
    .await;
    Ok(())
}

/// Writes a `101` and hands the connection to whoever holds the request's [`OnUpgrade`].
async fn switch<B>(
    mut write: OwnedWriteHalf,
    reader: Option<Reader>,
    response: Response<B>,
    tx: oneshot::Sender<Upgraded>,
    out: &mut Vec<u8>,
) -> Result<(), BoxError> {
    let (parts, _body) = response.into_parts();
    out.clear();
    wire::encode_response(&parts, ResponseFraming::Empty, Persistence::Default, out);
    write.write_all(out).await?;
    let Some(reader) = reader else {
        return Ok(());
    };
    let io = reader.io.reunite(write)?;
    let _ = tx.send(Upgraded {
        io,
        read_ahead: reader.buf.freeze(),
    });
    Ok(())
}

/// What the response body had next.
enum Step<D> {
    Data(D),
    /// Nothing yet: write out what is buffered meanwhile.
    Flush,
    End,
    Failed(BoxError),
}

/// Writes a response. `Ok(true)`: it was written whole and framed so that the
/// connection can carry another.
async fn write_response<B>(
    write: &mut OwnedWriteHalf,
    out: &mut Vec<u8>,
    response: Response<B>,
    head_request: bool,
    version: Version,
    persistence: Persistence,
) -> Result<bool, BoxError>
where
    B: http_body::Body,
    B::Error: Into<BoxError>,
{
    let (parts, body) = response.into_parts();
    let framing = ResponseFraming::choose(
        parts.status,
        head_request,
        body.size_hint().exact(),
        version,
    );
    let persistence = match framing {
        ResponseFraming::Close => Persistence::Close,
        _ => persistence,
    };
    out.clear();
    let persistence = wire::encode_response(&parts, framing, persistence, out);
    drop(parts);
    if framing == ResponseFraming::Empty {
        write.write_all(out).await?;
        return Ok(persistence != Persistence::Close);
    }

    let mut body = pin!(body);
    let mut left = match framing {
        ResponseFraming::Length(n) => n,
        _ => u64::MAX,
    };
    loop {
        let step = poll_fn(|cx| match body.as_mut().poll_frame(cx) {
            Poll::Pending if !out.is_empty() => Poll::Ready(Step::Flush),
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => Poll::Ready(Step::End),
            Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                Ok(data) => Poll::Ready(Step::Data(data)),
                // Trailers: HTTP/1 clients rarely ask for them; they are dropped.
                Err(_) => Poll::Ready(Step::Flush),
            },
            Poll::Ready(Some(Err(e))) => Poll::Ready(Step::Failed(e.into())),
        })
        .await;
        match step {
            Step::Flush => {
                write.write_all(out).await?;
                out.clear();
            }
            Step::Data(mut data) => {
                let len = data.remaining();
                if len == 0 {
                    continue;
                }
                if framing == ResponseFraming::Chunked {
                    encode_chunk_size(len, out);
                } else if len as u64 > left {
                    return Err("the response body is longer than its length".into());
                }
                left = left.saturating_sub(len as u64);
                while data.has_remaining() {
                    let chunk = data.chunk();
                    let n = chunk.len();
                    if out.len() + n <= COPY_LIMIT {
                        out.extend_from_slice(chunk);
                    } else {
                        write_both(write, out, chunk).await?;
                        out.clear();
                    }
                    data.advance(n);
                }
                if framing == ResponseFraming::Chunked {
                    out.extend_from_slice(b"\r\n");
                }
            }
            Step::End => {
                if framing == ResponseFraming::Chunked {
                    out.extend_from_slice(b"0\r\n\r\n");
                } else if framing != ResponseFraming::Close && left != 0 {
                    write.write_all(out).await?;
                    return Err("the response body is shorter than its length".into());
                }
                write.write_all(out).await?;
                out.clear();
                return Ok(persistence != Persistence::Close);
            }
            Step::Failed(e) => {
                // The client sees the body cut off: no last chunk, or too few bytes.
                let _ = write.write_all(out).await;
                return Err(e);
            }
        }
    }
}

/// Writes `head` then `data`, in one system call when the socket takes both.
async fn write_both(write: &mut OwnedWriteHalf, head: &[u8], data: &[u8]) -> std::io::Result<()> {
    let (mut head, mut data) = (head, data);
    while !head.is_empty() {
        let n = write
            .write_vectored(&[IoSlice::new(head), IoSlice::new(data)])
            .await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        if n < head.len() {
            head = &head[n..];
        } else {
            data = &data[n - head.len()..];
            head = &[];
        }
    }
    write.write_all(data).await
}
