//! The codec from outside: property tests over every packet type and protocol, and the kept fuzz
//! inputs replayed through the fuzz entry points. Unit tests of single packets live beside the
//! codec in `src/codec/`.

mod fuzz_regressions;
mod properties;
