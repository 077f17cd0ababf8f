//! Fuzz target `iso9660`: see sprout::testing::fuzz::iso9660.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sprout::testing::fuzz::iso9660(data);
});
