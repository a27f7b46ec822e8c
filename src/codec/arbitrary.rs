//! Generators of valid packets.
