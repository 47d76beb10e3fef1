//! tracehunt-report (placeholder, being built).
