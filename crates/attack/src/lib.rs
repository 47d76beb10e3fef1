//! tracehunt-attack (placeholder, being built).
