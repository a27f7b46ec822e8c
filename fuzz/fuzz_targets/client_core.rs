#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mqtt_lab::client::fuzz::client_core(data));
