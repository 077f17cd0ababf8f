//! Fuzz target `live_iso_json`: see sprout::testing::fuzz::live_iso_json.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sprout::testing::fuzz::live_iso_json(data);
});
