//! A nesting limit for YAML, checked before a document is decoded.
//!
//! The YAML parser's cost grows with the square of the flow nesting depth
//! (`[[[[…`): a 200 KB file of brackets takes minutes, although the decoder
//! refuses anything deeper than 128 levels; it only refuses after the parser
//! has read the whole document. This check drives the same parser event by
//! event and stops at the first collection deeper than the limit, so the
//! cost stays linear in the input. A syntax error is left to the decoder,
//! which reports it with its position.

use std::mem::MaybeUninit;

use libyaml_rs as sys;

/// Deeper than any real configuration or Kubernetes schema nests, and below
/// the decoder's own limit (128), so this message is the one users see.
pub const MAX_YAML_DEPTH: usize = 100;

/// `Err(line)` (1-based) where a collection nests deeper than `max`.
pub fn check_depth(text: &[u8], max: usize) -> Result<(), usize> {
    let mut parser = Box::new(MaybeUninit::<sys::yaml_parser_t>::uninit());
    let p = parser.as_mut_ptr();
    // SAFETY: `p` points to memory owned by `parser`, initialised by
    // yaml_parser_initialize before any other call and deleted once below;
    // the input slice outlives the parser; every event is deleted after
    // its type and mark are copied out.
    unsafe {
        if sys::yaml_parser_initialize(p).fail {
            // Out of memory: the decoder will fail the same way.
            return Ok(());
        }
        sys::yaml_parser_set_encoding(p, sys::YAML_UTF8_ENCODING);
        sys::yaml_parser_set_input_string(p, text.as_ptr(), text.len() as _);
        let mut depth = 0usize;
        let mut result = Ok(());
        loop {
            let mut event = MaybeUninit::<sys::yaml_event_t>::uninit();
            let e = event.as_mut_ptr();
            if sys::yaml_parser_parse(p, e).fail {
                break;
            }
            let kind = (*e).type_;
            let line = (*e).start_mark.line;
            sys::yaml_event_delete(e);
            match kind {
                sys::YAML_SEQUENCE_START_EVENT | sys::YAML_MAPPING_START_EVENT => {
                    depth += 1;
                    if depth > max {
                        result = Err(usize::try_from(line)
                            .unwrap_or(usize::MAX)
                            .saturating_add(1));
                        break;
                    }
                }
                sys::YAML_SEQUENCE_END_EVENT | sys::YAML_MAPPING_END_EVENT => {
                    depth = depth.saturating_sub(1);
                }
                sys::YAML_STREAM_END_EVENT | sys::YAML_NO_EVENT => break,
                _ => {}
            }
        }
        sys::yaml_parser_delete(p);
        result
    }
}

/// The message for a document nested deeper than [`MAX_YAML_DEPTH`].
pub fn too_deep(line: usize) -> String {
    format!(
        "nests lists and mappings more than {MAX_YAML_DEPTH} levels deep (at line {line}); \
         no configuration needs that, so the file is damaged or not what it should be"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shallow_documents_pass_and_deep_ones_stop_early() {
        // Four levels: the root, a's mapping, the list, {c: d}.
        assert_eq!(check_depth(b"a:\n  b: [1, {c: d}]\n", 4), Ok(()));
        assert_eq!(check_depth(b"a:\n  b: [1, {c: d}]\n", 3), Err(2));
        // 200 000 levels: refused after 101, in far less than the parse of all.
        let deep = format!("x: {}", "[".repeat(200_000));
        assert_eq!(check_depth(deep.as_bytes(), MAX_YAML_DEPTH), Err(1));
        // Syntax errors are the decoder's to report.
        assert_eq!(check_depth(b"a: [\n", 10), Ok(()));
        // Several documents are each checked.
        assert_eq!(check_depth(b"a: 1\n---\nb: [[[1]]]\n", 2), Err(3));
    }
}
