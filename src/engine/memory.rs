//! Memory engine.
