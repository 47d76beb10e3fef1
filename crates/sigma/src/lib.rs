//! tracehunt-sigma (placeholder, being built).
