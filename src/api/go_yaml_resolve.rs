//! go-yaml v2's resolution of plain scalars: which strings would read
//! back as another type, and so must be quoted.

/// True when a plain scalar `s` reads back as a string under go-yaml v2's
/// YAML 1.1 resolution (no null, bool, number or timestamp).
pub(super) fn resolves_to_string(s: &str) -> bool {
    const SPECIAL: &[&str] = &[
        "", "~", "null", "Null", "NULL", "y", "Y", "yes", "Yes", "YES", "on", "On", "ON", "n", "N",
        "no", "No", "NO", "off", "Off", "OFF", "true", "True", "TRUE", "false", "False", "FALSE",
        ".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf",
        "-.Inf", "-.INF",
    ];
    if SPECIAL.contains(&s) {
        return false;
    }
    match s.chars().next() {
        // Go's ParseFloat and Rust's agree on everything starting with '.'.
        Some('.') => s.parse::<f64>().is_err(),
        Some(c) if c.is_ascii_digit() || c == '+' || c == '-' => {
            !(is_timestamp(s) || is_go_number(&s.replace('_', "")))
        }
        _ => true,
    }
}

/// `strconv.ParseInt(s, 0, 64)`, `ParseUint(s, 0, 64)`, YAML's float
/// pattern, or a `0b` binary literal.
fn is_go_number(s: &str) -> bool {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'+') => (false, &s[1..]),
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    let radix_digits = |radix: u32, digits: &str| {
        !digits.is_empty() && u64::from_str_radix(digits, radix).is_ok_and(|v| !neg || v <= 1 << 63)
    };
    let lower = body.to_ascii_lowercase();
    let int = if let Some(d) = lower.strip_prefix("0x") {
        radix_digits(16, d)
    } else if let Some(d) = lower.strip_prefix("0o") {
        radix_digits(8, d)
    } else if let Some(d) = lower.strip_prefix("0b") {
        radix_digits(2, d)
    } else if body.len() > 1 && body.starts_with('0') {
        radix_digits(8, &body[1..])
    } else {
        radix_digits(10, body)
    };
    int || yaml_float_pattern(s)
}

/// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`
fn yaml_float_pattern(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i - start
    };
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            digits(&mut i);
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// go-yaml v2 tries timestamps only on text starting with four digits and
/// a dash, with Go's layouts `2006-1-2`, `2006-1-2 15:4:5.999999999` and
/// `2006-1-2T15:4:5.999999999Z07:00` (or lower-case `t`).
fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 5 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return false;
    }
    let mut i = 5;
    // A run of `min..=max` digits whose value is in `range`.
    let num = |i: &mut usize, max: usize, range: std::ops::RangeInclusive<u32>| {
        let start = *i;
        let mut v = 0u32;
        while *i - start < max && b.get(*i).is_some_and(u8::is_ascii_digit) {
            v = v * 10 + u32::from(b[*i] - b'0');
            *i += 1;
        }
        *i > start && range.contains(&v)
    };
    let eat = |i: &mut usize, c: u8| {
        let ok = b.get(*i) == Some(&c);
        *i += usize::from(ok);
        ok
    };
    if !(num(&mut i, 2, 1..=12) && eat(&mut i, b'-') && num(&mut i, 2, 1..=31)) {
        return false;
    }
    if i == b.len() {
        return true;
    }
    let zone = match b[i] {
        b'T' | b't' => true,
        b' ' => false,
        _ => return false,
    };
    i += 1;
    if !(num(&mut i, 2, 0..=23)
        && eat(&mut i, b':')
        && num(&mut i, 2, 0..=59)
        && eat(&mut i, b':')
        && num(&mut i, 2, 0..=59))
    {
        return false;
    }
    if eat(&mut i, b'.') && !num(&mut i, 9, 0..=999_999_999) {
        return false;
    }
    if zone
        && !eat(&mut i, b'Z')
        && !((eat(&mut i, b'+') || eat(&mut i, b'-'))
            && num(&mut i, 2, 0..=23)
            && eat(&mut i, b':')
            && num(&mut i, 2, 0..=59))
    {
        return false;
    }
    i == b.len()
}

/// `^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$`: YAML 1.1
/// sexagesimal numbers, which go-yaml quotes although it reads them as
/// strings itself.
pub(super) fn is_base60_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    if !b.get(i).is_some_and(u8::is_ascii_digit) {
        return false;
    }
    while b.get(i).is_some_and(|c| c.is_ascii_digit() || *c == b'_') {
        i += 1;
    }
    let mut groups = 0;
    while b.get(i) == Some(&b':') {
        i += 1;
        match (b.get(i), b.get(i + 1)) {
            (Some(b'0'..=b'5'), Some(d)) if d.is_ascii_digit() => i += 2,
            (Some(d), _) if d.is_ascii_digit() => i += 1,
            _ => return false,
        }
        groups += 1;
    }
    if groups == 0 {
        return false;
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        while b.get(i).is_some_and(|c| c.is_ascii_digit() || *c == b'_') {
            i += 1;
        }
    }
    i == b.len()
}
