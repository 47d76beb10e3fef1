//! tracehunt-engine (placeholder, being built).
