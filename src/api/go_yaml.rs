//! YAML text the way the OpenShift installer writes it.
//!
//! The installer stores nmstate `networkConfig` after a JSON round trip
//! through `sigs.k8s.io/yaml`, whose emitter is go-yaml v2 (libyaml's
//! emitter underneath). That emitter quotes every string a YAML 1.1 reader
//! would take for something else: `mac-address: "52:54:00:12:34:56"` (a
//! base-60 number in YAML 1.1), `"yes"`, `"0755"`, `""`. A YAML 1.2 emitter
//! leaves those plain, and an older reader then decodes a MAC address as an
//! integer. This module reproduces go-yaml v2's choices for the subset of
//! YAML a JSON value needs: block mappings with keys in go-yaml's "natural"
//! order, sequences whose dashes are not indented under their key, and its
//! scalar styles. Not reproduced: folding of plain or quoted strings longer
//! than 80 columns at a space (the emitted value is the same string, only on
//! one line).

use std::cmp::Ordering;

use serde_json::{Map, Number, Value};

#[path = "go_yaml_resolve.rs"]
mod resolve;
use resolve::{is_base60_float, resolves_to_string};

/// `value` as go-yaml v2 marshals it, ending with a newline.
pub fn to_string(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(m) if !m.is_empty() => write_map(&mut out, m, 0),
        Value::Array(a) if !a.is_empty() => write_seq(&mut out, a, 0),
        other => {
            out.push_str(&inline(other, 0, false));
            out.push('\n');
        }
    }
    out
}

fn spaces(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

fn write_map(out: &mut String, map: &Map<String, Value>, indent: usize) {
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort_by(|a, b| natural_order(a, b));
    for key in keys {
        spaces(out, indent);
        out.push_str(&string_scalar(key, indent, true));
        out.push(':');
        match &map[key] {
            Value::Object(m) if !m.is_empty() => {
                out.push('\n');
                write_map(out, m, indent + 2);
            }
            // go-yaml does not indent a sequence under its mapping key.
            Value::Array(a) if !a.is_empty() => {
                out.push('\n');
                write_seq(out, a, indent);
            }
            other => {
                out.push(' ');
                out.push_str(&inline(other, indent + 2, false));
                out.push('\n');
            }
        }
    }
}

fn write_seq(out: &mut String, items: &[Value], indent: usize) {
    for item in items {
        spaces(out, indent);
        out.push('-');
        let nested = match item {
            Value::Object(m) if !m.is_empty() => {
                let mut s = String::new();
                write_map(&mut s, m, indent + 2);
                Some(s)
            }
            Value::Array(a) if !a.is_empty() => {
                let mut s = String::new();
                write_seq(&mut s, a, indent + 2);
                Some(s)
            }
            _ => None,
        };
        out.push(' ');
        match nested {
            // The first line of the nested block goes right after the dash.
            Some(s) => out.push_str(&s[indent + 2..]),
            None => {
                out.push_str(&inline(item, indent + 2, false));
                out.push('\n');
            }
        }
    }
}

/// A value that fits on its key's or dash's line (a literal block scalar
/// continues on the following lines, indented by `indent`).
fn inline(value: &Value, indent: usize, is_key: bool) -> String {
    match value {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => number(n),
        Value::String(s) => string_scalar(s, indent, is_key),
        Value::Array(_) => "[]".to_string(),
        Value::Object(_) => "{}".to_string(),
    }
}

fn number(n: &Number) -> String {
    if n.is_i64() || n.is_u64() {
        return n.to_string();
    }
    n.as_f64().map(go_float).unwrap_or_else(|| n.to_string())
}

/// Go's `strconv.FormatFloat(f, 'g', -1, 64)` plus YAML's names for the
/// non-finite values.
fn go_float(f: f64) -> String {
    if f.is_nan() {
        return ".nan".to_string();
    }
    if f.is_infinite() {
        return if f > 0.0 { ".inf" } else { "-.inf" }.to_string();
    }
    // Rust's `{:e}` is the shortest round-trip form: "1.5e6", "1e-5".
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..6).contains(&exp) {
        // Display never uses an exponent and is shortest too.
        format!("{f}")
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.unsigned_abs())
    }
}

/// go-yaml v2's map key order: runs of digits compare as numbers, letters
/// by code point, and a non-letter sorts before a letter.
pub fn natural_order(a: &str, b: &str) -> Ordering {
    let ar: Vec<char> = a.chars().collect();
    let br: Vec<char> = b.chars().collect();
    for i in 0..ar.len().min(br.len()) {
        if ar[i] == br[i] {
            continue;
        }
        let (al, bl) = (ar[i].is_alphabetic(), br[i].is_alphabetic());
        if al && bl {
            return ar[i].cmp(&br[i]);
        }
        if al || bl {
            return if bl {
                Ordering::Less
            } else {
                Ordering::Greater
            };
        }
        let (mut an, mut bn) = (0i64, 0i64);
        if ar[i] == '0' || br[i] == '0' {
            // Inside a number that does not start with zeros, a zero is
            // just a digit; leading zeros make the longer run sort later.
            for c in ar[..i].iter().rev() {
                if !c.is_ascii_digit() {
                    break;
                }
                if *c != '0' {
                    an = 1;
                    bn = 1;
                    break;
                }
            }
        }
        let run = |chars: &[char], mut n: i64| {
            let mut end = i;
            while let Some(d) = chars.get(end).and_then(|c| c.to_digit(10)) {
                n = n.wrapping_mul(10).wrapping_add(i64::from(d));
                end += 1;
            }
            (n, end)
        };
        let (an, ae) = run(&ar, an);
        let (bn, be) = run(&br, bn);
        if an != bn {
            return an.cmp(&bn);
        }
        if ae != be {
            return ae.cmp(&be);
        }
        return ar[i].cmp(&br[i]);
    }
    ar.len().cmp(&br.len())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Plain,
    SingleQuoted,
    DoubleQuoted,
    Literal,
}

fn string_scalar(s: &str, indent: usize, is_key: bool) -> String {
    match style(s, is_key) {
        Style::Plain => s.to_string(),
        Style::SingleQuoted => format!("'{}'", s.replace('\'', "''")),
        Style::DoubleQuoted => double_quoted(s),
        Style::Literal => literal(s, indent),
    }
}

/// The style go-yaml asks for, corrected as libyaml's emitter does when
/// the text cannot be written that way.
fn style(s: &str, is_key: bool) -> Style {
    let wanted = if s.contains('\n') {
        Style::Literal
    } else if resolves_to_string(s) && !is_base60_float(s) {
        Style::Plain
    } else {
        Style::DoubleQuoted
    };
    let a = analyze(s);
    match wanted {
        Style::Plain if !a.block_plain || (is_key && a.multiline) => {
            if a.single_quoted {
                Style::SingleQuoted
            } else {
                Style::DoubleQuoted
            }
        }
        Style::Literal if !a.block || is_key => Style::DoubleQuoted,
        other => other,
    }
}

/// What libyaml's scalar analysis allows for a block-context scalar.
struct Analysis {
    multiline: bool,
    block_plain: bool,
    single_quoted: bool,
    block: bool,
}

fn is_break(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

fn is_printable(c: char) -> bool {
    matches!(c, '\n' | '\u{20}'..='\u{7E}' | '\u{85}' | '\u{A0}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
        && c != '\u{FEFF}'
}

fn analyze(s: &str) -> Analysis {
    let chars: Vec<char> = s.chars().collect();
    if chars.is_empty() {
        return Analysis {
            multiline: false,
            block_plain: true,
            single_quoted: true,
            block: false,
        };
    }
    let blankz = |i: usize| {
        chars
            .get(i)
            .is_none_or(|c| *c == ' ' || *c == '\t' || is_break(*c))
    };
    let mut block_indicators = s.starts_with("---") || s.starts_with("...");
    block_indicators &= blankz(3);
    let (mut line_breaks, mut special) = (false, false);
    let (mut leading_space, mut leading_break) = (false, false);
    let (mut trailing_space, mut trailing_break) = (false, false);
    let (mut break_space, mut space_break) = (false, false);
    let (mut previous_space, mut previous_break) = (false, false);
    let mut preceded_by_whitespace = true;
    let last = chars.len() - 1;
    for (i, &c) in chars.iter().enumerate() {
        let followed_by_whitespace = blankz(i + 1);
        if i == 0 {
            match c {
                '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"'
                | '%' | '@' | '`' => block_indicators = true,
                '?' | ':' | '-' if followed_by_whitespace => block_indicators = true,
                _ => {}
            }
        } else {
            match c {
                ':' if followed_by_whitespace => block_indicators = true,
                '#' if preceded_by_whitespace => block_indicators = true,
                _ => {}
            }
        }
        if !is_printable(c) {
            special = true;
        }
        if is_break(c) {
            line_breaks = true;
        }
        if c == ' ' {
            leading_space |= i == 0;
            trailing_space |= i == last;
            break_space |= previous_break;
            previous_space = true;
            previous_break = false;
        } else if is_break(c) {
            leading_break |= i == 0;
            trailing_break |= i == last;
            space_break |= previous_space;
            previous_break = true;
            previous_space = false;
        } else {
            previous_space = false;
            previous_break = false;
        }
        preceded_by_whitespace = c == ' ' || c == '\t' || is_break(c);
    }
    let mut a = Analysis {
        multiline: line_breaks,
        block_plain: true,
        single_quoted: true,
        block: true,
    };
    if leading_space || leading_break || trailing_space || trailing_break {
        a.block_plain = false;
    }
    if trailing_space {
        a.block = false;
    }
    if break_space {
        a.block_plain = false;
        a.single_quoted = false;
    }
    if space_break || special {
        a.block_plain = false;
        a.single_quoted = false;
        a.block = false;
    }
    if line_breaks || block_indicators {
        a.block_plain = false;
    }
    a
}

fn double_quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\0' => out.push_str("\\0"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{b}' => out.push_str("\\v"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            '\u{1b}' => out.push_str("\\e"),
            '\u{85}' => out.push_str("\\N"),
            '\u{2028}' => out.push_str("\\L"),
            '\u{2029}' => out.push_str("\\P"),
            c if !is_printable(c) => {
                let n = u32::from(c);
                if n <= 0xFF {
                    out.push_str(&format!("\\x{n:02X}"));
                } else if n <= 0xFFFF {
                    out.push_str(&format!("\\u{n:04X}"));
                } else {
                    out.push_str(&format!("\\U{n:08X}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A literal block scalar (`|`), its lines indented by `indent`.
fn literal(s: &str, indent: usize) -> String {
    let mut out = String::from("|");
    if s.starts_with([' ', '\n']) {
        out.push('2');
    }
    if !s.ends_with('\n') {
        out.push('-');
    } else if s.len() == 1 || s.ends_with("\n\n") {
        out.push('+');
    }
    let body = s.strip_suffix('\n').unwrap_or(s);
    for line in body.split('\n') {
        out.push('\n');
        if !line.is_empty() {
            spaces(&mut out, indent);
            out.push_str(line);
        }
    }
    out
}

#[cfg(test)]
#[path = "go_yaml_tests.rs"]
mod tests;
