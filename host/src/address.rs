//! Endpoint addresses: `weir://<authority>/<endpoint-id>`.
//!
//! The authority is `local` for a host without a network listener, or the
//! `host:port` it listens on (Flink: `pekko://flink/user/rpc/<id>` and
//! `pekko.tcp://flink@host:port/user/rpc/<id>`). A connect to an address
//! whose authority is the host's own never touches a socket.

use std::fmt;
use std::str::FromStr;

/// The scheme of every weir address.
pub const SCHEME: &str = "weir://";
/// The authority of a host that does not listen on the network.
pub const LOCAL_AUTHORITY: &str = "local";
/// The longest endpoint id.
pub const MAX_ID_LEN: usize = 128;

/// A parsed endpoint address.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EndpointAddress {
    authority: String,
    id: String,
}

/// A string that is not an endpoint address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{address}` is not an endpoint address (`{SCHEME}<host:port or {LOCAL_AUTHORITY}>/<endpoint-id>`): {reason}")]
pub struct AddressError {
    address: String,
    reason: &'static str,
}

impl AddressError {
    /// Why the text is not an address.
    pub fn reason(&self) -> &'static str {
        self.reason
    }
}

impl EndpointAddress {
    /// The address of endpoint `id` on the host with `authority`.
    pub fn new(authority: &str, id: &str) -> Self {
        Self { authority: authority.to_owned(), id: id.to_owned() }
    }

    /// `local` or `host:port`.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// The endpoint id.
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// Checks that `id` can name an endpoint: 1 to [`MAX_ID_LEN`] ASCII letters,
/// digits, `.`, `_` or `-`.
///
/// # Errors
///
/// Why it cannot.
pub fn validate_id(id: &str) -> Result<(), &'static str> {
    if id.is_empty() {
        return Err("it is empty");
    }
    if id.len() > MAX_ID_LEN {
        return Err("it is longer than 128 characters");
    }
    if !id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) {
        return Err("only ASCII letters, digits, '.', '_' and '-' are allowed");
    }
    Ok(())
}

impl FromStr for EndpointAddress {
    type Err = AddressError;

    fn from_str(address: &str) -> Result<Self, Self::Err> {
        let fail = |reason| AddressError { address: address.to_owned(), reason };
        let rest = address.strip_prefix(SCHEME).ok_or_else(|| fail("it does not start with `weir://`"))?;
        let (authority, id) = rest.split_once('/').ok_or_else(|| fail("it has no endpoint id"))?;
        if authority.is_empty() {
            return Err(fail("it has no host"));
        }
        validate_id(id).map_err(fail)?;
        Ok(Self::new(authority, id))
    }
}

impl fmt::Display for EndpointAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME}{}/{}", self.authority, self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_local_and_remote_addresses() {
        for text in ["weir://local/echo-1", "weir://10.0.0.7:6123/job_master.7", "weir://[::1]:6123/rm"] {
            let address: EndpointAddress = text.parse().unwrap();
            assert_eq!(address.to_string(), text);
        }
        let address: EndpointAddress = "weir://local/echo".parse().unwrap();
        assert_eq!((address.authority(), address.id()), ("local", "echo"));
    }

    #[test]
    fn rejects_what_is_not_an_address() {
        for text in ["foobar", "weir://local", "weir:///echo", "weir://local/", "weir://local/a/b", "http://local/echo"]
        {
            let err = text.parse::<EndpointAddress>().unwrap_err();
            assert!(err.to_string().contains(text), "{err}");
        }
    }
}
