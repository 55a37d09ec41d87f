//! Waiting until a new bridge port forwards and the bridge has its carrier.

use crate::error::{Errno, NetError, Result};
use crate::netlink::{self, Netlink};

/// How long a new port may take to forward before the attachment is given up. The kernel's
/// link watcher acts within microseconds when the link is looked up (below), and within a
/// second at worst when it is not; this only bounds a kernel that does neither.
const FORWARDING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// Waits until frames really pass between the container and the bridge. A link's carrier is
/// acted on by the kernel's link watcher, asynchronously: until it has run, the end of the
/// veth that came up first (the host's) sends nothing (its queue is not yet attached), its
/// bridge port does not forward, and a bridge whose first port this is has no carrier
/// either, so what the host routes into it (the gateway's ARP answers, NAT's replies) is
/// dropped. The watcher delays a bridge's event by up to a second (it is no "urgent" one),
/// and the container's first packets would be lost meanwhile: a TCP connect then waits for
/// its SYN to be sent again a second later. Looking a link up makes the kernel run the
/// pending event of that link at once (rtnetlink's get synchronizes with the link watcher),
/// so the host end is looked up first (its port then forwards and the bridge gets its
/// carrier), then the bridge; where a kernel does not synchronize, this polls until the
/// watcher has run.
pub(super) fn wait_forwarding(nl: &mut Netlink, host_veth: &str, bridge: &str) -> Result<()> {
    let start = std::time::Instant::now();
    let gone = |what: &str| NetError::sys("look up link", Some(what), Errno(libc::ENODEV));
    loop {
        let veth = nl.link(host_veth)?.ok_or_else(|| gone(host_veth))?;
        let br = nl.link(bridge)?.ok_or_else(|| gone(bridge))?;
        let veth_ok = veth.operstate == Some(netlink::IF_OPER_UP)
            && veth.port_state == Some(netlink::BR_STATE_FORWARDING);
        let br_ok = br.operstate == Some(netlink::IF_OPER_UP);
        if veth_ok && br_ok {
            return Ok(());
        }
        if start.elapsed() > FORWARDING_TIMEOUT {
            let (what, state) = if veth_ok {
                (bridge, format!("operstate {:?}", br.operstate))
            } else {
                (
                    host_veth,
                    format!("operstate {:?}, port state {:?}", veth.operstate, veth.port_state),
                )
            };
            return Err(NetError::sys(
                "wait for the bridge port to forward",
                Some(what),
                Errno(libc::ETIMEDOUT),
            )
            .with_hint(format!(
                "the link did not come up within {}s ({state})",
                FORWARDING_TIMEOUT.as_secs()
            )));
        }
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
}
