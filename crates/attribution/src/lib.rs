//! tracehunt-attribution (placeholder, being built).
