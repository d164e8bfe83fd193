//! The integration tests: real components, built from `endpoints/`, loaded
//! into real hosts.

mod bad_input;
mod calls;
mod components;
mod fencing;
mod isolation;
mod lifecycle;
mod main_thread;
mod remote;
mod supervision;
