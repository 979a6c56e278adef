//! Soak (placeholder replaced below).
fn main() {}
