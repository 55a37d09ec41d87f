//! rtnetlink spoken directly: a `NETLINK_ROUTE` socket, requests built as bytes, replies parsed
//! without trusting them (every length is checked; a malformed reply is an `EPROTO` error, never
//! a panic). Synchronous and single-threaded, as the helper is: one request, then its answer.
//!
//! A socket belongs to the network namespace it was created in, for its whole life. So
//! [`Netlink::open_in`] works on another namespace (a container's) by entering it on this
//! thread, creating the socket and coming back: every request on that socket then acts inside.

mod addr;
mod attr;
mod link;
mod route;
mod socket;

pub use addr::Address;
pub use attr::{Attrs, Request};
pub use link::{format_mac, Link, LinkChange, Veth, BR_STATE_FORWARDING, IF_OPER_UP};
pub use route::{Route, RouteSpec, RT_TABLE_LOCAL, RT_TABLE_MAIN};
pub use socket::{Netlink, NlError, NlResult};
