//! The segment store: see docs/FORMAT.md.
