//! Fuzz target `seed_json`: see sprout::testing::fuzz::seed_json.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sprout::testing::fuzz::seed_json(data);
});
