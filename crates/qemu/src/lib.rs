//! Plinth's real driver: the control plane's [`Driver`](plinth_control::Driver) contract
//! carried out over host agents (plinth-proto over mutual TLS, or plain TCP) with the wall clock. The control
//! plane does not know which driver it talks to; the conformance suite runs the same bodies
//! on this driver ([`lab::QemuLab`], over `scripts/testbed`) and on the simulator.

pub mod bootstrap;
pub mod calibrate;
pub mod driver;
mod error;
pub mod lab;
pub mod link;
pub mod session;

pub use driver::{DriverConfig, Journal, NoJournal, QemuDriver, wall_clock};
pub use error::QemuError;
pub use session::{Opened, Session};
