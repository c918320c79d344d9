//! [`SseParser`]: Server-Sent Events frames out of a byte stream, as much of it as has
//! arrived.

/// One complete SSE message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct SseMessage {
    /// The `event:` field (`message` when absent).
    pub(crate) event: String,
    /// The `id:` field, if any.
    pub(crate) id: Option<String>,
    /// The `data:` lines, joined with `\n`.
    pub(crate) data: String,
}

/// Collects bytes and hands back each message once its blank line arrived.
#[derive(Debug, Default)]
pub(crate) struct SseParser {
    buffer: String,
}

impl SseParser {
    /// Adds `chunk` and returns the messages it completed (comments and keep-alives are
    /// dropped). Bytes that are not UTF-8 are replaced, as the SSE spec asks.
    pub(crate) fn push(&mut self, chunk: &[u8]) -> Vec<SseMessage> {
        self.buffer.push_str(&String::from_utf8_lossy(chunk));
        if self.buffer.contains("\r\n") {
            self.buffer = self.buffer.replace("\r\n", "\n");
        }
        let mut messages = Vec::new();
        while let Some(end) = self.buffer.find("\n\n") {
            let frame: String = self.buffer.drain(..end + 2).collect();
            let mut message = SseMessage::default();
            let mut data = Vec::new();
            for line in frame.lines() {
                let (field, value) = line.split_once(':').unwrap_or((line, ""));
                let value = value.strip_prefix(' ').unwrap_or(value);
                match field {
                    "event" => message.event = value.to_owned(),
                    "id" => message.id = Some(value.to_owned()),
                    "data" => data.push(value),
                    _ => {} // a comment (empty field name) or a field we do not use
                }
            }
            if !data.is_empty() {
                message.data = data.join("\n");
                if message.event.is_empty() {
                    message.event = "message".to_owned();
                }
                messages.push(message);
            }
        }
        messages
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_split_across_chunks_come_out_whole_and_comments_are_dropped() {
        let mut parser = SseParser::default();
        assert!(parser.push(b": keep-alive\n\nid: 4\nda").is_empty());
        let messages = parser.push(b"ta: {\"a\":\r\ndata: 1}\r\n\r\nevent: error\ndata: x\n\n");
        assert_eq!(
            messages,
            [
                SseMessage {
                    event: "message".into(),
                    id: Some("4".into()),
                    data: "{\"a\":\n1}".into()
                },
                SseMessage {
                    event: "error".into(),
                    id: None,
                    data: "x".into()
                },
            ]
        );
    }
}
