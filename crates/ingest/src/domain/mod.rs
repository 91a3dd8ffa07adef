//! The types both the engines and the repository speak, below both: a value
//! here depends on neither, so `repo` never reaches up into `engine` to name
//! what it stores and returns.

mod window;

pub use window::{InvalidWindow, Window};
