//! Address allocation (IPAM), persisted under a directory and safe against crashes and races.
//!
//! Layout of a network's directory:
//! - `lock`: `flock`ed (exclusive) around every allocation, release and reclaim, so they are
//!   serialised between processes;
//! - `addrs/<ip>`: one file per allocated address, created `O_EXCL`, holding the container id;
//! - `holders/<container>`: the container's record (its addresses and what the driver made
//!   for it), `flock`ed for as long as the container lives by whoever keeps it alive (the
//!   helper, then the monitor). The lock goes when the last descriptor of it is closed, also
//!   when its holder is killed: a holder file whose lock can be taken is a stale allocation,
//!   and its record says what to clean up (rules, the host veth) before its addresses are
//!   given again.
//!
//! Why a lock per container and not per address: a container's addresses (v4 and v6) live
//! and die together, and its record has to be found from the lock that proves it stale.

use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cidr::{self, Cidr};
use crate::error::{Errno, NetError, Result};

/// Dynamic allocation tries at most this many addresses of a range before saying it is full.
const MAX_TRIES: u128 = 1 << 20;

/// One subnet of a network, validated: its gateway and the range addresses are given from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pool {
    pub subnet: Cidr,
    pub gateway: IpAddr,
    /// Where dynamic addresses come from (`--ip-range`); the whole subnet when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<Cidr>,
}

impl Pool {
    /// Checks a subnet, its gateway (default: the first address) and its range. `field` names
    /// the subnet in errors (`subnets[0]`).
    pub fn new(
        field: &str,
        subnet: Cidr,
        gateway: Option<IpAddr>,
        ip_range: Option<Cidr>,
    ) -> Result<Pool> {
        if !subnet.is_network() {
            return Err(NetError::config(
                format!("{field}.subnet"),
                format!(
                    "{subnet} has host bits set; the subnet is {}/{}",
                    subnet.network(),
                    subnet.prefix
                ),
            ));
        }
        let max = if subnet.is_ipv6() { 126 } else { 30 };
        if subnet.prefix > max {
            return Err(NetError::config(
                format!("{field}.subnet"),
                format!("{subnet} is too small: a prefix of at most /{max} leaves room for a gateway and a container"),
            ));
        }
        let gateway = match gateway {
            Some(g) => g,
            None => subnet
                .nth(1)
                .ok_or_else(|| NetError::config(format!("{field}.subnet"), "has no addresses"))?,
        };
        let p = Pool { subnet, gateway, ip_range };
        if !p.usable(&gateway) {
            return Err(NetError::config(
                format!("{field}.gateway"),
                format!("{gateway} is not a host address of {subnet}"),
            ));
        }
        if let Some(r) = ip_range {
            if !r.is_network()
                || r.is_ipv6() != subnet.is_ipv6()
                || !subnet.contains(&r.network())
                || !subnet.contains(&r.last())
            {
                return Err(NetError::config(
                    format!("{field}.ipRange"),
                    format!("{r} is not a subnet inside {subnet}"),
                ));
            }
        }
        Ok(p)
    }

    /// A host address of the subnet: not its network address, not (v4) its broadcast.
    fn usable(&self, ip: &IpAddr) -> bool {
        self.subnet.contains(ip)
            && *ip != self.subnet.network()
            && (self.subnet.is_ipv6() || *ip != self.subnet.last())
    }

    /// A fixed address (`--ip`) a container may be given.
    pub fn check_fixed(&self, field: &str, ip: &IpAddr) -> Result<()> {
        if !self.usable(ip) {
            return Err(NetError::config(
                field,
                format!("{ip} is not a host address of {}", self.subnet),
            ));
        }
        if *ip == self.gateway {
            return Err(NetError::config(field, format!("{ip} is the gateway of {}", self.subnet)));
        }
        Ok(())
    }

    fn candidates(&self) -> (u128, u128) {
        let r = self.ip_range.unwrap_or(self.subnet);
        (cidr::to_u128(&r.network()), cidr::to_u128(&r.last()))
    }
}

/// What a holder file says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Holder {
    pub container: String,
    pub addresses: Vec<IpAddr>,
    /// What the caller keeps for cleaning up (the driver's attachment record).
    #[serde(default)]
    pub record: serde_json::Value,
}

/// A container's allocation, kept while `lock` is held. Dropping it (or the death of the
/// process) leaves the allocation stale, to be reclaimed; [`Ipam::release`] gives it back.
#[derive(Debug)]
pub struct Lease {
    pub container: String,
    pub addresses: Vec<IpAddr>,
    pub lock: OwnedFd,
}

fn io_err(step: &str, path: &Path, e: std::io::Error) -> NetError {
    NetError::sys(step, Some(&path.display().to_string()), Errno::from_io(&e))
}

/// A container id that is safe as a file name and an nftables comment.
pub fn check_container_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(NetError::config(
            "containerId",
            format!("{id:?} must be 1-128 of [A-Za-z0-9_.-], not starting with '.'"),
        ))
    }
}

fn try_lock(fd: &OwnedFd) -> bool {
    // SAFETY: flock on a descriptor we own.
    unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

/// The allocations of one network.
#[derive(Debug, Clone)]
pub struct Ipam {
    dir: PathBuf,
}

/// The directory lock, released when its descriptor is closed (on drop).
struct DirLock(#[allow(dead_code)] OwnedFd);

impl Ipam {
    pub fn new(dir: impl Into<PathBuf>) -> Ipam {
        Ipam { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn lock(&self) -> Result<DirLock> {
        for d in [self.dir.clone(), self.dir.join("addrs"), self.dir.join("holders")] {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&d)
                .map_err(|e| io_err("create allocation directory", &d, e))?;
        }
        let path = self.dir.join("lock");
        let f = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|e| io_err("open allocation lock", &path, e))?;
        let fd = OwnedFd::from(f);
        loop {
            // SAFETY: flock on a descriptor we own.
            if unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_EX) } == 0 {
                return Ok(DirLock(fd));
            }
            let e = Errno::last();
            if e.0 != libc::EINTR {
                return Err(NetError::sys(
                    "lock allocations in",
                    Some(&self.dir.display().to_string()),
                    e,
                ));
            }
        }
    }

    fn holder_path(&self, container: &str) -> PathBuf {
        self.dir.join("holders").join(container)
    }

    fn addr_path(&self, ip: &IpAddr) -> PathBuf {
        self.dir.join("addrs").join(ip.to_string())
    }

    /// Claims `ip` for `container`: the file is created only if it does not exist.
    fn claim(&self, ip: &IpAddr, container: &str) -> std::io::Result<()> {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(self.addr_path(ip))?;
        f.write_all(container.as_bytes())
    }

    /// Allocates one address from each pool (the fixed one when given) for `container`, and
    /// writes its holder file with `record`. Stale allocations found on the way (holders whose
    /// lock is free) are reclaimed first and returned, for the caller to clean up what they
    /// had before their addresses are used again.
    pub fn allocate(
        &self,
        container: &str,
        wants: &[(&Pool, Option<IpAddr>)],
        record: &serde_json::Value,
    ) -> Result<(Lease, Vec<Holder>)> {
        check_container_id(container)?;
        let _dir = self.lock()?;
        let stale = self.reclaim_locked(&|_| false)?;
        let hpath = self.holder_path(container);
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(&hpath)
            .map_err(|e| {
                if e.raw_os_error() == Some(libc::EEXIST) {
                    NetError::sys("allocate addresses for", Some(container), Errno(libc::EEXIST))
                        .with_hint("the container is attached to this network already")
                } else {
                    io_err("create allocation", &hpath, e)
                }
            })?;
        let lock = OwnedFd::from(file);
        if !try_lock(&lock) {
            let _ = fs::remove_file(&hpath);
            return Err(NetError::sys(
                "lock allocation",
                Some(&hpath.display().to_string()),
                Errno::last(),
            ));
        }
        let mut got: Vec<IpAddr> = Vec::new();
        let undo = |got: &[IpAddr]| {
            for ip in got {
                let _ = fs::remove_file(self.addr_path(ip));
            }
            let _ = fs::remove_file(&hpath);
        };
        for (i, (pool, fixed)) in wants.iter().enumerate() {
            let r = match fixed {
                Some(ip) => self.claim_fixed(pool, ip, container, i),
                None => self.claim_next(pool, container),
            };
            match r {
                Ok(ip) => got.push(ip),
                Err(e) => {
                    undo(&got);
                    return Err(e);
                }
            }
        }
        let lease = Lease { container: container.to_owned(), addresses: got, lock };
        if let Err(e) = self.write_holder(&lease, record) {
            undo(&lease.addresses);
            return Err(e);
        }
        Ok((lease, stale))
    }

    fn claim_fixed(&self, pool: &Pool, ip: &IpAddr, container: &str, i: usize) -> Result<IpAddr> {
        let field = format!("ips[{i}]");
        pool.check_fixed(&field, ip)?;
        match self.claim(ip, container) {
            Ok(()) => Ok(*ip),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                let owner = fs::read_to_string(self.addr_path(ip)).unwrap_or_default();
                Err(NetError::config(field, format!("{ip} is in use by container {owner}")))
            }
            Err(e) => Err(io_err("allocate address", &self.addr_path(ip), e)),
        }
    }

    fn claim_next(&self, pool: &Pool, container: &str) -> Result<IpAddr> {
        let (first, last) = pool.candidates();
        let v6 = pool.subnet.is_ipv6();
        let mut n = first;
        let mut tries = 0u128;
        let mut more = true;
        while more && n <= last && tries < MAX_TRIES {
            let ip = cidr::from_u128(v6, n);
            // The range may end at the last address there is: stop there, never overflow.
            match n.checked_add(1) {
                Some(next) => n = next,
                None => more = false,
            }
            tries += 1;
            if !pool.usable(&ip) || ip == pool.gateway {
                continue;
            }
            match self.claim(&ip, container) {
                Ok(()) => return Ok(ip),
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => continue,
                Err(e) => return Err(io_err("allocate address", &self.addr_path(&ip), e)),
            }
        }
        let range = pool.ip_range.unwrap_or(pool.subnet);
        Err(NetError::sys("allocate an address in", Some(&range.to_string()), Errno(libc::ENOSPC))
            .with_hint("every address of the range is in use by a running container"))
    }

    fn write_holder(&self, lease: &Lease, record: &serde_json::Value) -> Result<()> {
        let h = Holder {
            container: lease.container.clone(),
            addresses: lease.addresses.clone(),
            record: record.clone(),
        };
        let text = serde_json::to_vec(&h).unwrap_or_default();
        let path = self.holder_path(&lease.container);
        let fd = lease.lock.as_raw_fd();
        // SAFETY: ftruncate and pwrite on a descriptor the lease owns, from a buffer we own.
        let ok = unsafe {
            libc::ftruncate(fd, 0) == 0
                && libc::pwrite(fd, text.as_ptr() as *const libc::c_void, text.len(), 0)
                    == text.len() as isize
        };
        if ok {
            Ok(())
        } else {
            Err(NetError::sys("write allocation", Some(&path.display().to_string()), Errno::last()))
        }
    }

    /// Rewrites the record of a held allocation (the driver adds what it made as it goes).
    pub fn update_record(&self, lease: &Lease, record: &serde_json::Value) -> Result<()> {
        self.write_holder(lease, record)
    }

    /// Gives a container's addresses back and removes its holder file. Files that name
    /// another container (reclaimed and reused meanwhile) are left alone.
    pub fn release(&self, container: &str) -> Result<()> {
        check_container_id(container)?;
        let _dir = self.lock()?;
        self.remove_holder(container, None)
    }

    fn remove_holder(&self, container: &str, known: Option<&[IpAddr]>) -> Result<()> {
        let addrs: Vec<IpAddr> = match known {
            Some(a) => a.to_vec(),
            None => self.read_holder(container).map(|h| h.addresses).unwrap_or_default(),
        };
        let mut addrs: HashSet<IpAddr> = addrs.into_iter().collect();
        // A holder file that could not be read: find its addresses by their contents.
        if addrs.is_empty() {
            addrs.extend(self.addresses_of(container));
        }
        for ip in addrs {
            let p = self.addr_path(&ip);
            if fs::read_to_string(&p).map(|o| o == container).unwrap_or(false) {
                fs::remove_file(&p).map_err(|e| io_err("release address", &p, e))?;
            }
        }
        let hp = self.holder_path(container);
        match fs::remove_file(&hp) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("remove allocation", &hp, e)),
        }
    }

    fn addresses_of(&self, container: &str) -> Vec<IpAddr> {
        let Ok(rd) = fs::read_dir(self.dir.join("addrs")) else { return Vec::new() };
        rd.flatten()
            .filter(|e| fs::read_to_string(e.path()).map(|o| o == container).unwrap_or(false))
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .collect()
    }

    fn read_holder(&self, container: &str) -> Option<Holder> {
        let text = fs::read(self.holder_path(container)).ok()?;
        serde_json::from_slice(&text).ok()
    }

    /// Every holder: its record and whether its lock is held (the container is alive).
    pub fn holders(&self) -> Result<Vec<(Holder, bool)>> {
        let dir = self.dir.join("holders");
        let rd = match fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err("list allocations in", &dir, e)),
        };
        let mut out = Vec::new();
        for e in rd.flatten() {
            let Some(name) = e.file_name().to_str().map(str::to_owned) else { continue };
            let Ok(f) = fs::File::open(e.path()) else { continue };
            let fd = OwnedFd::from(f);
            let held = !try_lock(&fd);
            let h = self.read_holder(&name).unwrap_or(Holder {
                container: name.clone(),
                addresses: self.addresses_of(&name),
                record: serde_json::Value::Null,
            });
            out.push((h, held));
        }
        Ok(out)
    }

    /// Removes every allocation whose lock is free and whose container `live` does not
    /// claim; returns what they held, for the caller to clean up.
    pub fn reclaim(&self, live: &dyn Fn(&str) -> bool) -> Result<Vec<Holder>> {
        let _dir = self.lock()?;
        self.reclaim_locked(live)
    }

    fn reclaim_locked(&self, live: &dyn Fn(&str) -> bool) -> Result<Vec<Holder>> {
        let mut out = Vec::new();
        for (h, held) in self.holders()? {
            if held || live(&h.container) {
                continue;
            }
            self.remove_holder(&h.container, Some(&h.addresses))?;
            out.push(h);
        }
        Ok(out)
    }
}

/// A lease's descriptor, for a holder that passes it to another process.
impl Lease {
    pub fn into_fd(self) -> OwnedFd {
        self.lock
    }

    /// A lease from a descriptor a holder was handed (the monitor, from the helper).
    ///
    /// # Safety
    /// `fd` must be an open descriptor of the holder file that nobody else owns.
    pub unsafe fn from_raw(container: String, addresses: Vec<IpAddr>, fd: i32) -> Lease {
        // SAFETY: the caller promises `fd` is owned and open.
        Lease { container, addresses, lock: unsafe { OwnedFd::from_raw_fd(fd) } }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(s: &str) -> Pool {
        Pool::new("subnets[0]", s.parse().unwrap(), None, None).unwrap()
    }

    #[test]
    fn a_pool_defaults_its_gateway_to_the_first_address_and_checks_what_it_is_given() {
        assert_eq!(pool("10.89.0.0/24").gateway.to_string(), "10.89.0.1");
        assert_eq!(pool("2001:db8:89::/64").gateway.to_string(), "2001:db8:89::1");
        let e = Pool::new("subnets[0]", "10.89.0.1/24".parse().unwrap(), None, None).unwrap_err();
        assert_eq!(
            e.message,
            "subnets[0].subnet: 10.89.0.1/24 has host bits set; the subnet is 10.89.0.0/24"
        );
        let e = Pool::new("subnets[0]", "10.89.0.0/31".parse().unwrap(), None, None).unwrap_err();
        assert!(
            e.message.starts_with("subnets[0].subnet: 10.89.0.0/31 is too small"),
            "{}",
            e.message
        );
        let e = Pool::new(
            "subnets[1]",
            "10.89.0.0/24".parse().unwrap(),
            Some("10.89.0.255".parse().unwrap()),
            None,
        )
        .unwrap_err();
        assert_eq!(
            e.message,
            "subnets[1].gateway: 10.89.0.255 is not a host address of 10.89.0.0/24"
        );
        let e = Pool::new(
            "subnets[0]",
            "10.89.0.0/24".parse().unwrap(),
            None,
            Some("10.90.0.0/25".parse().unwrap()),
        )
        .unwrap_err();
        assert_eq!(
            e.message,
            "subnets[0].ipRange: 10.90.0.0/25 is not a subnet inside 10.89.0.0/24"
        );
        let p = pool("10.89.0.0/24");
        assert!(p.check_fixed("ip", &"10.89.0.9".parse().unwrap()).is_ok());
        assert_eq!(
            p.check_fixed("ip", &"10.89.0.1".parse().unwrap()).unwrap_err().message,
            "ip: 10.89.0.1 is the gateway of 10.89.0.0/24"
        );
        assert!(p.check_fixed("ip", &"10.89.0.0".parse().unwrap()).is_err());
        assert!(p.check_fixed("ip", &"10.89.1.2".parse().unwrap()).is_err());
    }

    #[test]
    fn a_range_at_the_very_end_of_the_address_space_is_walked_without_overflow() {
        let dir = std::env::temp_dir().join(format!("ns-net-ipam-top-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let p = Pool::new(
            "subnets[0]",
            "ffff::/16".parse().unwrap(),
            None,
            Some("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffc/126".parse().unwrap()),
        )
        .unwrap();
        let ipam = Ipam::new(&dir);
        let mut got = Vec::new();
        for i in 0..4 {
            got.push(
                ipam.allocate(&format!("c{i}"), &[(&p, None)], &serde_json::Value::Null).unwrap().0,
            );
        }
        assert_eq!(got[3].addresses[0].to_string(), "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
        assert_eq!(
            ipam.allocate("c5", &[(&p, None)], &serde_json::Value::Null).unwrap_err().code,
            "ENOSPC"
        );
        drop(got);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn container_ids_that_are_not_safe_file_names_are_refused() {
        assert!(check_container_id("web-1_a.b").is_ok());
        for bad in ["", "../x", ".x", "a/b", "a b", &"x".repeat(129)] {
            assert!(check_container_id(bad).is_err(), "{bad:?}");
        }
    }
}
