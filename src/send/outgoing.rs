//! A message as the mailers send it: its envelope and its bytes, some of
//! them shared with other messages.
//!
//! A message's own bytes (headers, text, HTML, invitation) are a few KiB;
//! an attached file's base64 can be megabytes, and is the same in every
//! message of a burst. An [`Outgoing`] holds its own bytes with each
//! shared piece cut out, and the shared pieces as `Arc`s, so that a message
//! waiting to be sent, or being sent, holds no copy of its attachments: the
//! SMTP mailer writes the pieces one after the other, and only a maildir or
//! a preview puts them together.

use std::sync::Arc;

use lettre::Message;
use lettre::address::Envelope;

/// One message, ready for a mailer.
#[derive(Debug, Clone)]
pub struct Outgoing {
    envelope: Envelope,
    /// The formatted message with each shared piece left out.
    own: Vec<u8>,
    /// Where each shared piece goes in `own`, in order.
    shared: Vec<(usize, Arc<[u8]>)>,
}

/// A message formatted with a different number of markers than pieces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkerMismatch {
    pub markers: usize,
    pub pieces: usize,
}

impl std::fmt::Display for MarkerMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the message has {} places for shared parts and {} parts",
            self.markers, self.pieces
        )
    }
}

impl std::error::Error for MarkerMismatch {}

impl Outgoing {
    /// `message`, whose every occurrence of `marker` (a body left for a
    /// shared piece) is to be replaced by the next of `pieces`. A marker
    /// must not occur otherwise: one holding a NUL byte cannot, since
    /// lettre encodes every body and header into printable ASCII.
    pub fn with_shared(
        message: &Message,
        marker: &[u8],
        pieces: Vec<Arc<[u8]>>,
    ) -> Result<Outgoing, MarkerMismatch> {
        let formatted = message.formatted();
        let mut own = Vec::with_capacity(formatted.len());
        let mut shared = Vec::with_capacity(pieces.len());
        let mut pieces = pieces.into_iter();
        let mut rest = &formatted[..];
        let mut markers = 0;
        while let Some(at) = find(rest, marker) {
            own.extend_from_slice(&rest[..at]);
            markers += 1;
            if let Some(piece) = pieces.next() {
                shared.push((own.len(), piece));
            }
            rest = &rest[at + marker.len()..];
        }
        own.extend_from_slice(rest);
        let left = pieces.len();
        if markers != shared.len() || left > 0 {
            return Err(MarkerMismatch {
                markers,
                pieces: shared.len() + left,
            });
        }
        Ok(Outgoing {
            envelope: message.envelope().clone(),
            own,
            shared,
        })
    }

    pub fn envelope(&self) -> &Envelope {
        &self.envelope
    }

    /// The message's bytes, in order, in pieces.
    pub fn pieces(&self) -> impl Iterator<Item = &[u8]> {
        let mut start = 0;
        let mut pieces = Vec::with_capacity(2 * self.shared.len() + 1);
        for (at, piece) in &self.shared {
            pieces.push(&self.own[start..*at]);
            pieces.push(&piece[..]);
            start = *at;
        }
        pieces.push(&self.own[start..]);
        pieces.into_iter().filter(|piece| !piece.is_empty())
    }

    /// The size of the whole message, in bytes.
    pub fn len(&self) -> usize {
        self.own.len() + self.shared.iter().map(|(_, piece)| piece.len()).sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The whole message in one buffer (a maildir file, a preview).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(self.len());
        for piece in self.pieces() {
            bytes.extend_from_slice(piece);
        }
        bytes
    }
}

impl From<&Message> for Outgoing {
    fn from(message: &Message) -> Outgoing {
        Outgoing {
            envelope: message.envelope().clone(),
            own: message.formatted(),
            shared: Vec::new(),
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    haystack.windows(needle.len()).position(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lettre::message::{Body, MultiPart, SinglePart, header::ContentTransferEncoding};

    const MARKER: &[u8] = b"\0marker\0";

    fn message(parts: usize) -> Message {
        let mut multipart = MultiPart::mixed().singlepart(SinglePart::plain("Dear colleagues".to_owned()));
        for _ in 0..parts {
            multipart = multipart.singlepart(SinglePart::builder().body(Body::dangerous_pre_encoded(
                MARKER.to_vec(),
                ContentTransferEncoding::Base64,
            )));
        }
        Message::builder()
            .from("a@example.org".parse().unwrap())
            .to("b@example.org".parse().unwrap())
            .subject("s")
            .multipart(multipart)
            .unwrap()
    }

    #[test]
    fn the_pieces_are_the_message_with_each_marker_replaced() {
        let message = message(2);
        let pieces: Vec<Arc<[u8]>> = vec![Arc::from(&b"QUFB\r\n"[..]), Arc::from(&b"QkJC\r\n"[..])];
        let outgoing = Outgoing::with_shared(&message, MARKER, pieces).unwrap();
        let expected = String::from_utf8(message.formatted())
            .unwrap()
            .replacen("\0marker\0", "QUFB\r\n", 1)
            .replacen("\0marker\0", "QkJC\r\n", 1);
        assert_eq!(String::from_utf8(outgoing.to_bytes()).unwrap(), expected);
        assert_eq!(outgoing.len(), expected.len());
        assert_eq!(outgoing.pieces().count(), 5);
    }

    #[test]
    fn markers_and_pieces_must_match() {
        let one: Vec<Arc<[u8]>> = vec![Arc::from(&b"x"[..])];
        assert_eq!(
            Outgoing::with_shared(&message(2), MARKER, one.clone()).err(),
            Some(MarkerMismatch {
                markers: 2,
                pieces: 1
            })
        );
        assert_eq!(
            Outgoing::with_shared(&message(0), MARKER, one).err(),
            Some(MarkerMismatch {
                markers: 0,
                pieces: 1
            })
        );
    }
}
