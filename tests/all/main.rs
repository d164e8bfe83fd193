//! The integration tests: real components, built from `endpoints/`, loaded
//! into real hosts.

mod smoke;
