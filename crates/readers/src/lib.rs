//! tracehunt-readers (placeholder, being built).
