//! The training loop and what it needs: optimiser, schedules, checkpoints.

pub mod checkpoint;
pub mod curves;
pub mod data;
pub mod optim;
pub mod run;
pub mod state;
