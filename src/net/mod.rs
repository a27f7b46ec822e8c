//! The one async shell: runs the sans-IO cores on `tokio` (madsim-tokio), so the same code
//! serves real TCP and, built with `--cfg madsim`, simulated TCP. The only place that reads a
//! clock or touches a socket.

pub mod seam;
