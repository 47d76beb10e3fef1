//! Did a state's groups keep attacking after a dated commitment?
//!
//! (Crate docs are completed as the modules land.)

pub mod activity;
pub mod analysis;
pub mod changepoint;
pub mod commitment;
pub mod glm;
pub mod rate;
pub mod series;
