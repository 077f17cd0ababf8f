//! Fuzz target `yaml_inputs`: see sprout::testing::fuzz::yaml_inputs.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sprout::testing::fuzz::yaml_inputs(data);
});
