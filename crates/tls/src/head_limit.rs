//! The answer to a request head over the limits: hyper refuses it itself, before any service
//! runs, with `431 Request Header Fields Too Large` and an empty body. Every other error of
//! Uplink's HTTP APIs is `{code, message}` JSON, so this stream wrapper gives hyper's automatic
//! 431 that body: it recognises the empty 431 head when hyper writes it and writes a complete
//! JSON response in its place (hyper closes the connection after it, as before).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The stable `code` of the JSON body.
pub const CODE: &str = "request_head_too_large";

/// A stream whose writes pass through unchanged, except hyper's empty 431 head.
pub struct HeadLimitAnswer<S> {
    inner: S,
    /// The JSON response written in place of hyper's.
    answer: Box<[u8]>,
    /// The replacement being written, and how many bytes of hyper's head it stands for.
    replacing: Option<Replacing>,
}

struct Replacing {
    written: usize,
    claimed: usize,
}

impl<S> HeadLimitAnswer<S> {
    /// Wraps `inner`; the message names the limits (`max_header_bytes`, `max_headers`).
    pub fn new(inner: S, max_header_bytes: usize, max_headers: usize) -> Self {
        let body = format!(
            "{{\"code\":\"{CODE}\",\"message\":\"the request line and headers exceed this server's limits ({max_header_bytes} bytes, {max_headers} header fields); send fewer or smaller headers\"}}"
        );
        let answer = format!(
            "HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\ncontent-length: {}\r\ncache-control: no-store\r\nx-content-type-options: nosniff\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        Self {
            inner,
            answer: answer.into_bytes().into_boxed_slice(),
            replacing: None,
        }
    }
}

/// Whether `buf` is the whole of hyper's automatic 431: a head with an empty body.
fn is_empty_431(buf: &[u8]) -> bool {
    buf.starts_with(b"HTTP/1.1 431 ")
        && buf.ends_with(b"\r\n\r\n")
        && buf
            .windows(b"\r\ncontent-length: 0\r\n".len())
            .any(|w| w.eq_ignore_ascii_case(b"\r\ncontent-length: 0\r\n"))
}

impl<S: AsyncWrite + Unpin> HeadLimitAnswer<S> {
    /// Writes the replacement until it is all out, then reports `claimed` bytes of hyper's
    /// head as written.
    fn poll_replace(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let Some(replacing) = &mut self.replacing else {
            return Poll::Ready(Ok(0));
        };
        while replacing.written < self.answer.len() {
            let n = ready!(
                Pin::new(&mut self.inner).poll_write(cx, &self.answer[replacing.written..])
            )?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            replacing.written += n;
        }
        let claimed = replacing.claimed;
        self.replacing = None;
        Poll::Ready(Ok(claimed))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for HeadLimitAnswer<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for HeadLimitAnswer<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.replacing.is_none() && is_empty_431(buf) {
            this.replacing = Some(Replacing {
                written: 0,
                claimed: buf.len(),
            });
        }
        if this.replacing.is_some() {
            return this.poll_replace(cx);
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let first = bufs.iter().find(|b| !b.is_empty());
        if this.replacing.is_none()
            && let Some(first) = first
            && is_empty_431(first)
        {
            this.replacing = Some(Replacing {
                written: 0,
                claimed: first.len(),
            });
        }
        if this.replacing.is_some() {
            return this.poll_replace(cx);
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.replacing.is_some() {
            ready!(this.poll_replace(cx))?;
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_empty_431_head_is_recognised() {
        assert!(is_empty_431(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: Sun, 06 Dec 2026 18:00:00 GMT\r\n\r\n"
        ));
        assert!(!is_empty_431(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 12\r\n\r\n"
        ));
        assert!(!is_empty_431(
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
        ));
        assert!(!is_empty_431(b"HTTP/1.1 431 "));
    }

    #[tokio::test]
    async fn the_replacement_is_a_complete_json_response() {
        use tokio::io::AsyncWriteExt;
        let mut out = HeadLimitAnswer::new(Vec::new(), 8192, 20);
        let head = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n\r\n";
        out.write_all(head).await.unwrap();
        out.flush().await.unwrap();
        let text = String::from_utf8(out.inner).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 431 "), "{head}");
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{head}"
        );
        assert!(body.starts_with(r#"{"code":"request_head_too_large","message":"#));
        assert!(body.contains("8192 bytes, 20 header fields"), "{body}");
        // Other writes pass through as they are.
        let mut out = HeadLimitAnswer::new(Vec::new(), 8192, 20);
        out.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            .await
            .unwrap();
        assert_eq!(out.inner, b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
    }
}
