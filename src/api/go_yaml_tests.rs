use super::*;

fn yaml(v: serde_json::Value) -> String {
    to_string(&v)
}

/// Strings go-yaml v2 must quote because a YAML 1.1 reader would take the
/// plain form for another type; expected texts are go-yaml's own choices.
#[test]
fn quotes_what_yaml_1_1_would_not_read_as_a_string() {
    for (s, want) in [
        ("52:54:00:12:34:56", "\"52:54:00:12:34:56\""),
        ("00:00:00:00:00:00", "\"00:00:00:00:00:00\""),
        ("1:20", "\"1:20\""),
        ("", "\"\""),
        ("yes", "\"yes\""),
        ("On", "\"On\""),
        ("n", "\"n\""),
        ("null", "\"null\""),
        ("~", "\"~\""),
        ("true", "\"true\""),
        ("123", "\"123\""),
        ("0755", "\"0755\""),
        ("08", "\"08\""),
        ("0x1F", "\"0x1F\""),
        ("0b101", "\"0b101\""),
        ("1_000", "\"1_000\""),
        ("-1.5e3", "\"-1.5e3\""),
        (".5", "\".5\""),
        (".inf", "\".inf\""),
        ("2024-01-02", "\"2024-01-02\""),
        ("2024-1-2T03:04:05Z", "\"2024-1-2T03:04:05Z\""),
        ("2024-01-02 03:04:05.5", "\"2024-01-02 03:04:05.5\""),
    ] {
        assert_eq!(
            yaml(serde_json::json!({ "k": s })),
            format!("k: {want}\n"),
            "{s:?}"
        );
    }
}

#[test]
fn leaves_ordinary_strings_plain() {
    for s in [
        "52:54:00:ab:cd:ef",
        "52:54:00:12:34:99",
        "192.168.122.10",
        "0.0.0.0/0",
        "fd00:20::10",
        "2001:db8::/64",
        "eth0",
        "ethernet",
        "up",
        "Yess",
        "2024-13-45",
        "10.20.0.0/24",
        "a:b",
        "-a",
        "ünïcode",
    ] {
        assert_eq!(
            yaml(serde_json::json!({ "k": s })),
            format!("k: {s}\n"),
            "{s:?}"
        );
    }
}

#[test]
fn single_quotes_text_that_cannot_be_plain() {
    for (s, want) in [
        ("*", "'*'"),
        ("[a]", "'[a]'"),
        ("#x", "'#x'"),
        ("a #b", "'a #b'"),
        ("a: b", "'a: b'"),
        ("- a", "'- a'"),
        (" lead", "' lead'"),
        ("it's: x", "'it''s: x'"),
        ("---", "'---'"),
        ("@home", "'@home'"),
    ] {
        assert_eq!(
            yaml(serde_json::json!({ "k": s })),
            format!("k: {want}\n"),
            "{s:?}"
        );
    }
}

#[test]
fn double_quotes_and_escapes_control_characters() {
    assert_eq!(yaml(serde_json::json!({"k": "a\tb"})), "k: \"a\\tb\"\n");
    assert_eq!(yaml(serde_json::json!({"k": "\u{1}"})), "k: \"\\x01\"\n");
}

#[test]
fn multi_line_strings_are_literal_blocks() {
    assert_eq!(yaml(serde_json::json!({"k": "a\nb"})), "k: |-\n  a\n  b\n");
    assert_eq!(
        yaml(serde_json::json!({"k": "a\n\nb\n"})),
        "k: |\n  a\n\n  b\n"
    );
    assert_eq!(yaml(serde_json::json!({"k": "a\n\n"})), "k: |+\n  a\n\n");
    assert_eq!(
        yaml(serde_json::json!({"k": " a\nb"})),
        "k: |2-\n   a\n  b\n"
    );
    // Trailing space on a line: no block style, so double-quoted.
    assert_eq!(yaml(serde_json::json!({"k": "a \nb"})), "k: \"a \\nb\"\n");
    assert_eq!(
        yaml(serde_json::json!({"l": ["x\ny"]})),
        "l:\n- |-\n  x\n  y\n"
    );
}

#[test]
fn layout_sorts_keys_and_does_not_indent_dashes() {
    let v = serde_json::json!({
        "interfaces": [{
            "name": "enp1s0", "type": "ethernet", "state": "up",
            "mac-address": "52:54:00:12:34:56",
            "ipv4": {"enabled": true, "dhcp": false,
                     "address": [{"ip": "192.168.122.10", "prefix-length": 24}]},
            "ipv6": {"enabled": false}
        }],
        "dns-resolver": {"config": {"server": ["192.168.122.1"]}},
        "empty": {}, "none": [], "nothing": null, "mtu": 1500, "ratio": 0.5
    });
    assert_eq!(
        yaml(v),
        "dns-resolver:\n  config:\n    server:\n    - 192.168.122.1\nempty: {}\ninterfaces:\n- ipv4:\n    address:\n    - ip: 192.168.122.10\n      prefix-length: 24\n    dhcp: false\n    enabled: true\n  ipv6:\n    enabled: false\n  mac-address: \"52:54:00:12:34:56\"\n  name: enp1s0\n  state: up\n  type: ethernet\nmtu: 1500\nnone: []\nnothing: null\nratio: 0.5\n"
    );
    assert_eq!(
        yaml(serde_json::json!([["a", "b"], {"k": 1}])),
        "- - a\n  - b\n- k: 1\n"
    );
}

#[test]
fn keys_in_natural_order() {
    let mut keys = vec![
        "eth10", "eth2", "eth1", "a-b", "ab", "a1", "A", "b", "x01", "x1",
    ];
    keys.sort_by(|a, b| natural_order(a, b));
    assert_eq!(
        keys,
        [
            "A", "a-b", "a1", "ab", "b", "eth1", "eth2", "eth10", "x1", "x01"
        ]
    );
}

#[test]
fn floats_as_go_formats_them() {
    assert_eq!(go_float(1.0), "1");
    assert_eq!(go_float(0.5), "0.5");
    assert_eq!(go_float(1e6), "1e+06");
    assert_eq!(go_float(123456.0), "123456");
    assert_eq!(go_float(1.5e-5), "1.5e-05");
    assert_eq!(go_float(0.0001), "0.0001");
}

/// What is emitted reads back as the same value (YAML 1.2 reader).
#[test]
fn round_trips_through_a_yaml_reader() {
    let v = serde_json::json!({
        "a": ["52:54:00:12:34:56", "", "yes", "*", "a: b", "x\ny\n", " a\nb", "a\tb"],
        "b": {"c": [{"d": null, "e": 1.5, "f": -3}], "on": "off"},
    });
    let back: serde_json::Value = yaml_serde::from_str(&to_string(&v)).unwrap();
    assert_eq!(back, v);
}
