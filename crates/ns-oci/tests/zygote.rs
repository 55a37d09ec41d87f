//! The zygote (`ns-oci zygote`, socket on fd 3) as the addon drives it: a start with four
//! descriptors forks a helper that answers on the control socket it was given, its end is
//! reported, it stays a zombie until released, and the zygote ends with its caller's socket.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use ns_runtime::sys;
use ns_runtime::zygote::{Reply, Request};
use serde_json::Value;

fn seqpacket_pair() -> (OwnedFd, OwnedFd) {
    let mut pair = [0; 2];
    // SAFETY: pair is a valid array of two ints.
    assert_eq!(
        unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
                0,
                pair.as_mut_ptr(),
            )
        },
        0
    );
    // SAFETY: fresh descriptors from socketpair.
    unsafe { (OwnedFd::from_raw_fd(pair[0]), OwnedFd::from_raw_fd(pair[1])) }
}

/// `ns-oci zygote` with the other end of a SOCK_SEQPACKET pair on fd 3: our end, the process.
fn start_zygote() -> (OwnedFd, std::process::Child) {
    let (ours, theirs) = seqpacket_pair();
    let fd = theirs.as_raw_fd();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ns-oci"));
    cmd.arg("zygote").stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::inherit());
    // SAFETY: dup2 is async-signal-safe; it runs in the forked child before exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(fd, 3) < 0 {
                Err(std::io::Error::last_os_error())
            } else {
                Ok(())
            }
        });
    }
    (ours, cmd.spawn().expect("spawn ns-oci zygote"))
}

fn send(sock: &OwnedFd, req: &Request, fds: &[i32]) {
    let msg = serde_json::to_vec(req).unwrap();
    if fds.is_empty() {
        // SAFETY: sending a valid buffer.
        assert!(unsafe { libc::send(sock.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) } > 0);
    } else {
        sys::send_fds(sock.as_raw_fd(), fds, &msg).unwrap();
    }
}

fn recv(sock: &OwnedFd) -> Option<Reply> {
    let mut buf = vec![0u8; 4096];
    let (n, _) = sys::recv_fds(sock.as_raw_fd(), &mut buf, 1).unwrap()?;
    Some(serde_json::from_slice(&buf[..n]).unwrap())
}

fn state_of(pid: i32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(stat[stat.rfind(')')? + 2..].split(' ').next()?.to_owned())
}

#[test]
fn a_forked_helper_answers_on_its_control_socket_and_stays_a_zombie_until_released() {
    let (ours, mut zygote) = start_zygote();

    // The helper's descriptors: stdin and stderr /dev/null, stdout a pipe, the control socket.
    let null = std::fs::File::open("/dev/null").unwrap();
    let (out_r, out_w) = sys::pipe().unwrap();
    let (control, control_theirs) = UnixStream::pair().unwrap();
    let cwd = std::env::temp_dir().display().to_string();
    let start = Request::Start {
        token: 7,
        cwd: cwd.clone(),
        umask: 0o027,
        env: Some(vec!["NS_ZYGOTE_TEST=1".into()]),
    };
    send(
        &ours,
        &start,
        &[null.as_raw_fd(), out_w.as_raw_fd(), null.as_raw_fd(), control_theirs.as_raw_fd()],
    );
    drop((out_w, control_theirs));

    let Some(Reply::Forked { token: 7, pid: Some(pid), error: None }) = recv(&ours) else {
        panic!("no pid for token 7")
    };
    // The helper is renamed last, just before it reads its request: wait for that.
    let cmdline = || std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    for _ in 0..200 {
        if cmdline().split('\0').nth(1) == Some("init") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    // What a spawned helper would be: the cwd and umask sent, a process group of its own, its
    // command line that of `ns-oci init`.
    assert_eq!(std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap().display().to_string(), cwd);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(status.lines().any(|l| l == "Umask:\t0027"), "{status}");
    assert_eq!(cmdline().split('\0').nth(1), Some("init"));
    // SAFETY: plain syscall.
    assert_eq!(unsafe { libc::getpgid(pid) }, pid);

    // A request that is not a runtime spec: the helper says so and ends with 125.
    let mut w = control.try_clone().unwrap();
    w.write_all(b"{\"config\": 42}\n").unwrap();
    let events: Vec<Value> = BufReader::new(control)
        .lines()
        .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
        .collect();
    assert_eq!(events.first().unwrap()["event"], "error", "{events:?}");
    assert_eq!(events.last().unwrap()["event"], "exited");
    assert_eq!(events.last().unwrap()["exitCode"], 125);
    let mut out = String::new();
    // SAFETY: out_r is ours.
    unsafe { std::fs::File::from_raw_fd(std::os::fd::IntoRawFd::into_raw_fd(out_r)) }
        .read_to_string(&mut out)
        .unwrap();
    assert_eq!(out, "");

    let Some(Reply::Exited { pid: ended, code: Some(125), signal: None }) = recv(&ours) else {
        panic!("no exit report")
    };
    assert_eq!(ended, pid);
    // Not reaped until released: the pid cannot name another process meanwhile.
    assert_eq!(state_of(pid).as_deref(), Some("Z"));
    send(&ours, &Request::Release { pid }, &[]);
    for _ in 0..200 {
        if state_of(pid).is_none() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(state_of(pid), None, "released helper {pid} was not reaped");

    // The caller's end closes: the zygote ends.
    drop(ours);
    assert!(zygote.wait().unwrap().success());
}

#[test]
fn a_start_without_its_four_descriptors_is_refused_and_the_zygote_goes_on() {
    let (ours, mut zygote) = start_zygote();
    let null = std::fs::File::open("/dev/null").unwrap();
    let start = Request::Start { token: 1, cwd: "/".into(), umask: 0o022, env: None };
    send(&ours, &start, &[null.as_raw_fd()]);
    let Some(Reply::Forked { token: 1, pid: None, error: Some(e) }) = recv(&ours) else {
        panic!("a start with one descriptor was not refused")
    };
    assert!(e.contains("descriptors"), "{e}");
    // Still there; retired without helpers, it ends.
    send(&ours, &Request::Retire, &[]);
    assert!(recv(&ours).is_none());
    assert!(zygote.wait().unwrap().success());
}
