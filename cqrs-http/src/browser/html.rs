//! The browser's HTML: escaping, the page layout, and the pieces every page shows (an event
//! row, a JSON block).

use crate::wire::WireEvent;

/// `text` safe inside HTML text and attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole page: `title`, the navigation, and `body`. `base` is the router's base path;
/// `data` are extra attributes of `<body>` (for the live tail's script).
pub(crate) fn page(base: &str, title: &str, body: &str, data: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · event browser</title>\
         <link rel=\"stylesheet\" href=\"{base}/browse/assets/style.css\"></head>\
         <body data-base=\"{base}\"{data}><header><strong>Event browser</strong>\
         <a href=\"{base}/browse\">Streams</a><a href=\"{base}/browse/tail\">Live tail</a>\
         <a href=\"{base}/feed\">Feed (JSON)</a></header><main>{body}</main></body></html>",
        title = escape(title),
        base = escape(base),
    )
}

/// The header row of [`event_row`]s.
pub(crate) const EVENT_HEADER: &str = "<tr><th>Position</th><th>Stream</th><th>Type</th>\
     <th>Version</th><th>Recorded at (UTC)</th></tr>";

/// One event as a table row, linking to its stream and to itself.
pub(crate) fn event_row(base: &str, event: &WireEvent) -> String {
    format!(
        "<tr><td class=\"num\">{position}</td>\
         <td><a href=\"{base}/browse/streams/{stream_path}\">{stream}</a></td>\
         <td><a class=\"type event-link\" href=\"{base}/browse/events/{position}\">{kind}</a></td>\
         <td class=\"num\">{version}</td><td class=\"muted\">{at}</td></tr>",
        position = event.position,
        stream_path = crate::params::encode(&event.stream_id),
        stream = escape(&event.stream_id),
        kind = escape(&event.event_type),
        version = event.version,
        at = event.recorded_at.format("%Y-%m-%d %H:%M:%S%.6f"),
    )
}

/// JSON text indented for reading (the feed serves it as stored; this is only a view).
pub(crate) fn pretty_json(text: &str) -> String {
    serde_json::from_str::<serde_json::Value>(text)
        .and_then(|value| serde_json::to_string_pretty(&value))
        .map_or_else(|_| escape(text), |pretty| escape(&pretty))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_for_html() {
        assert_eq!(
            escape(r#"<a href="x">Tom & 'Jerry'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/a&gt;"
        );
    }
}
