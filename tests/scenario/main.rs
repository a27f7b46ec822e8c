//! Scenario files: errors for files with mistakes, the scenario library as a whole, and seeded
//! plans. Running scenarios in the simulated world is tested in `tests/lab/`.

mod errors;
mod library;
mod plan;
mod templates;
mod traps;
