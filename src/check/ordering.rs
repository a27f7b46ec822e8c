//! ordering
use super::{CheckConfig, Violation};
use crate::trace::Trace;
pub fn check(_t: &Trace, _c: &CheckConfig) -> Vec<Violation> {
    Vec::new()
}
