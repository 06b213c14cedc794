//! The spec's test vectors (`../shared/spec/inac.md` §9), one test per row, against the
//! receiver with an injected clock and in-memory state, plus persistence on real files and
//! SQLite.

mod authorization;
mod budgets;
mod codes;
mod common;
mod frames;
mod kinds;
mod limits;
mod persistence;
mod properties;
mod publications;
mod requests;
mod streams;
