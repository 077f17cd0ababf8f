//! What of an input value an error message may show.
//!
//! Input files carry secrets (pull secrets, keys, password hashes), and an
//! input may be a symlink to a file the user should not see (`/etc/shadow`
//! when sprout runs as root). So a message never quotes a value whole: it
//! shows a short excerpt, escaped (no control characters reach the terminal),
//! and nothing at all of anything that looks like a PEM block or a private
//! key. [`excerpt`] is for values a message quotes; [`sanitize_message`] is
//! applied to every problem message before it is shown, whatever produced it
//! (serde, nmstate, our own validators).

/// Characters of a value shown at most.
pub const EXCERPT_MAX_CHARS: usize = 40;
/// Characters of a whole problem message shown at most.
pub const MESSAGE_MAX_CHARS: usize = 600;

/// A seed's or an input's text made safe to print: control characters
/// (ESC, CR, newline, C1 controls) and invisible formatting characters
/// (bidirectional overrides, zero-width ones) are shown escaped (`\u{1b}`,
/// `\n`), so a field cannot clear the terminal, move the cursor or forge a
/// line such as `Usable: yes`.
pub fn escape_text(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

/// True for text that holds key material or a PEM block of any kind.
pub fn looks_like_key(value: &str) -> bool {
    value.contains("-----BEGIN")
        || value.contains("-----END")
        || value.contains("PRIVATE KEY")
        || value.contains("PuTTY-User-Key-File")
}

/// `value` as a message may quote it: `"short value"`, `"first 40
/// characters"… (N bytes)`, or a placeholder for key-like text.
pub fn excerpt(value: &str) -> String {
    if looks_like_key(value) {
        return if value.contains("PRIVATE KEY") {
            format!(
                "<a private key ({} bytes), not shown: never put a private key in an input file>",
                value.len()
            )
        } else {
            format!("<a PEM block ({} bytes), not shown>", value.len())
        };
    }
    let mut chars = value.chars();
    let head: String = chars.by_ref().take(EXCERPT_MAX_CHARS).collect();
    if chars.next().is_none() {
        format!("{head:?}")
    } else {
        format!("{head:?}… ({} bytes)", value.len())
    }
}

/// `message` made safe to show: PEM blocks removed, long quoted parts cut
/// to an excerpt, control characters escaped, the whole cut to
/// [`MESSAGE_MAX_CHARS`].
pub fn sanitize_message(message: &str) -> String {
    let without_pem = remove_pem_blocks(message);
    let shortened = shorten_quoted(&without_pem);
    let mut out = String::new();
    for (n, c) in shortened.chars().enumerate() {
        if n >= MESSAGE_MAX_CHARS {
            out.push('…');
            break;
        }
        if needs_escape(c) {
            out.push_str(&escape_text(c.encode_utf8(&mut [0; 4])));
        } else {
            out.push(c);
        }
    }
    out
}

/// True if `text` has a run of `n` or more base64 characters (key material).
fn has_base64_run(text: &str, n: usize) -> bool {
    let mut run = 0;
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=' {
            run += 1;
            if run >= n {
                return true;
            }
        } else {
            run = 0;
        }
    }
    false
}

/// Base64 characters in a row that count as key material.
const KEY_RUN: usize = 20;

/// Replaces each PEM block (`-----BEGIN X-----` … `-----END X-----`, or to
/// the end of the text when the END is missing and key material follows)
/// with a placeholder. A bare header, as in a hint naming the expected
/// block, stays.
fn remove_pem_blocks(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN") {
        out.push_str(&rest[..start]);
        let block = &rest[start..];
        let header_len = block["-----BEGIN".len()..]
            .find("-----")
            .map_or(block.len(), |d| "-----BEGIN".len() + d + "-----".len());
        let end = block[header_len..].find("-----END").and_then(|e| {
            let at = header_len + e + "-----END".len();
            block[at..].find("-----").map(|d| at + d + "-----".len())
        });
        match end {
            Some(end) => {
                out.push_str("<PEM block not shown>");
                rest = &block[end..];
            }
            None if has_base64_run(&block[header_len..], KEY_RUN) => {
                out.push_str("<PEM block not shown>");
                rest = "";
            }
            None => {
                out.push_str(&block[..header_len]);
                rest = &block[header_len..];
            }
        }
    }
    out.push_str(rest);
    if (out.contains("PRIVATE KEY") || out.contains("-----END")) && has_base64_run(&out, KEY_RUN) {
        // A stray marker next to key-like text: none of it is kept.
        return "<message not shown: it quotes what looks like key material>".to_string();
    }
    out
}

/// For serde's "unknown field `k`" about a key that is no field name at
/// all (a line of some other file, say), a message that does not show it.
pub fn implausible_unknown_key(message: &str) -> Option<String> {
    let (_, after) = message.split_once("unknown field `")?;
    let key = after.split('`').next()?;
    let plausible = !key.is_empty()
        && key.len() <= 64
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-./".contains(&b));
    (!plausible).then(|| {
        format!(
            "a key that is no field name ({} characters, not shown); check that this is the right file",
            key.chars().count()
        )
    })
}

/// The message for a decoding error at the top of the file `file`, when the
/// file holds a string or a list instead of fields. That value is the whole
/// file (perhaps one the input was never meant to point at), so nothing of
/// it is shown.
pub fn root_type_message(message: &str, file: &str) -> Option<String> {
    let rest = message.strip_prefix("invalid type: ")?;
    let kind = rest.split([' ', ',']).next().filter(|k| !k.is_empty())?;
    Some(format!(
        "the file holds a {kind}, not the fields of {file}; check that it is the right file"
    ))
}

/// Cuts each `"…"` or `` `…` `` part longer than [`EXCERPT_MAX_CHARS`].
fn shorten_quoted(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '"' && c != '`' {
            out.push(c);
            continue;
        }
        let mut inner = String::new();
        let mut closed = false;
        while let Some(d) = chars.next() {
            if d == c {
                closed = true;
                break;
            }
            inner.push(d);
            if d == '\\'
                && c == '"'
                && let Some(e) = chars.next()
            {
                inner.push(e);
            }
        }
        let count = inner.chars().count();
        out.push(c);
        if count > EXCERPT_MAX_CHARS {
            out.extend(inner.chars().take(EXCERPT_MAX_CHARS));
            out.push('…');
        } else {
            out.push_str(&inner);
        }
        if closed {
            out.push(c);
        }
        if count > EXCERPT_MAX_CHARS {
            out.push_str(&format!(" ({count} characters)"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_shown_escaped() {
        assert_eq!(escape_text("plain: ok"), "plain: ok");
        assert_eq!(
            escape_text("x\nUsable:              yes\x1b[2J\u{202e}"),
            "x\\nUsable:              yes\\u{1b}[2J\\u{202e}"
        );
        assert_eq!(escape_text("a\rb\u{9b}c"), "a\\rb\\u{9b}c");
    }

    const KEY: &str = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\nQyNTUxOQAAACBHpLm7hVw3vV0Y9\n-----END OPENSSH PRIVATE KEY-----\n";

    #[test]
    fn short_values_are_quoted_and_escaped() {
        assert_eq!(excerpt("Bad_"), "\"Bad_\"");
        assert_eq!(excerpt("a\u{1b}[2Jb\n"), "\"a\\u{1b}[2Jb\\n\"");
    }

    #[test]
    fn long_values_are_cut_with_their_size() {
        let v = "x".repeat(500);
        let e = excerpt(&v);
        assert!(
            e.starts_with(&format!("\"{}\"…", "x".repeat(EXCERPT_MAX_CHARS))),
            "{e}"
        );
        assert!(e.ends_with("(500 bytes)"), "{e}");
    }

    #[test]
    fn keys_are_never_shown() {
        let e = excerpt(KEY);
        assert!(e.contains("private key") && !e.contains("b3BlbnNz"), "{e}");
        let e = excerpt("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----");
        assert!(!e.contains("MIIB"), "{e}");
    }

    #[test]
    fn messages_lose_pem_blocks_long_quotes_and_control_characters() {
        let m = sanitize_message(&format!("bad value {KEY} here"));
        assert!(!m.contains("b3BlbnNz") && m.ends_with("here"), "{m}");
        assert!(m.contains("<PEM block not shown>"), "{m}");
        // A key cut before its END line.
        let m = sanitize_message(&format!("bad {}", &KEY[..80]));
        assert!(!m.contains("b3BlbnNz"), "{m}");
        let long = "y".repeat(300);
        let m = sanitize_message(&format!("invalid type: string \"{long}\", expected a map"));
        assert!(
            m.contains("(300 characters)") && m.ends_with("expected a map"),
            "{m}"
        );
        assert!(!m.contains(&"y".repeat(EXCERPT_MAX_CHARS + 1)), "{m}");
        let m = sanitize_message("unknown field `\u{1b}[2Jx`");
        assert!(!m.contains('\u{1b}') && m.contains("\\u{1b}"), "{m}");
        let m = sanitize_message(&"z".repeat(5000));
        assert_eq!(m.chars().count(), MESSAGE_MAX_CHARS + 1);
    }

    #[test]
    fn a_file_that_is_one_string_is_not_quoted() {
        let m = root_type_message(
            "invalid type: string \"root:$6$secret:19000:0\", expected struct InstallConfig",
            "install-config.yaml",
        )
        .unwrap();
        assert!(m.contains("holds a string") && !m.contains("secret"), "{m}");
        assert_eq!(root_type_message("missing field `x`", "f"), None);
        let m =
            implausible_unknown_key("unknown field `root:$6$salt$hash:1:::`, expected one of `a`")
                .unwrap();
        assert!(!m.contains("salt"), "{m}");
        assert_eq!(
            implausible_unknown_key("unknown field `baseDomian`, expected"),
            None
        );
    }

    #[test]
    fn ordinary_messages_are_unchanged() {
        let m = "Invalid value: \"10.0.0.1/16\": has host bits set; use the network address 10.0.0.0/16";
        assert_eq!(sanitize_message(m), m);
        let hint = "expected one or more PEM certificates (-----BEGIN CERTIFICATE-----)";
        assert_eq!(sanitize_message(hint), hint);
        let m = "every PEM block must be a CERTIFICATE; remove private keys and other blocks";
        assert_eq!(sanitize_message(m), m);
    }
}
