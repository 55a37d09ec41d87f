//! Address allocation between real processes: concurrent allocators never share an address,
//! and an allocation whose holder was killed is reclaimed. (Files only: runs as any user.)

use std::collections::HashSet;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use ns_net::ipam::{Ipam, Pool};

fn tempdir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("ns-net-ipam-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut p = [0; 2];
    // SAFETY: pipe2 writes two descriptors, owned below.
    assert_eq!(unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: new descriptors nobody else owns.
    unsafe { (OwnedFd::from_raw_fd(p[0]), OwnedFd::from_raw_fd(p[1])) }
}

/// A child process that allocates for `id`, reports the address (or `ERR …`) on a pipe, and
/// holds the allocation until `hold` reaches end of file (or it is killed).
fn holder(dir: &std::path::Path, pool: &Pool, id: &str) -> (libc::pid_t, OwnedFd, OwnedFd) {
    let (rep_r, rep_w) = pipe();
    let (hold_r, hold_w) = pipe();
    // SAFETY: the child only makes system calls and allocations (glibc's malloc is safe after
    // fork), then _exits: it never returns into the test harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        drop(rep_r);
        drop(hold_w);
        let msg = match Ipam::new(dir).allocate(id, &[(pool, None)], &serde_json::json!({"id": id}))
        {
            Ok((lease, _)) => {
                let m = format!("{}\n", lease.addresses[0]);
                std::mem::forget(lease);
                m
            }
            Err(e) => format!("ERR {e}\n"),
        };
        // SAFETY: write and read on descriptors we own; _exit never returns.
        unsafe {
            libc::write(rep_w.as_raw_fd(), msg.as_ptr().cast(), msg.len());
            let mut b = [0u8; 1];
            libc::read(hold_r.as_raw_fd(), b.as_mut_ptr().cast(), 1);
            libc::_exit(0);
        }
    }
    drop(rep_w);
    drop(hold_r);
    (pid, rep_r, hold_w)
}

fn read_line(fd: &OwnedFd) -> String {
    let mut out = Vec::new();
    let mut b = [0u8; 1];
    // SAFETY: read into a buffer we own.
    while unsafe { libc::read(fd.as_raw_fd(), b.as_mut_ptr().cast(), 1) } == 1 && b[0] != b'\n' {
        out.push(b[0]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn reap(pid: libc::pid_t) {
    let mut st = 0;
    // SAFETY: waitpid on our own child.
    unsafe { libc::waitpid(pid, &mut st, 0) };
}

#[test]
fn ipam_sixteen_processes_allocating_at_once_get_sixteen_distinct_addresses() {
    let dir = tempdir("race");
    let pool = Pool::new("subnets[0]", "10.89.0.0/24".parse().unwrap(), None, None).unwrap();
    let kids: Vec<_> = (0..16).map(|i| holder(&dir, &pool, &format!("c{i}"))).collect();
    let addrs: Vec<String> = kids.iter().map(|(_, r, _)| read_line(r)).collect();
    let distinct: HashSet<&String> = addrs.iter().collect();
    assert!(addrs.iter().all(|a| !a.starts_with("ERR")), "{addrs:?}");
    assert_eq!(distinct.len(), 16, "{addrs:?}");
    for a in &addrs {
        let ip: IpAddr = a.parse().unwrap();
        assert!(pool.subnet.contains(&ip) && ip != pool.gateway, "{ip}");
    }
    // All 16 are held: a look from outside sees them so, and a reclaim takes none.
    let ipam = Ipam::new(&dir);
    let holders = ipam.holders().unwrap();
    assert_eq!(holders.len(), 16);
    assert!(holders.iter().all(|(_, held)| *held));
    assert!(ipam.reclaim(&|_| false).unwrap().is_empty());
    // Each child has copies of the earlier children's pipes (fork copies descriptors): close
    // every end here first, then reap.
    let pids: Vec<libc::pid_t> = kids.into_iter().map(|(pid, _, _)| pid).collect();
    for pid in pids {
        reap(pid);
    }
    // Their holders have exited: every allocation is stale now, and is reclaimed.
    assert_eq!(ipam.reclaim(&|_| false).unwrap().len(), 16);
    assert_eq!(std::fs::read_dir(dir.join("addrs")).unwrap().count(), 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ipam_an_allocation_whose_holder_was_killed_is_reclaimed_with_its_record() {
    let dir = tempdir("kill");
    let pool = Pool::new(
        "subnets[0]",
        "10.89.0.0/29".parse().unwrap(),
        None,
        Some("10.89.0.0/30".parse().unwrap()),
    )
    .unwrap();
    let (pid, rep, _hold) = holder(&dir, &pool, "victim");
    let addr = read_line(&rep);
    assert_eq!(addr, "10.89.0.2", "the range's first address after the gateway");
    let ipam = Ipam::new(&dir);
    // While it lives, a reconcile that does not know the container leaves it alone.
    assert!(ipam.reclaim(&|_| false).unwrap().is_empty());
    // SAFETY: kill our own child.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    reap(pid);
    // The next allocation reclaims the dead holder's allocation first (and says whose it was),
    // so the range's first address is free again.
    let (lease, stale) = ipam.allocate("next", &[(&pool, None)], &serde_json::Value::Null).unwrap();
    assert_eq!(lease.addresses[0].to_string(), "10.89.0.2");
    assert_eq!(stale.len(), 1);
    assert_eq!(stale[0].container, "victim");
    assert_eq!(stale[0].record, serde_json::json!({"id": "victim"}));
    // The range 10.89.0.0/30 holds two addresses besides the gateway: a third is refused.
    let (third, _) = ipam.allocate("third", &[(&pool, None)], &serde_json::Value::Null).unwrap();
    assert_eq!(third.addresses[0].to_string(), "10.89.0.3");
    let e = ipam.allocate("fourth", &[(&pool, None)], &serde_json::Value::Null).unwrap_err();
    assert_eq!(e.code, "ENOSPC");
    assert!(
        e.message.starts_with("failed to allocate an address in 10.89.0.0/30: ENOSPC"),
        "{}",
        e.message
    );
    // A fixed address that is taken names its holder; the same container twice is refused.
    let e = ipam
        .allocate("fixed", &[(&pool, Some("10.89.0.2".parse().unwrap()))], &serde_json::Value::Null)
        .unwrap_err();
    assert_eq!(e.message, "ips[0]: 10.89.0.2 is in use by container next");
    let e = ipam
        .allocate("next", &[(&pool, Some("10.89.0.3".parse().unwrap()))], &serde_json::Value::Null)
        .unwrap_err();
    assert_eq!(e.code, "EEXIST");
    // Release gives it back at once.
    ipam.release("next").unwrap();
    drop(lease);
    assert_eq!(ipam.holders().unwrap().len(), 1, "only third's is left");
    let (l2, stale) = ipam
        .allocate("fixed", &[(&pool, Some("10.89.0.2".parse().unwrap()))], &serde_json::Value::Null)
        .unwrap();
    assert_eq!(l2.addresses[0].to_string(), "10.89.0.2");
    assert!(stale.is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ipam_v4_and_v6_addresses_of_a_container_are_allocated_and_released_together() {
    let dir = tempdir("dual");
    let p4 = Pool::new("subnets[0]", "10.89.0.0/24".parse().unwrap(), None, None).unwrap();
    let p6 = Pool::new("subnets[1]", "2001:db8:89::/64".parse().unwrap(), None, None).unwrap();
    let ipam = Ipam::new(&dir);
    let (a, _) = ipam.allocate("a", &[(&p4, None), (&p6, None)], &serde_json::Value::Null).unwrap();
    let (b, _) = ipam.allocate("b", &[(&p4, None), (&p6, None)], &serde_json::Value::Null).unwrap();
    let s = |l: &ns_net::ipam::Lease| l.addresses.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    assert_eq!(s(&a), ["10.89.0.2", "2001:db8:89::2"]);
    assert_eq!(s(&b), ["10.89.0.3", "2001:db8:89::3"]);
    ipam.release("a").unwrap();
    let (c, _) = ipam.allocate("c", &[(&p4, None), (&p6, None)], &serde_json::Value::Null).unwrap();
    assert_eq!(s(&c), ["10.89.0.2", "2001:db8:89::2"], "a's addresses are free again");
    drop((a, b, c));
    let _ = std::fs::remove_dir_all(&dir);
}
