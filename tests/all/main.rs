//! The integration tests: real components, built from `endpoints/`, loaded
//! into real hosts.

mod bad_input;
mod batches;
mod calls;
mod capabilities;
mod children;
mod components;
mod control_plane;
mod fencing;
mod ha;
mod heartbeat;
mod host;
mod isolation;
mod lifecycle;
mod main_thread;
mod payloads;
mod registration;
mod remote;
mod supervision;
mod swap;
