//! Fuzz target `tar_stream`: see sprout::testing::fuzz::tar_stream.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sprout::testing::fuzz::tar_stream(data);
});
