//! Fuzz target `tar_members`: see sprout::testing::fuzz::tar_members.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sprout::testing::fuzz::tar_members(data);
});
