//! herald's integration tests: one binary, one module per area.
//!
//! `harness` builds throwaway copies of the example configuration and runs
//! the real `herald` binary against them.

mod harness;

// `herald check` and the loader: every kind of bad input, each with its message and place.
mod check;
// The planner on the example config and its properties on random roadmaps.
mod plan;
// Rendered messages, as snapshots, in two languages and for the cover letter.
mod preview;
// import-roadmap on the real letters, round-tripped through check and plan.
mod import;
// Rules about the source tree itself.
mod tidy;
