pub mod spec;
pub use spec::*;
