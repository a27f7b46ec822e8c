//! Where the broker's durable state is kept: the storage seam ([`disk`]: the folder of files a
//! store lives in, on the machine's file system) and the lab's disk ([`seam`]: the same seam
//! with crash semantics and storage faults, compiled in both builds, driven only by the lab and
//! tests).
//!
//! Every redb call of the crate lives under this module.

pub mod disk;
pub mod seam;
