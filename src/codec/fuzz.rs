//! Fuzz entry points (each `fuzz/fuzz_targets/*.rs` is one line calling one of these).
