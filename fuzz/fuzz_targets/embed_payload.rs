//! Fuzz target `embed_payload`: see sprout::testing::fuzz::embed_payload.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sprout::testing::fuzz::embed_payload(data);
});
